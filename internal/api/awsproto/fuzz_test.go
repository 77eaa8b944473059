package awsproto

import (
	"errors"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The fuzzers check that no input makes a decoder panic or return an
// error of another type, and that what decodes survives a round trip.

func FuzzDecodeQuery(f *testing.F) {
	for _, s := range []string{"", "a=1", "A.member.1=x&A.member.2=y", "M.entry.1.key=k&M.entry.1.value=v", "a.b.c=1&a.b=2", "A.member.3=x", "F.1.Name=x"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, q string, ec2 bool) {
		vals, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		v, err := DecodeQuery(vals, ec2)
		checkDecodeErr(t, err)
		if err != nil {
			return
		}
		var in input
		checkDecodeErr(t, Unmarshal(v, &in))
		var anyIn map[string]any
		checkDecodeErr(t, Unmarshal(v, &anyIn))
	})
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{``, `{}`, `[]`, `null`, `{"Namespace":"x","MetricData":[{"MetricName":"m","Value":1e308}]}`, `{"Period":1.5}`, `{"a":1} {}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeJSON(b)
		checkDecodeErr(t, err)
		if err != nil {
			return
		}
		var in input
		checkDecodeErr(t, Unmarshal(v, &in))
	})
}

func FuzzDecodeCBOR(f *testing.F) {
	for _, s := range []string{"a0", "a1616101", "bf61619f0102ff6162f6ff", "a16161c11a514b67b0", "a161617f62616262626dff", "9b00000000ffffffff"} {
		f.Add(unhex(s))
	}
	f.Add(EncodeCBOR(Marshal(want)))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeCBOR(b)
		checkDecodeErr(t, err)
		if err != nil {
			return
		}
		var in input
		checkDecodeErr(t, Unmarshal(v, &in))
		// Whatever decodes encodes and decodes to the same value.
		again, err := DecodeCBOR(EncodeCBOR(v))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if d := cmp.Diff(v, again, cmp.Comparer(func(a, b float64) bool { return a == b || (a != a && b != b) })); d != "" {
			t.Fatalf("round trip: %s", d)
		}
	})
}

func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	var de *DecodeError
	if err != nil && !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
	}
}
