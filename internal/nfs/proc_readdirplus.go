package nfs

import (
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procReadDirPlus serves READDIRPLUS: entries with their attributes and
// handles, within the client's dircount and maxcount.
func procReadDirPlus(r *request) (proto.Message, error) {
	var a proto.ReadDirPlusArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	res := &proto.ReadDirPlusRes{}
	t, err := r.resolve(a.FH)
	if err != nil {
		res.Status = r.status("READDIRPLUS", err)
		return res, nil
	}
	dir, err := t.stat(r.ctx, r.s)
	if err == nil {
		err = checkListing(&dir, a.Cookie, a.Verf)
	}
	var l listing
	if err == nil {
		budget := int(min(a.MaxCount, r.s.maxIO)) - proto.ReadDirResOverhead
		l, err = r.list(t, &dir, a.Cookie, budget, int(a.DirCount), true)
		if err == nil && len(l.entries) == 0 && !l.eof {
			err = errTooSmall
		}
	}
	res.Status = r.status("READDIRPLUS", err)
	if dir.Ino != 0 {
		res.DirAttr = t.x.fattr(&dir)
	}
	if err == nil {
		res.Verf = cookieVerf(&dir)
		res.Entries, res.EOF = l.entries, l.eof
	}
	return res, nil
}
