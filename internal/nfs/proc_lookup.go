package nfs

import (
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procLookup serves LOOKUP: the handle of a name in a directory. ".." of
// the export's root is the root itself, and ".." never leads out of an
// export's directory.
func procLookup(r *request) (proto.Message, error) {
	var a proto.LookupArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	res := &proto.LookupRes{}
	t, err := r.resolve(a.Dir)
	if err != nil {
		res.Status = r.status("LOOKUP", err)
		return res, nil
	}
	dir, err := t.stat(r.ctx, r.s)
	if err == nil {
		err = checkName(a.Name)
	}
	var at engine.Attr
	if err == nil {
		if a.Name == ".." && t.isRoot() {
			at, err = t.fs.Lookup(r.ctx, t.cred, t.h.ino, ".")
		} else {
			at, err = t.fs.Lookup(r.ctx, t.cred, t.h.ino, a.Name)
		}
	}
	if err == nil && a.Name == ".." {
		var in bool
		if in, err = t.inside(r.ctx, at.Ino); err == nil && !in {
			err = errNotAllowed
		}
	}
	res.Status = r.status("LOOKUP", err)
	if dir.Ino != 0 {
		res.DirAttr = t.x.fattr(&dir)
	}
	if err == nil {
		r.s.wb.overlayAttr(t.fs, &at)
		res.FH = t.child(at)
		res.Attr = t.x.fattr(&at)
	}
	return res, nil
}
