package nfs

import (
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procRemove serves REMOVE of a name that is not a directory.
func procRemove(r *request) (proto.Message, error) {
	var a proto.RemoveArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	return r.removeName("REMOVE", &a, false), nil
}

// removeName serves REMOVE and RMDIR.
func (r *request) removeName(op string, a *proto.DirOp, dir bool) *proto.WccRes {
	t, pre, err := r.dirOpPrologue(a.Dir, a.Name, false)
	var ch engine.DirChange
	if err == nil {
		if dir {
			ch, err = t.fs.Rmdir(r.ctx, t.cred, t.h.ino, a.Name)
		} else {
			ch, err = t.fs.Remove(r.ctx, t.cred, t.h.ino, a.Name)
		}
	}
	res := &proto.WccRes{Status: r.status(op, err)}
	switch {
	case t == nil:
	case err == nil:
		res.Wcc = t.x.wcc(ch)
	default:
		res.Wcc = r.dirWccFailed(t, pre)
	}
	return res
}
