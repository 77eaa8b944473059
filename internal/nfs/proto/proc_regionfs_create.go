package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// ExclusiveCreateArgs are the arguments of REGIONFS_CREATE
// (ProcRegionFSCreate): where, the create verifier, then the attributes
// to make the file with (sattr3; a size is refused with NFS3ERR_INVAL).
// The reply is CREATE3res (CreateRes).
type ExclusiveCreateArgs struct {
	Where DirOp
	Verf  [CreateVerfSize]byte
	Attr  Sattr
}

// Encode appends the arguments.
func (a *ExclusiveCreateArgs) Encode(e *xdr.Encoder) {
	a.Where.Encode(e)
	e.Fixed(a.Verf[:])
	a.Attr.Encode(e)
}

// Decode reads the arguments.
func (a *ExclusiveCreateArgs) Decode(d *xdr.Decoder) {
	a.Where.Decode(d)
	copy(a.Verf[:], d.Fixed(CreateVerfSize))
	a.Attr.Decode(d)
}
