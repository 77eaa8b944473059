package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// ReadDirArgs are READDIR3args.
type ReadDirArgs struct {
	FH     FH
	Cookie uint64
	Verf   [CookieVerfSize]byte
	Count  uint32
}

// Encode appends the arguments.
func (a *ReadDirArgs) Encode(e *xdr.Encoder) {
	a.FH.Encode(e)
	e.Uint64(a.Cookie)
	e.Fixed(a.Verf[:])
	e.Uint32(a.Count)
}

// Decode reads the arguments.
func (a *ReadDirArgs) Decode(d *xdr.Decoder) {
	a.FH = DecodeFH(d)
	a.Cookie = d.Uint64()
	copy(a.Verf[:], d.Fixed(CookieVerfSize))
	a.Count = d.Uint32()
}

// DirEntry is an entry3 (and, with Attr and FH, an entryplus3).
type DirEntry struct {
	FileID uint64
	Name   string
	Cookie uint64
	Attr   *Attr // READDIRPLUS only
	FH     FH    // READDIRPLUS only (nil = absent)
}

func xdrLen(n int) int { return 4 + n + (4-n&3)&3 }

// EntrySize is the encoded size of an entry3 with this name, including
// its value_follows word.
func EntrySize(name string) int { return 4 + 8 + xdrLen(len(name)) + 8 }

// EntryPlusSize is the encoded size of an entryplus3.
func EntryPlusSize(name string, attr bool, fhLen int) int {
	n := EntrySize(name) + 4 + 4
	if attr {
		n += AttrSize
	}
	if fhLen >= 0 {
		n += xdrLen(fhLen)
	}
	return n
}

// ReadDirResOverhead is the size of a READDIR3resok without entries: status,
// post_op_attr (with attributes), verifier, the list's end marker and eof.
const ReadDirResOverhead = 4 + 4 + AttrSize + CookieVerfSize + 4 + 4

// ReadDirRes is READDIR3res.
type ReadDirRes struct {
	Status  Status
	DirAttr *Attr // both arms
	Verf    [CookieVerfSize]byte
	Entries []DirEntry
	EOF     bool
}

// Encode appends the result.
func (r *ReadDirRes) Encode(e *xdr.Encoder) { r.encode(e, false) }

// Decode reads the result.
func (r *ReadDirRes) Decode(d *xdr.Decoder) { r.decode(d, false) }

// encode appends a READDIR3res, or with plus a READDIRPLUS3res (each entry
// with its attributes and handle: ReadDirPlusRes has the same fields).
func (r *ReadDirRes) encode(e *xdr.Encoder, plus bool) {
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
		if plus {
			EncodePostOp(e, en.Attr)
			EncodePostOpFH(e, en.FH)
		}
	}
	e.Bool(false)
	e.Bool(r.EOF)
}

// decode reads what encode writes.
func (r *ReadDirRes) decode(d *xdr.Decoder, plus bool) {
	r.Status = Status(d.Uint32())
	r.DirAttr = DecodePostOp(d)
	if r.Status != OK {
		return
	}
	copy(r.Verf[:], d.Fixed(CookieVerfSize))
	r.Entries = nil
	for d.Bool() && d.Err() == nil {
		en := DirEntry{FileID: d.Uint64(), Name: d.String(MaxName), Cookie: d.Uint64()}
		if plus {
			en.Attr = DecodePostOp(d)
			en.FH = DecodePostOpFH(d)
		}
		if d.Err() != nil {
			return
		}
		r.Entries = append(r.Entries, en)
	}
	r.EOF = d.Bool()
}
