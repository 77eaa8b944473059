package awsproto

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

var (
	errNotNumber = errors.New("must be a number")
	errNotTime   = errors.New("must be a timestamp (ISO 8601 or seconds since the epoch)")
	errNotBlob   = errors.New("must be base64-encoded")
)

func toFloat(v any) (float64, error) {
	switch n := v.(type) {
	case float64:
		return n, nil
	case int64:
		return float64(n), nil
	case uint64:
		return float64(n), nil
	case json.Number:
		return parseFloat(string(n))
	case string:
		return parseFloat(n)
	}
	return 0, errNotNumber
}

// parseFloat accepts what AWS clients send for doubles, including the
// special values botocore writes as strings (NaN, Infinity, -Infinity);
// services reject those where they do not make sense.
func parseFloat(s string) (float64, error) {
	switch s {
	case "NaN":
		return math.NaN(), nil
	case "Infinity":
		return math.Inf(1), nil
	case "-Infinity":
		return math.Inf(-1), nil
	}
	if s == "" || strings.ContainsAny(s, "_xXpP") || strings.EqualFold(strings.TrimLeft(s, "+-"), "inf") || strings.EqualFold(s, "nan") {
		return 0, errNotNumber
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, errNotNumber
	}
	return f, nil
}

func toInt(v any) (int64, error) {
	switch n := v.(type) {
	case int64:
		return n, nil
	case uint64:
		if n > math.MaxInt64 {
			return 0, errNotNumber
		}
		return int64(n), nil
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
			return 0, errNotNumber
		}
		return int64(n), nil
	case json.Number:
		return strconv.ParseInt(string(n), 10, 64)
	case string:
		return strconv.ParseInt(n, 10, 64)
	}
	return 0, errNotNumber
}

// toTime converts a timestamp; numbers are epoch seconds, kept to the
// millisecond as every AWS protocol does.
func toTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		return t, nil
	case string:
		return parseTime(t)
	case json.Number, int64, uint64, float64:
		f, err := toFloat(t)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e13 {
			return time.Time{}, errNotTime
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e3))*1e6).UTC(), nil
	}
	return time.Time{}, errNotTime
}

// timeLayouts are the ISO 8601 forms clients send (botocore: seconds with
// an optional fraction and Z or an offset; the Go SDK: RFC 3339 with
// milliseconds).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999999", "2006-01-02"}

func parseTime(s string) (time.Time, error) {
	if len(s) > 64 {
		return time.Time{}, errNotTime
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	if f, err := parseFloat(s); err == nil {
		return toTime(f)
	}
	return time.Time{}, errNotTime
}

func toBlob(v any) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		return b, nil
	case string:
		out, err := base64.StdEncoding.DecodeString(b)
		if err != nil {
			return nil, errNotBlob
		}
		return out, nil
	}
	return nil, errNotBlob
}
