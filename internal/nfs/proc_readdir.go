package nfs

import (
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procReadDir serves READDIR: names and file ids, as many as fit in the
// client's count (see dirlist.go for cookies).
func procReadDir(r *request) (proto.Message, error) {
	var a proto.ReadDirArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	return r.readDir("READDIR", a.FH, a.Cookie, a.Verf, a.Count, 0, false), nil
}

// readDir lists a directory for READDIR or, with plus, READDIRPLUS (whose
// result has the same fields): count bounds the reply, dirCount (plus
// only) the entries' names and cookies.
func (r *request) readDir(op string, fh proto.FH, cookie uint64, verf [proto.CookieVerfSize]byte, count uint32, dirCount int, plus bool) *proto.ReadDirRes {
	res := &proto.ReadDirRes{}
	t, err := r.resolve(fh)
	if err != nil {
		res.Status = r.status(op, err)
		return res
	}
	dir, err := t.stat(r.ctx, r.s)
	if err == nil {
		err = checkListing(&dir, cookie, verf)
	}
	var l listing
	if err == nil {
		budget := int(min(count, r.s.maxIO)) - proto.ReadDirResOverhead
		l, err = r.list(t, &dir, cookie, budget, dirCount, plus)
		if err == nil && len(l.entries) == 0 && !l.eof {
			err = errTooSmall
		}
	}
	res.Status = r.status(op, err)
	if dir.Ino != 0 {
		res.DirAttr = t.x.fattr(&dir)
	}
	if err == nil {
		res.Verf = cookieVerf(&dir)
		res.Entries, res.EOF = l.entries, l.eof
	}
	return res
}

// checkListing validates the directory and the cookie verifier of a
// READDIR or READDIRPLUS continuation.
func checkListing(dir *engine.Attr, cookie uint64, verf [proto.CookieVerfSize]byte) error {
	if dir.Type != engine.TypeDir {
		return engine.ErrNotDir
	}
	if cookie != 0 && verf != [proto.CookieVerfSize]byte{} && verf != cookieVerf(dir) {
		return engine.ErrBadCookie
	}
	return nil
}
