package engine

import (
	"context"
	"encoding/binary"
	"fmt"
)

// DirEntry is one entry of a directory listing.
type DirEntry struct {
	Name   string
	Ino    uint64
	Type   FileType
	Cookie uint64 // resume a listing after this entry by passing it back
	// Attr is set by ReadDir with plus (nil when the inode vanished).
	Attr *Attr
}

// ReadDir lists up to max entries of dir after cookie (0 = from the start),
// without "." and "..". Cookies are stable: an entry keeps its cookie for
// its whole life, so a listing interrupted by concurrent creates and
// removes neither repeats nor skips entries that survive. The cost of a
// call is proportional to the page, not to the directory.
func (fs *FS) ReadDir(_ context.Context, cred Cred, dir, cookie uint64, max int, plus bool) (entries []DirEntry, eof bool, dirAttr Attr, err error) {
	if err := fs.ready(); err != nil {
		return nil, false, Attr{}, err
	}
	v := fs.readView()
	defer v.close()
	dn, err := fs.viewInode(v, dir)
	if err != nil {
		return nil, false, Attr{}, err
	}
	dirAttr = dn.attr(dir)
	if dn.typ != TypeDir {
		return nil, false, dirAttr, ErrNotDir
	}
	if !cred.may(dn, AccessRead) {
		return nil, false, dirAttr, ErrPermission
	}
	if cookie != 0 && cookie >= dn.nextCookie {
		return nil, false, dirAttr, ErrBadCookie
	}
	if max <= 0 {
		max = 1
	}
	p := append(inodePrefix(dir), inoOrder)
	it, err := v.r.NewIter(be64(append([]byte(nil), p...), cookie+1), upper(p))
	if err != nil {
		return nil, false, dirAttr, err
	}
	defer it.Close()
	ok := it.First()
	for ; ok && len(entries) < max; ok = it.Next() {
		k := it.Key()
		if len(k) != len(p)+8 {
			return nil, false, dirAttr, fs.corrupt(fmt.Errorf("%w: order key", ErrCorrupt))
		}
		val, err := it.Value()
		if err != nil {
			return nil, false, dirAttr, fs.corrupt(err)
		}
		oe, err := decodeOrder(val)
		if err != nil {
			return nil, false, dirAttr, fs.corrupt(err)
		}
		de := DirEntry{Name: oe.name, Ino: oe.ino, Type: oe.typ, Cookie: binary.BigEndian.Uint64(k[len(p):])}
		if plus {
			if n, err := fs.viewInode(v, oe.ino); err == nil {
				a := n.attr(oe.ino)
				de.Attr = &a
			}
		}
		entries = append(entries, de)
	}
	if err := it.Error(); err != nil {
		return nil, false, dirAttr, fs.corrupt(err)
	}
	return entries, !ok, dirAttr, nil
}
