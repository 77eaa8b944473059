package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// LookupArgs are LOOKUP3args.
type LookupArgs = DirOp

// LookupRes is LOOKUP3res.
type LookupRes struct {
	Status  Status
	FH      FH    // OK
	Attr    *Attr // OK
	DirAttr *Attr // both arms
}

// Encode appends the result.
func (r *LookupRes) Encode(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	if r.Status == OK {
		r.FH.Encode(e)
		EncodePostOp(e, r.Attr)
	}
	EncodePostOp(e, r.DirAttr)
}

// Decode reads the result.
func (r *LookupRes) Decode(d *xdr.Decoder) {
	r.Status = Status(d.Uint32())
	if r.Status == OK {
		r.FH = DecodeFH(d)
		r.Attr = DecodePostOp(d)
	}
	r.DirAttr = DecodePostOp(d)
}
