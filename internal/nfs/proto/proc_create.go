package proto

import (
	"fmt"

	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// CreateMode is a createmode3.
type CreateMode uint32

// createmode3 values.
const (
	Unchecked CreateMode = 0
	Guarded   CreateMode = 1
	Exclusive CreateMode = 2
)

// CreateArgs are CREATE3args.
type CreateArgs struct {
	Where DirOp
	Mode  CreateMode
	Attr  Sattr                // Unchecked, Guarded
	Verf  [CreateVerfSize]byte // Exclusive
}

// Encode appends the arguments.
func (a *CreateArgs) Encode(e *xdr.Encoder) {
	a.Where.Encode(e)
	e.Uint32(uint32(a.Mode))
	if a.Mode == Exclusive {
		e.Fixed(a.Verf[:])
	} else {
		a.Attr.Encode(e)
	}
}

// Decode reads the arguments.
func (a *CreateArgs) Decode(d *xdr.Decoder) {
	a.Where.Decode(d)
	a.Mode = CreateMode(d.Uint32())
	switch a.Mode {
	case Unchecked, Guarded:
		a.Attr.Decode(d)
	case Exclusive:
		copy(a.Verf[:], d.Fixed(CreateVerfSize))
	default:
		d.Fail(fmt.Errorf("%w: createmode3 %d", xdr.ErrBadValue, a.Mode))
	}
}

// CreateRes is the result of CREATE, MKDIR, SYMLINK and MKNOD (CREATE3res,
// MKDIR3res, SYMLINK3res, MKNOD3res).
type CreateRes struct {
	Status Status
	FH     FH    // OK; post_op_fh3 (nil = absent)
	Attr   *Attr // OK
	DirWcc Wcc   // both arms
}

// Encode appends the result.
func (r *CreateRes) Encode(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	if r.Status == OK {
		EncodePostOpFH(e, r.FH)
		EncodePostOp(e, r.Attr)
	}
	r.DirWcc.Encode(e)
}

// Decode reads the result.
func (r *CreateRes) Decode(d *xdr.Decoder) {
	r.Status = Status(d.Uint32())
	if r.Status == OK {
		r.FH = DecodePostOpFH(d)
		r.Attr = DecodePostOp(d)
	}
	r.DirWcc.Decode(d)
}
