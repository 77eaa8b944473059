package xdr

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Decoding errors.
var (
	// ErrShort: the input ended inside an item.
	ErrShort = errors.New("xdr: input too short")
	// ErrTooLong: a variable-length item exceeds its declared maximum.
	ErrTooLong = errors.New("xdr: item longer than its maximum")
	// ErrBadValue: an enum, boolean or discriminant has a value outside
	// its type.
	ErrBadValue = errors.New("xdr: value out of range")
	// ErrTrailing: bytes are left after the last item.
	ErrTrailing = errors.New("xdr: trailing bytes")
)

// pad returns the number of zero bytes that follow n bytes of opaque data.
func pad(n int) int { return (4 - n&3) & 3 }

// Encoder appends XDR items to a buffer.
type Encoder struct {
	b []byte
}

// NewEncoder returns an encoder appending to buf (which may be nil).
func NewEncoder(buf []byte) *Encoder { return &Encoder{b: buf} }

// Bytes returns the encoded bytes.
func (e *Encoder) Bytes() []byte { return e.b }

// Len returns the number of bytes encoded so far.
func (e *Encoder) Len() int { return len(e.b) }

// Reset empties the buffer, keeping its capacity.
func (e *Encoder) Reset() { e.b = e.b[:0] }

// Uint32 appends an unsigned int.
func (e *Encoder) Uint32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }

// Int32 appends an int.
func (e *Encoder) Int32(v int32) { e.Uint32(uint32(v)) }

// Uint64 appends an unsigned hyper.
func (e *Encoder) Uint64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }

// Bool appends a boolean.
func (e *Encoder) Bool(v bool) {
	if v {
		e.Uint32(1)
	} else {
		e.Uint32(0)
	}
}

// Fixed appends fixed-length opaque data (the length is not encoded).
func (e *Encoder) Fixed(p []byte) {
	e.b = append(e.b, p...)
	for range pad(len(p)) {
		e.b = append(e.b, 0)
	}
}

// Opaque appends variable-length opaque data.
func (e *Encoder) Opaque(p []byte) {
	e.Uint32(uint32(len(p)))
	e.Fixed(p)
}

// String appends a string.
func (e *Encoder) String(s string) {
	e.Uint32(uint32(len(s)))
	e.b = append(e.b, s...)
	for range pad(len(s)) {
		e.b = append(e.b, 0)
	}
}

// Reserve appends n zero bytes and returns their offset, to be filled in
// later with PutUint32At (for example a length or a count known only at the
// end).
func (e *Encoder) Reserve(n int) int {
	off := len(e.b)
	for range n {
		e.b = append(e.b, 0)
	}
	return off
}

// PutUint32At overwrites four bytes at off.
func (e *Encoder) PutUint32At(off int, v uint32) { binary.BigEndian.PutUint32(e.b[off:], v) }

// Truncate cuts the buffer back to n bytes (to drop an item that did not
// fit a size budget).
func (e *Encoder) Truncate(n int) { e.b = e.b[:n] }

// Decoder reads XDR items from a buffer. The first error sticks.
type Decoder struct {
	b   []byte
	off int
	err error
}

// NewDecoder returns a decoder over b. It does not copy b: byte slices it
// returns alias b unless documented otherwise.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

// Err returns the first error met.
func (d *Decoder) Err() error { return d.err }

// Fail records err (if no error was recorded yet); decoders of composite
// types use it for semantic errors.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// Remaining returns the number of bytes not read yet.
func (d *Decoder) Remaining() int { return len(d.b) - d.off }

// Offset returns the number of bytes read.
func (d *Decoder) Offset() int { return d.off }

// Rest returns the bytes not read yet and consumes them.
func (d *Decoder) Rest() []byte {
	if d.err != nil {
		return nil
	}
	r := d.b[d.off:]
	d.off = len(d.b)
	return r
}

// Done returns the sticky error, or ErrTrailing when bytes are left.
func (d *Decoder) Done() error {
	if d.err != nil {
		return d.err
	}
	if d.off != len(d.b) {
		return fmt.Errorf("%w: %d bytes", ErrTrailing, len(d.b)-d.off)
	}
	return nil
}

func (d *Decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.err = ErrShort
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

// Uint32 reads an unsigned int.
func (d *Decoder) Uint32() uint32 {
	p := d.take(4)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

// Int32 reads an int.
func (d *Decoder) Int32() int32 { return int32(d.Uint32()) }

// Uint64 reads an unsigned hyper.
func (d *Decoder) Uint64() uint64 {
	p := d.take(8)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

// Bool reads a boolean; values other than 0 and 1 are ErrBadValue.
func (d *Decoder) Bool() bool {
	v := d.Uint32()
	if v > 1 {
		d.Fail(fmt.Errorf("%w: boolean %d", ErrBadValue, v))
		return false
	}
	return v == 1
}

// Fixed reads n bytes of fixed-length opaque data and their padding. The
// result aliases the input.
func (d *Decoder) Fixed(n int) []byte {
	p := d.take(n)
	if p == nil && d.err != nil {
		return nil
	}
	d.take(pad(n))
	if d.err != nil {
		return nil
	}
	return p
}

// Opaque reads variable-length opaque data of at most max bytes. The
// result aliases the input.
func (d *Decoder) Opaque(max int) []byte {
	n := d.Uint32()
	if d.err != nil {
		return nil
	}
	if uint64(n) > uint64(max) {
		d.Fail(fmt.Errorf("%w: %d > %d bytes", ErrTooLong, n, max))
		return nil
	}
	if int(n) > d.Remaining() {
		d.Fail(ErrShort)
		return nil
	}
	return d.Fixed(int(n))
}

// String reads a string of at most max bytes.
func (d *Decoder) String(max int) string { return string(d.Opaque(max)) }

// Count reads an array length of at most max elements; each element
// occupies at least minSize bytes, so a count the remaining input cannot
// hold fails before the caller allocates.
func (d *Decoder) Count(max, minSize int) int {
	n := d.Uint32()
	if d.err != nil {
		return 0
	}
	if uint64(n) > uint64(max) {
		d.Fail(fmt.Errorf("%w: %d > %d elements", ErrTooLong, n, max))
		return 0
	}
	if minSize > 0 && uint64(n)*uint64(minSize) > uint64(d.Remaining()) {
		d.Fail(ErrShort)
		return 0
	}
	return int(n)
}
