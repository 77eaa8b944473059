package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// GetAttrArgs are GETATTR3args.
type GetAttrArgs = FHArgs

// GetAttrRes is GETATTR3res.
type GetAttrRes struct {
	Status Status
	Attr   Attr // OK
}

// Encode appends the result.
func (r *GetAttrRes) Encode(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	if r.Status == OK {
		r.Attr.Encode(e)
	}
}

// Decode reads the result.
func (r *GetAttrRes) Decode(d *xdr.Decoder) {
	r.Status = Status(d.Uint32())
	if r.Status == OK {
		r.Attr.Decode(d)
	}
}
