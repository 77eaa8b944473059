package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// PathConfArgs are PATHCONF3args.
type PathConfArgs = FHArgs

// PathConfRes is PATHCONF3res.
type PathConfRes struct {
	Status          Status
	Attr            *Attr // both arms
	LinkMax         uint32
	NameMax         uint32
	NoTrunc         bool
	ChownRestricted bool
	CaseInsensitive bool
	CasePreserving  bool
}

// Encode appends the result.
func (r *PathConfRes) Encode(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	EncodePostOp(e, r.Attr)
	if r.Status == OK {
		e.Uint32(r.LinkMax)
		e.Uint32(r.NameMax)
		e.Bool(r.NoTrunc)
		e.Bool(r.ChownRestricted)
		e.Bool(r.CaseInsensitive)
		e.Bool(r.CasePreserving)
	}
}

// Decode reads the result.
func (r *PathConfRes) Decode(d *xdr.Decoder) {
	r.Status = Status(d.Uint32())
	r.Attr = DecodePostOp(d)
	if r.Status == OK {
		r.LinkMax = d.Uint32()
		r.NameMax = d.Uint32()
		r.NoTrunc = d.Bool()
		r.ChownRestricted = d.Bool()
		r.CaseInsensitive = d.Bool()
		r.CasePreserving = d.Bool()
	}
}
