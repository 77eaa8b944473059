package nfs

import (
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// createReply builds the result of CREATE, MKDIR, SYMLINK and MKNOD.
func (r *request) createReply(op string, t *target, dir engine.Attr, ent engine.Entry, err error) *proto.CreateRes {
	res := &proto.CreateRes{Status: r.status(op, err)}
	if t == nil {
		return res
	}
	if err == nil {
		r.s.wb.overlayAttr(t.fs, &ent.Attr)
		res.FH = t.child(ent.Attr)
		res.Attr = t.x.fattr(&ent.Attr)
		res.DirWcc = t.x.wcc(ent.Dir)
		return res
	}
	res.DirWcc = r.dirWccFailed(t, dir)
	return res
}

// dirWccFailed is the wcc data of a directory an operation failed in.
func (r *request) dirWccFailed(t *target, pre engine.Attr) proto.Wcc {
	w := t.wccAfter(r.ctx, r.s)
	if pre.Ino != 0 {
		w.Before = wccAttr(&pre)
	}
	return w
}

// dirOpPrologue resolves the directory of a mutating name operation and
// runs the checks every one of them makes: the handle, the directory's
// generation, a writable export and the name.
func (r *request) dirOpPrologue(dir proto.FH, name string, newName bool) (*target, engine.Attr, error) {
	t, err := r.resolve(dir)
	if err != nil {
		return nil, engine.Attr{}, err
	}
	return r.dirChecks(t, name, newName)
}

// dirChecks is dirOpPrologue of a resolved directory.
func (r *request) dirChecks(t *target, name string, newName bool) (*target, engine.Attr, error) {
	pre, err := t.stat(r.ctx, r.s)
	if err != nil {
		return t, pre, err
	}
	if err := t.writable(); err != nil {
		return t, pre, err
	}
	if newName {
		err = checkNewName(name)
	} else {
		err = checkName(name)
	}
	return t, pre, err
}
