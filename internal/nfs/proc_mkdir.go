package nfs

import (
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procMkdir serves MKDIR.
func procMkdir(r *request) (proto.Message, error) {
	var a proto.MkdirArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	return r.makeNode("MKDIR", a.Where, &a.Attr, func(t *target, sa engine.SetAttr) (engine.Entry, error) {
		return t.fs.Mkdir(r.ctx, t.cred, t.h.ino, a.Where.Name, sa)
	}), nil
}

// makeNode serves MKDIR, SYMLINK and MKNOD: mk creates where.Name in
// the directory with the client's attributes, less a size.
func (r *request) makeNode(op string, where proto.DirOp, attr *proto.Sattr, mk func(t *target, sa engine.SetAttr) (engine.Entry, error)) *proto.CreateRes {
	t, dir, err := r.dirOpPrologue(where.Dir, where.Name, true)
	var ent engine.Entry
	if err == nil {
		sa := sattr(attr)
		sa.Size = nil
		ent, err = mk(t, sa)
	}
	return r.createReply(op, t, dir, ent, err)
}
