package cfn

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

var errNotScalar = errors.New("not a scalar")

// scalarString renders a scalar template value as CloudFormation does when
// a string is expected (numbers keep their literal, booleans are
// "true"/"false").
func scalarString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	case float64:
		return fmtFloat(v), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	}
	return "", errNotScalar
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func boolValue(v any) (bool, error) {
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		switch strings.ToLower(v) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, fmt.Errorf("not a boolean")
}

func floatValue(v any) (float64, error) {
	s, err := scalarString(v)
	if err != nil {
		return 0, err
	}
	if _, isBool := v.(bool); isBool {
		return 0, fmt.Errorf("not a number")
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("not a number")
	}
	return f, nil
}

func intValue(v any) (int, error) {
	f, err := floatValue(v)
	if err != nil || f != math.Trunc(f) || f > math.MaxInt32 || f < math.MinInt32 {
		return 0, fmt.Errorf("not an integer")
	}
	return int(f), nil
}

// noValue is what Ref AWS::NoValue evaluates to: the property or list
// element holding it is removed.
type noValue struct{}

// deepCopy copies a template value (maps and lists; scalars are
// immutable).
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

// equalValues compares resolved values as CloudFormation compares
// properties for updates: scalars by their string form.
func equalValues(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, v := range a {
			w, ok := bm[k]
			if !ok || !equalValues(v, w) {
				return false
			}
		}
		return true
	case []any:
		bl, ok := b.([]any)
		if !ok || len(a) != len(bl) {
			return false
		}
		for i := range a {
			if !equalValues(a[i], bl[i]) {
				return false
			}
		}
		return true
	case nil:
		return b == nil
	}
	as, err1 := scalarString(a)
	bs, err2 := scalarString(b)
	return err1 == nil && err2 == nil && as == bs
}
