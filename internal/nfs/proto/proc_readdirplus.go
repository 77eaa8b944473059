package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// ReadDirPlusArgs are READDIRPLUS3args.
type ReadDirPlusArgs struct {
	FH       FH
	Cookie   uint64
	Verf     [CookieVerfSize]byte
	DirCount uint32 // bytes of directory information (fileid, name, cookie)
	MaxCount uint32 // bytes of the whole reply
}

// Encode appends the arguments.
func (a *ReadDirPlusArgs) Encode(e *xdr.Encoder) {
	a.FH.Encode(e)
	e.Uint64(a.Cookie)
	e.Fixed(a.Verf[:])
	e.Uint32(a.DirCount)
	e.Uint32(a.MaxCount)
}

// Decode reads the arguments.
func (a *ReadDirPlusArgs) Decode(d *xdr.Decoder) {
	a.FH = DecodeFH(d)
	a.Cookie = d.Uint64()
	copy(a.Verf[:], d.Fixed(CookieVerfSize))
	a.DirCount = d.Uint32()
	a.MaxCount = d.Uint32()
}

// ReadDirPlusRes is READDIRPLUS3res.
type ReadDirPlusRes struct {
	Status  Status
	DirAttr *Attr // both arms
	Verf    [CookieVerfSize]byte
	Entries []DirEntry
	EOF     bool
}

// Encode appends the result.
func (r *ReadDirPlusRes) Encode(e *xdr.Encoder) { (*ReadDirRes)(r).encode(e, true) }

// Decode reads the result.
func (r *ReadDirPlusRes) Decode(d *xdr.Decoder) { (*ReadDirRes)(r).decode(d, true) }
