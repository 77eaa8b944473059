package nfs

import (
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procRename serves RENAME with POSIX rules; both directories must be of
// the same export (NFS3ERR_XDEV otherwise).
func procRename(r *request) (proto.Message, error) {
	var a proto.RenameArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	res := &proto.RenameRes{}
	from, fpre, err := r.dirOpPrologue(a.From.Dir, a.From.Name, false)
	var to *target
	var tpre engine.Attr
	if err == nil {
		to, tpre, err = r.dirOpPrologue(a.To.Dir, a.To.Name, true)
	}
	if err == nil && to.x != from.x {
		res.Status = proto.ErrXDev
		res.FromWcc = r.dirWccFailed(from, fpre)
		res.ToWcc = r.dirWccFailed(to, tpre)
		return res, nil
	}
	var fch, tch engine.DirChange
	if err == nil {
		fch, tch, err = from.fs.Rename(r.ctx, from.cred, from.h.ino, a.From.Name, to.h.ino, a.To.Name)
	}
	res.Status = r.status("RENAME", err)
	if err == nil {
		res.FromWcc, res.ToWcc = from.x.wcc(fch), to.x.wcc(tch)
		return res, nil
	}
	if from != nil {
		res.FromWcc = r.dirWccFailed(from, fpre)
	}
	if to != nil {
		res.ToWcc = r.dirWccFailed(to, tpre)
	}
	return res, nil
}
