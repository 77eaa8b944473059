package proto

import (
	"fmt"

	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// MknodArgs are MKNOD3args.
type MknodArgs struct {
	Where        DirOp
	Type         FileType
	Attr         Sattr  // CHR, BLK, SOCK, FIFO
	Major, Minor uint32 // CHR, BLK
}

// Encode appends the arguments.
func (a *MknodArgs) Encode(e *xdr.Encoder) {
	a.Where.Encode(e)
	e.Uint32(uint32(a.Type))
	switch a.Type {
	case TypeChr, TypeBlk:
		a.Attr.Encode(e)
		e.Uint32(a.Major)
		e.Uint32(a.Minor)
	case TypeSock, TypeFIFO:
		a.Attr.Encode(e)
	}
}

// Decode reads the arguments. Types without a mknoddata3 arm (REG, DIR,
// LNK) decode to void; the procedure answers NFS3ERR_BADTYPE for them.
func (a *MknodArgs) Decode(d *xdr.Decoder) {
	a.Where.Decode(d)
	a.Type = FileType(d.Uint32())
	switch a.Type {
	case TypeChr, TypeBlk:
		a.Attr.Decode(d)
		a.Major = d.Uint32()
		a.Minor = d.Uint32()
	case TypeSock, TypeFIFO:
		a.Attr.Decode(d)
	case TypeReg, TypeDir, TypeLnk:
	default:
		d.Fail(fmt.Errorf("%w: ftype3 %d", xdr.ErrBadValue, a.Type))
	}
}

// MknodRes is MKNOD3res.
type MknodRes = CreateRes
