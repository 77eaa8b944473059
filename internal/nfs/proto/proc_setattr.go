package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// SetAttrArgs are SETATTR3args.
type SetAttrArgs struct {
	FH    FH
	Attr  Sattr
	Guard *Time // sattrguard3: apply only if the object's ctime equals it
}

// Encode appends the arguments.
func (a *SetAttrArgs) Encode(e *xdr.Encoder) {
	a.FH.Encode(e)
	a.Attr.Encode(e)
	e.Bool(a.Guard != nil)
	if a.Guard != nil {
		a.Guard.Encode(e)
	}
}

// Decode reads the arguments.
func (a *SetAttrArgs) Decode(d *xdr.Decoder) {
	a.FH = DecodeFH(d)
	a.Attr.Decode(d)
	a.Guard = nil
	if d.Bool() {
		t := DecodeTime(d)
		a.Guard = &t
	}
}

// WccRes is a result that carries a status and wcc_data in both arms
// (SETATTR, REMOVE, RMDIR).
type WccRes struct {
	Status Status
	Wcc    Wcc
}

// Encode appends the result.
func (r *WccRes) Encode(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	r.Wcc.Encode(e)
}

// Decode reads the result.
func (r *WccRes) Decode(d *xdr.Decoder) {
	r.Status = Status(d.Uint32())
	r.Wcc.Decode(d)
}

// SetAttrRes is SETATTR3res.
type SetAttrRes = WccRes
