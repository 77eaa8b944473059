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
	return r.makeNode("SYMLINK", a.Where, &a.Attr, func(t *target, sa engine.SetAttr) (engine.Entry, error) {
		return t.fs.Symlink(r.ctx, t.cred, t.h.ino, a.Where.Name, a.Target, sa)
	}), nil
}
