package awsproto

import (
	"encoding/binary"
	"errors"
	"math"
	"sort"
	"time"
	"unicode/utf8"
)

// CBOR (RFC 8949) as Smithy RPC v2 uses it: maps with text keys for
// structures and maps, arrays for lists, tag 1 with epoch seconds for
// timestamps, integers and doubles kept apart (the Go SDK reads a double
// member only from a float or an integer, an integer member only from an
// integer).

const (
	cborUint   = 0
	cborNegInt = 1
	cborBytes  = 2
	cborText   = 3
	cborArray  = 4
	cborMap    = 5
	cborTag    = 6
	cborSimple = 7
)

// maxCBORDepth bounds nesting in a request.
const maxCBORDepth = 64

// EncodeCBOR writes a value as CBOR.
func EncodeCBOR(v any) []byte {
	return appendCBOR(nil, v)
}

func appendCBOR(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, 0xf6)
	case *Struct:
		b = cborHead(b, cborMap, uint64(len(x.Members)))
		for _, m := range x.Members {
			b = appendCBORText(b, m.Name)
			b = appendCBOR(b, m.Value)
		}
		return b
	case Map:
		return appendCBORMap(b, x)
	case map[string]any:
		return appendCBORMap(b, x)
	case []any:
		b = cborHead(b, cborArray, uint64(len(x)))
		for _, e := range x {
			b = appendCBOR(b, e)
		}
		return b
	case string:
		return appendCBORText(b, x)
	case bool:
		if x {
			return append(b, 0xf5)
		}
		return append(b, 0xf4)
	case int64:
		if x < 0 {
			return cborHead(b, cborNegInt, uint64(-1-x))
		}
		return cborHead(b, cborUint, uint64(x))
	case float64:
		return appendCBORFloat(b, x)
	case time.Time:
		b = cborHead(b, cborTag, 1)
		return appendCBORFloat(b, float64(x.UnixMilli())/1000)
	case []byte:
		b = cborHead(b, cborBytes, uint64(len(x)))
		return append(b, x...)
	}
	return append(b, 0xf6)
}

func appendCBORMap[M ~map[string]any](b []byte, m M) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = cborHead(b, cborMap, uint64(len(keys)))
	for _, k := range keys {
		b = appendCBORText(b, k)
		b = appendCBOR(b, m[k])
	}
	return b
}

func appendCBORText(b []byte, s string) []byte {
	b = cborHead(b, cborText, uint64(len(s)))
	return append(b, s...)
}

func appendCBORFloat(b []byte, f float64) []byte {
	b = append(b, 0xfb)
	return binary.BigEndian.AppendUint64(b, math.Float64bits(f))
}

func cborHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= math.MaxUint8:
		return append(b, m|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), n)
}

// DecodeCBOR decodes an rpcv2-cbor request body (an empty body is an empty
// structure) into a value: maps become map[string]any (keys must be text),
// tag 1 a time.Time, other tags their content; nulls are absent members.
func DecodeCBOR(body []byte) (map[string]any, error) {
	if len(body) == 0 {
		return map[string]any{}, nil
	}
	d := cborDecoder{p: body}
	v, err := d.value(0)
	if err != nil {
		return nil, &DecodeError{Reason: "The request body is not valid CBOR: " + err.Error() + "."}
	}
	if d.off != len(d.p) {
		return nil, &DecodeError{Reason: "The request body has data after its CBOR value."}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &DecodeError{Reason: "The request body must be a CBOR map."}
	}
	return m, nil
}

type cborDecoder struct {
	p   []byte
	off int
}

var (
	errCBORTruncated = errors.New("truncated")
	errCBORDepth     = errors.New("nested too deeply")
	errCBORSyntax    = errors.New("malformed")
	errCBORKey       = errors.New("map key is not a text string")
	errCBORUTF8      = errors.New("text string is not UTF-8")
)

// cborBreak is the "break" stop code of indefinite-length items.
type cborBreak struct{}

func (d *cborDecoder) head() (major byte, minor byte, arg uint64, err error) {
	if d.off >= len(d.p) {
		return 0, 0, 0, errCBORTruncated
	}
	ib := d.p[d.off]
	d.off++
	major, minor = ib>>5, ib&0x1f
	switch {
	case minor < 24:
		return major, minor, uint64(minor), nil
	case minor <= 27:
		n := 1 << (minor - 24)
		if len(d.p)-d.off < n {
			return 0, 0, 0, errCBORTruncated
		}
		var a uint64
		for _, c := range d.p[d.off : d.off+n] {
			a = a<<8 | uint64(c)
		}
		d.off += n
		return major, minor, a, nil
	case minor == 31:
		return major, minor, 0, nil
	}
	return 0, 0, 0, errCBORSyntax
}

// remaining bounds a declared count: every item takes at least one byte.
func (d *cborDecoder) remaining() uint64 { return uint64(len(d.p) - d.off) }

func (d *cborDecoder) value(depth int) (any, error) {
	if depth > maxCBORDepth {
		return nil, errCBORDepth
	}
	major, minor, arg, err := d.head()
	if err != nil {
		return nil, err
	}
	indefinite := minor == 31
	switch major {
	case cborUint:
		if indefinite {
			return nil, errCBORSyntax
		}
		if arg > math.MaxInt64 {
			return float64(arg), nil
		}
		return int64(arg), nil
	case cborNegInt:
		if indefinite {
			return nil, errCBORSyntax
		}
		if arg > math.MaxInt64 {
			return -1 - float64(arg), nil
		}
		return -1 - int64(arg), nil
	case cborBytes, cborText:
		s, err := d.str(major, arg, indefinite)
		if err != nil {
			return nil, err
		}
		if major == cborText {
			if !utf8.Valid(s) {
				return nil, errCBORUTF8
			}
			return string(s), nil
		}
		return s, nil
	case cborArray:
		var l []any
		if !indefinite && arg > d.remaining() {
			return nil, errCBORTruncated
		}
		for i := uint64(0); indefinite || i < arg; i++ {
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if _, end := v.(cborBreak); end {
				if !indefinite {
					return nil, errCBORSyntax
				}
				break
			}
			if v == nil {
				return nil, errors.New("null list element")
			}
			l = append(l, v)
		}
		if l == nil {
			l = []any{}
		}
		return l, nil
	case cborMap:
		if !indefinite && arg > d.remaining()/2 {
			return nil, errCBORTruncated
		}
		m := map[string]any{}
		for i := uint64(0); indefinite || i < arg; i++ {
			k, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if _, end := k.(cborBreak); end {
				if !indefinite {
					return nil, errCBORSyntax
				}
				break
			}
			ks, ok := k.(string)
			if !ok {
				return nil, errCBORKey
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if _, end := v.(cborBreak); end {
				return nil, errCBORSyntax
			}
			if _, dup := m[ks]; dup {
				return nil, errors.New("duplicate map key")
			}
			if v != nil {
				m[ks] = v
			}
		}
		return m, nil
	case cborTag:
		if indefinite {
			return nil, errCBORSyntax
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if _, end := v.(cborBreak); end {
			return nil, errCBORSyntax
		}
		if arg == 1 {
			t, err := toTime(v)
			if err != nil {
				return nil, errors.New("tag 1 without epoch seconds")
			}
			return t, nil
		}
		return v, nil
	case cborSimple:
		switch {
		case minor == 20:
			return false, nil
		case minor == 21:
			return true, nil
		case minor == 22 || minor == 23:
			return nil, nil
		case minor == 25:
			return float64(math.Float32frombits(half(uint16(arg)))), nil
		case minor == 26:
			return float64(math.Float32frombits(uint32(arg))), nil
		case minor == 27:
			return math.Float64frombits(arg), nil
		case minor == 31:
			return cborBreak{}, nil
		}
		return nil, errCBORSyntax
	}
	return nil, errCBORSyntax
}

// str reads a byte or text string, definite or made of definite chunks.
func (d *cborDecoder) str(major byte, n uint64, indefinite bool) ([]byte, error) {
	if !indefinite {
		if n > d.remaining() {
			return nil, errCBORTruncated
		}
		s := d.p[d.off : d.off+int(n)]
		d.off += int(n)
		return s, nil
	}
	var out []byte
	for {
		m, minor, arg, err := d.head()
		if err != nil {
			return nil, err
		}
		if m == cborSimple && minor == 31 {
			return out, nil
		}
		if m != major || minor == 31 {
			return nil, errCBORSyntax
		}
		c, err := d.str(major, arg, false)
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
}

// half converts an IEEE 754 half-precision float to single precision.
func half(h uint16) uint32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch exp {
	case 0:
		if frac == 0 {
			return sign
		}
		// Subnormal: normalise.
		e := uint32(127 - 15 + 1)
		for frac&0x400 == 0 {
			frac <<= 1
			e--
		}
		return sign | e<<23 | (frac&0x3ff)<<13
	case 0x1f:
		return sign | 0xff<<23 | frac<<13
	}
	return sign | (exp+127-15)<<23 | frac<<13
}
