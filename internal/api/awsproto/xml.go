package awsproto

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"math"
	"sort"
	"strconv"
	"time"
)

// TimeFormatXML is how query responses write timestamps (ISO 8601, UTC,
// milliseconds).
const TimeFormatXML = "2006-01-02T15:04:05.000Z"

// EncodeQueryResponse writes the XML response of a query-protocol
// operation:
//
//	<OpResponse xmlns="…"><OpResult>…</OpResult><ResponseMetadata><RequestId>…</RequestId></ResponseMetadata></OpResponse>
//
// The result element is left out when result is nil (operations without
// output). Lists are <Name><member>…</member></Name>, maps
// <Name><entry><key>…</key><value>…</value></entry></Name>.
func EncodeQueryResponse(svc Service, op string, result any, requestID string) []byte {
	var b bytes.Buffer
	b.WriteString("<" + op + "Response xmlns=\"" + svc.XMLNamespace + "\">")
	if result != nil {
		b.WriteString("<" + op + "Result>")
		writeXMLContent(&b, result)
		b.WriteString("</" + op + "Result>")
	}
	b.WriteString("<ResponseMetadata><RequestId>")
	xml.EscapeText(&b, []byte(requestID))
	b.WriteString("</RequestId></ResponseMetadata></" + op + "Response>")
	return b.Bytes()
}

// writeXMLContent writes the content of an element holding v.
func writeXMLContent(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case *Struct:
		for _, m := range x.Members {
			writeXMLElement(b, m.Name, m.Value)
		}
	case Map:
		writeXMLMap(b, x)
	case map[string]any:
		writeXMLMap(b, x)
	case []any:
		for _, e := range x {
			writeXMLElement(b, "member", e)
		}
	case string:
		xml.EscapeText(b, []byte(x))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		b.WriteString(FormatDouble(x))
	case time.Time:
		b.WriteString(x.UTC().Format(TimeFormatXML))
	case []byte:
		b.WriteString(base64.StdEncoding.EncodeToString(x))
	}
}

func writeXMLElement(b *bytes.Buffer, name string, v any) {
	if v == nil {
		return
	}
	b.WriteString("<" + name + ">")
	writeXMLContent(b, v)
	b.WriteString("</" + name + ">")
}

func writeXMLMap[M ~map[string]any](b *bytes.Buffer, m M) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString("<entry><key>")
		xml.EscapeText(b, []byte(k))
		b.WriteString("</key>")
		writeXMLElement(b, "value", m[k])
		b.WriteString("</entry>")
	}
}

// FormatDouble writes a double as the query protocol does (NaN, Infinity
// and -Infinity by name).
func FormatDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
