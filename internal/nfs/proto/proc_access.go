package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// ACCESS bits.
const (
	AccessRead    = 0x01
	AccessLookup  = 0x02
	AccessModify  = 0x04
	AccessExtend  = 0x08
	AccessDelete  = 0x10
	AccessExecute = 0x20
)

// AccessArgs are ACCESS3args.
type AccessArgs struct {
	FH     FH
	Access uint32
}

// Encode appends the arguments.
func (a *AccessArgs) Encode(e *xdr.Encoder) {
	a.FH.Encode(e)
	e.Uint32(a.Access)
}

// Decode reads the arguments.
func (a *AccessArgs) Decode(d *xdr.Decoder) {
	a.FH = DecodeFH(d)
	a.Access = d.Uint32()
}

// AccessRes is ACCESS3res.
type AccessRes struct {
	Status Status
	Attr   *Attr  // both arms
	Access uint32 // OK
}

// Encode appends the result.
func (r *AccessRes) Encode(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	EncodePostOp(e, r.Attr)
	if r.Status == OK {
		e.Uint32(r.Access)
	}
}

// Decode reads the result.
func (r *AccessRes) Decode(d *xdr.Decoder) {
	r.Status = Status(d.Uint32())
	r.Attr = DecodePostOp(d)
	if r.Status == OK {
		r.Access = d.Uint32()
	}
}
