package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// SymlinkArgs are SYMLINK3args.
type SymlinkArgs struct {
	Where  DirOp
	Attr   Sattr
	Target string
}

// Encode appends the arguments.
func (a *SymlinkArgs) Encode(e *xdr.Encoder) {
	a.Where.Encode(e)
	a.Attr.Encode(e)
	e.String(a.Target)
}

// Decode reads the arguments.
func (a *SymlinkArgs) Decode(d *xdr.Decoder) {
	a.Where.Decode(d)
	a.Attr.Decode(d)
	a.Target = d.String(MaxPath)
}

// SymlinkRes is SYMLINK3res.
type SymlinkRes = CreateRes
