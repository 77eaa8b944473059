package nfs

import (
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procLink serves LINK: a new name for an existing file, in a directory of
// the same export (NFS3ERR_XDEV otherwise).
func procLink(r *request) (proto.Message, error) {
	var a proto.LinkArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	res := &proto.LinkRes{}
	f, err := r.resolve(a.FH)
	if err != nil {
		res.Status = r.status("LINK", err)
		return res, nil
	}
	fa, err := f.stat(r.ctx, r.s)
	var d *target
	var dpre engine.Attr
	if err == nil {
		d, dpre, err = r.dirOpPrologue(a.Link.Dir, a.Link.Name, true)
	}
	if err == nil && d.x != f.x {
		res.Status = proto.ErrXDev
		res.Attr = f.x.fattr(&fa)
		res.DirWcc = r.dirWccFailed(d, dpre)
		return res, nil
	}
	var ch engine.DirChange
	if err == nil {
		fa, ch, err = f.fs.Link(r.ctx, d.cred, f.h.ino, d.h.ino, a.Link.Name)
	}
	res.Status = r.status("LINK", err)
	if err == nil {
		r.s.wb.overlayAttr(f.fs, &fa)
		res.Attr = f.x.fattr(&fa)
		res.DirWcc = d.x.wcc(ch)
		return res, nil
	}
	res.Attr = f.postOp(r.ctx, r.s)
	if d != nil {
		res.DirWcc = r.dirWccFailed(d, dpre)
	}
	return res, nil
}
