package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// RenameArgs are RENAME3args.
type RenameArgs struct {
	From, To DirOp
}

// Encode appends the arguments.
func (a *RenameArgs) Encode(e *xdr.Encoder) {
	a.From.Encode(e)
	a.To.Encode(e)
}

// Decode reads the arguments.
func (a *RenameArgs) Decode(d *xdr.Decoder) {
	a.From.Decode(d)
	a.To.Decode(d)
}

// RenameRes is RENAME3res.
type RenameRes struct {
	Status         Status
	FromWcc, ToWcc Wcc
}

// Encode appends the result.
func (r *RenameRes) Encode(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	r.FromWcc.Encode(e)
	r.ToWcc.Encode(e)
}

// Decode reads the result.
func (r *RenameRes) Decode(d *xdr.Decoder) {
	r.Status = Status(d.Uint32())
	r.FromWcc.Decode(d)
	r.ToWcc.Decode(d)
}
