package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// CommitArgs are COMMIT3args.
type CommitArgs struct {
	FH     FH
	Offset uint64
	Count  uint32
}

// Encode appends the arguments.
func (a *CommitArgs) Encode(e *xdr.Encoder) {
	a.FH.Encode(e)
	e.Uint64(a.Offset)
	e.Uint32(a.Count)
}

// Decode reads the arguments.
func (a *CommitArgs) Decode(d *xdr.Decoder) {
	a.FH = DecodeFH(d)
	a.Offset = d.Uint64()
	a.Count = d.Uint32()
}

// CommitRes is COMMIT3res.
type CommitRes struct {
	Status Status
	Wcc    Wcc // both arms
	Verf   [WriteVerfSize]byte
}

// Encode appends the result.
func (r *CommitRes) Encode(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	r.Wcc.Encode(e)
	if r.Status == OK {
		e.Fixed(r.Verf[:])
	}
}

// Decode reads the result.
func (r *CommitRes) Decode(d *xdr.Decoder) {
	r.Status = Status(d.Uint32())
	r.Wcc.Decode(d)
	if r.Status == OK {
		copy(r.Verf[:], d.Fixed(WriteVerfSize))
	}
}
