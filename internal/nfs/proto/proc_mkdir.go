package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// MkdirArgs are MKDIR3args.
type MkdirArgs struct {
	Where DirOp
	Attr  Sattr
}

// Encode appends the arguments.
func (a *MkdirArgs) Encode(e *xdr.Encoder) {
	a.Where.Encode(e)
	a.Attr.Encode(e)
}

// Decode reads the arguments.
func (a *MkdirArgs) Decode(d *xdr.Decoder) {
	a.Where.Decode(d)
	a.Attr.Decode(d)
}

// MkdirRes is MKDIR3res.
type MkdirRes = CreateRes
