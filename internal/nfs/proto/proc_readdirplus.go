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
func (r *ReadDirPlusRes) Encode(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	EncodePostOp(e, r.DirAttr)
	if r.Status != OK {
		return
	}
	e.Fixed(r.Verf[:])
	for i := range r.Entries {
		en := &r.Entries[i]
		e.Bool(true)
		e.Uint64(en.FileID)
		e.String(en.Name)
		e.Uint64(en.Cookie)
		EncodePostOp(e, en.Attr)
		EncodePostOpFH(e, en.FH)
	}
	e.Bool(false)
	e.Bool(r.EOF)
}

// Decode reads the result.
func (r *ReadDirPlusRes) Decode(d *xdr.Decoder) {
	r.Status = Status(d.Uint32())
	r.DirAttr = DecodePostOp(d)
	if r.Status != OK {
		return
	}
	copy(r.Verf[:], d.Fixed(CookieVerfSize))
	r.Entries = nil
	for d.Bool() && d.Err() == nil {
		en := DirEntry{FileID: d.Uint64(), Name: d.String(MaxName), Cookie: d.Uint64()}
		en.Attr = DecodePostOp(d)
		en.FH = DecodePostOpFH(d)
		if d.Err() != nil {
			return
		}
		r.Entries = append(r.Entries, en)
	}
	r.EOF = d.Bool()
}
