package proto

import (
	"math"

	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// ReadArgs are READ3args.
type ReadArgs struct {
	FH     FH
	Offset uint64
	Count  uint32
}

// Encode appends the arguments.
func (a *ReadArgs) Encode(e *xdr.Encoder) {
	a.FH.Encode(e)
	e.Uint64(a.Offset)
	e.Uint32(a.Count)
}

// Decode reads the arguments.
func (a *ReadArgs) Decode(d *xdr.Decoder) {
	a.FH = DecodeFH(d)
	a.Offset = d.Uint64()
	a.Count = d.Uint32()
}

// ReadRes is READ3res. The data is not copied by Decode.
type ReadRes struct {
	Status Status
	Attr   *Attr // both arms
	Count  uint32
	EOF    bool
	Data   []byte
}

// Encode appends the result.
func (r *ReadRes) Encode(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	EncodePostOp(e, r.Attr)
	if r.Status == OK {
		e.Uint32(r.Count)
		e.Bool(r.EOF)
		e.Opaque(r.Data)
	}
}

// EncodeHead appends the result up to the data's length and returns the
// data, which the caller sends after it, followed by Pad(len(data)) zero
// bytes (so that a large READ is not copied into the reply buffer).
func (r *ReadRes) EncodeHead(e *xdr.Encoder) []byte {
	e.Uint32(uint32(r.Status))
	EncodePostOp(e, r.Attr)
	if r.Status != OK {
		return nil
	}
	e.Uint32(r.Count)
	e.Bool(r.EOF)
	e.Uint32(uint32(len(r.Data)))
	return r.Data
}

// Pad returns the XDR padding that follows n bytes of opaque data.
func Pad(n int) []byte { return zeros[:(4-n&3)&3] }

var zeros [4]byte

// Decode reads the result.
func (r *ReadRes) Decode(d *xdr.Decoder) {
	r.Status = Status(d.Uint32())
	r.Attr = DecodePostOp(d)
	if r.Status == OK {
		r.Count = d.Uint32()
		r.EOF = d.Bool()
		r.Data = d.Opaque(math.MaxInt32)
	}
}
