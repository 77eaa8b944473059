package nfs

import (
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procSymlink serves SYMLINK. The target is stored as given and never
// followed by the server.
func procSymlink(r *request) (proto.Message, error) {
	var a proto.SymlinkArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	t, dir, err := r.dirOpPrologue(a.Where.Dir, a.Where.Name, true)
	var ent engine.Entry
	if err == nil {
		sa := sattr(&a.Attr)
		sa.Size = nil
		ent, err = t.fs.Symlink(r.ctx, t.cred, t.h.ino, a.Where.Name, a.Target, sa)
	}
	return r.createReply("SYMLINK", t, dir, ent, err), nil
}
