package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// ReadlinkArgs are READLINK3args.
type ReadlinkArgs = FHArgs

// ReadlinkRes is READLINK3res.
type ReadlinkRes struct {
	Status Status
	Attr   *Attr  // both arms
	Target string // OK
}

// Encode appends the result.
func (r *ReadlinkRes) Encode(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	EncodePostOp(e, r.Attr)
	if r.Status == OK {
		e.String(r.Target)
	}
}

// Decode reads the result.
func (r *ReadlinkRes) Decode(d *xdr.Decoder) {
	r.Status = Status(d.Uint32())
	r.Attr = DecodePostOp(d)
	if r.Status == OK {
		r.Target = d.String(MaxPath)
	}
}
