package awsproto

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DecodeJSON decodes an awsJson1_0/1_1 request body (an empty body is an
// empty structure). Numbers stay json.Number until Unmarshal sees what the
// member wants.
func DecodeJSON(body []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &DecodeError{Reason: "The request body is not valid JSON."}
	}
	if dec.More() {
		return nil, &DecodeError{Reason: "The request body has data after its JSON value."}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &DecodeError{Reason: "The request body must be a JSON object."}
	}
	return m, nil
}

// EncodeJSON writes a value as JSON the way the AWS JSON protocols do:
// timestamps as epoch seconds (a number), blobs in base64, doubles that
// JSON cannot hold as the strings "NaN", "Infinity" and "-Infinity".
func EncodeJSON(v any) []byte {
	var b bytes.Buffer
	writeJSON(&b, v)
	return b.Bytes()
}

func writeJSON(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case *Struct:
		b.WriteByte('{')
		for i, m := range x.Members {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, m.Name)
			b.WriteByte(':')
			writeJSON(b, m.Value)
		}
		b.WriteByte('}')
	case Map:
		writeJSONMap(b, x)
	case map[string]any:
		writeJSONMap(b, x)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, e)
		}
		b.WriteByte(']')
	case string:
		writeJSONString(b, x)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		switch {
		case math.IsNaN(x):
			b.WriteString(`"NaN"`)
		case math.IsInf(x, 1):
			b.WriteString(`"Infinity"`)
		case math.IsInf(x, -1):
			b.WriteString(`"-Infinity"`)
		default:
			// A double keeps its point (7.0), as AWS's services write it,
			// so that clients decode a float.
			f := strconv.FormatFloat(x, 'g', -1, 64)
			if !strings.ContainsAny(f, ".eE") {
				f += ".0"
			}
			b.WriteString(f)
		}
	case time.Time:
		b.WriteString(epochSeconds(x))
	case []byte:
		writeJSONString(b, base64.StdEncoding.EncodeToString(x))
	default:
		b.WriteString("null")
	}
}

func writeJSONMap[M ~map[string]any](b *bytes.Buffer, m M) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(b, k)
		b.WriteByte(':')
		writeJSON(b, m[k])
	}
	b.WriteByte('}')
}

func writeJSONString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s) // strings always marshal
	b.Write(q)
}

// epochSeconds formats t as seconds since the epoch with up to
// millisecond precision.
func epochSeconds(t time.Time) string {
	ms := t.UnixMilli()
	if ms%1000 == 0 {
		return strconv.FormatInt(ms/1000, 10)
	}
	return strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)
}
