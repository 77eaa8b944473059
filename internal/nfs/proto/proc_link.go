package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// LinkArgs are LINK3args.
type LinkArgs struct {
	FH   FH
	Link DirOp
}

// Encode appends the arguments.
func (a *LinkArgs) Encode(e *xdr.Encoder) {
	a.FH.Encode(e)
	a.Link.Encode(e)
}

// Decode reads the arguments.
func (a *LinkArgs) Decode(d *xdr.Decoder) {
	a.FH = DecodeFH(d)
	a.Link.Decode(d)
}

// LinkRes is LINK3res.
type LinkRes struct {
	Status Status
	Attr   *Attr // both arms
	DirWcc Wcc   // both arms
}

// Encode appends the result.
func (r *LinkRes) Encode(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	EncodePostOp(e, r.Attr)
	r.DirWcc.Encode(e)
}

// Decode reads the result.
func (r *LinkRes) Decode(d *xdr.Decoder) {
	r.Status = Status(d.Uint32())
	r.Attr = DecodePostOp(d)
	r.DirWcc.Decode(d)
}
