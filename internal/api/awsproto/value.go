package awsproto

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"time"
)

// A value is what the codecs exchange, whatever the protocol:
//
//	*Struct         a structure, members in order
//	map[string]any  a structure as decoded from a request, or an AWS map
//	[]any           a list
//	string, bool, int64, float64, time.Time, []byte, nil (absent)
//
// Requests decode into a value (DecodeQuery, DecodeJSON, DecodeCBOR) that
// Unmarshal stores into a Go struct; responses are Go structs that Marshal
// turns into a value for EncodeXML, EncodeJSON and EncodeCBOR.

// Struct is a structure with its members in order.
type Struct struct {
	Members []Member
}

// Member is one member of a Struct.
type Member struct {
	Name  string
	Value any
}

// Map is an AWS map (a JSON object, a query/XML entry list); unlike a
// structure its keys are data.
type Map map[string]any

var timeType = reflect.TypeOf(time.Time{})

// Marshal turns a Go value into a value. Struct fields are members named
// by their json tag (or their name); a field tagged "-" is skipped;
// omitempty drops zero values; nil pointers, slices and maps are always
// absent (a non-nil empty slice is an empty list). map[string]T becomes a
// Map.
func Marshal(v any) any {
	return marshal(reflect.ValueOf(v))
}

func marshal(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return marshal(v.Elem())
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u := v.Uint()
		if u > math.MaxInt64 {
			return float64(u)
		}
		return int64(u)
	case reflect.Float32, reflect.Float64:
		return v.Float()
	case reflect.Slice:
		if v.IsNil() {
			return nil
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return v.Bytes()
		}
		l := make([]any, v.Len())
		for i := range l {
			l[i] = marshal(v.Index(i))
		}
		return l
	case reflect.Map:
		if v.IsNil() || v.Type().Key().Kind() != reflect.String {
			return nil
		}
		m := make(Map, v.Len())
		it := v.MapRange()
		for it.Next() {
			m[it.Key().String()] = marshal(it.Value())
		}
		return m
	case reflect.Struct:
		if v.Type() == timeType {
			t := v.Interface().(time.Time)
			if t.IsZero() {
				return nil
			}
			return t
		}
		s := &Struct{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, omitempty, skip := fieldName(f)
			if skip {
				continue
			}
			fv := v.Field(i)
			if omitempty && fv.IsZero() {
				continue
			}
			if mv := marshal(fv); mv != nil {
				s.Members = append(s.Members, Member{name, mv})
			}
		}
		return s
	}
	return nil
}

func fieldName(f reflect.StructField) (name string, omitempty, skip bool) {
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false, true
	}
	name, opts, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, opts == "omitempty", false
}

// DecodeError is a request member that does not fit its shape. Services
// turn it into their own validation error (InvalidParameterValue,
// ValidationException, …) with Error() as the message.
type DecodeError struct {
	// Member is the member's path (MetricData.member.2.Value).
	Member string
	// Reason says what is wrong ("must be a number").
	Reason string
}

func (e *DecodeError) Error() string {
	if e.Member == "" {
		return e.Reason
	}
	return fmt.Sprintf("The value of %s %s.", e.Member, e.Reason)
}

// Unmarshal stores a decoded request value into the struct dst points to.
// Members are matched by name, case-sensitively; unknown members are
// ignored, as AWS does. Strings (the query protocol has nothing else)
// convert to numbers, booleans and timestamps (ISO 8601 or epoch seconds)
// when the field wants one. A member of the wrong shape is a *DecodeError.
func Unmarshal(v any, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return &DecodeError{Reason: "internal: Unmarshal needs a non-nil pointer"}
	}
	if v == nil {
		return nil
	}
	return unmarshal(v, rv.Elem(), "")
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func unmarshal(v any, dst reflect.Value, path string) error {
	if v == nil {
		return nil
	}
	if dst.Kind() == reflect.Pointer {
		if dst.IsNil() {
			dst.Set(reflect.New(dst.Type().Elem()))
		}
		return unmarshal(v, dst.Elem(), path)
	}
	if dst.Type() == timeType {
		t, err := toTime(v)
		if err != nil {
			return &DecodeError{path, err.Error()}
		}
		dst.Set(reflect.ValueOf(t))
		return nil
	}
	switch dst.Kind() {
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return &DecodeError{path, "must be a string"}
		}
		dst.SetString(s)
	case reflect.Bool:
		switch b := v.(type) {
		case bool:
			dst.SetBool(b)
		case string:
			switch b {
			case "true":
				dst.SetBool(true)
			case "false":
				dst.SetBool(false)
			default:
				return &DecodeError{path, "must be true or false"}
			}
		default:
			return &DecodeError{path, "must be a boolean"}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := toInt(v)
		if err != nil || dst.OverflowInt(n) {
			return &DecodeError{path, "must be an integer"}
		}
		dst.SetInt(n)
	case reflect.Float32, reflect.Float64:
		f, err := toFloat(v)
		if err != nil {
			return &DecodeError{path, "must be a number"}
		}
		dst.SetFloat(f)
	case reflect.Slice:
		if dst.Type().Elem().Kind() == reflect.Uint8 {
			b, err := toBlob(v)
			if err != nil {
				return &DecodeError{path, err.Error()}
			}
			dst.SetBytes(b)
			return nil
		}
		if s, ok := v.(string); ok && s == "" {
			// The query protocol writes an empty list as "Name=".
			dst.Set(reflect.MakeSlice(dst.Type(), 0, 0))
			return nil
		}
		l, ok := v.([]any)
		if !ok {
			return &DecodeError{path, "must be a list"}
		}
		s := reflect.MakeSlice(dst.Type(), len(l), len(l))
		for i, e := range l {
			if err := unmarshal(e, s.Index(i), join(path, fmt.Sprintf("member.%d", i+1))); err != nil {
				return err
			}
		}
		dst.Set(s)
	case reflect.Map:
		m, ok := asMap(v)
		if !ok || dst.Type().Key().Kind() != reflect.String {
			return &DecodeError{path, "must be a map"}
		}
		out := reflect.MakeMapWithSize(dst.Type(), len(m))
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			e := reflect.New(dst.Type().Elem()).Elem()
			if err := unmarshal(m[k], e, join(path, k)); err != nil {
				return err
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(dst.Type().Key()), e)
		}
		dst.Set(out)
	case reflect.Struct:
		m, ok := asMap(v)
		if !ok {
			return &DecodeError{path, "must be a structure"}
		}
		t := dst.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, skip := fieldName(f)
			if skip {
				continue
			}
			mv, ok := m[name]
			if !ok {
				continue
			}
			if err := unmarshal(mv, dst.Field(i), join(path, name)); err != nil {
				return err
			}
		}
	case reflect.Interface:
		dst.Set(reflect.ValueOf(v))
	default:
		return &DecodeError{path, "has an unsupported type"}
	}
	return nil
}

func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case Map:
		return m, true
	case *Struct:
		out := make(map[string]any, len(m.Members))
		for _, e := range m.Members {
			out[e.Name] = e.Value
		}
		return out, true
	}
	return nil, false
}
