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
	t, dir, err := r.dirOpPrologue(a.Where.Dir, a.Where.Name, true)
	var ent engine.Entry
	if err == nil {
		sa := sattr(&a.Attr)
		sa.Size = nil
		ent, err = t.fs.Mkdir(r.ctx, t.cred, t.h.ino, a.Where.Name, sa)
	}
	return r.createReply("MKDIR", t, dir, ent, err), nil
}
