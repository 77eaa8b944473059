package nfs

import (
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procReadlink serves READLINK: the target of a symbolic link (the server
// never follows it).
func procReadlink(r *request) (proto.Message, error) {
	var a proto.ReadlinkArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	res := &proto.ReadlinkRes{}
	t, err := r.resolve(a.FH)
	if err != nil {
		res.Status = r.status("READLINK", err)
		return res, nil
	}
	at, err := t.stat(r.ctx, r.s)
	if err == nil && at.Type != engine.TypeSymlink {
		err = engine.ErrInvalid
	}
	if err == nil {
		res.Target, at, err = t.fs.Readlink(r.ctx, t.h.ino)
	}
	res.Status = r.status("READLINK", err)
	if at.Ino != 0 {
		res.Attr = t.x.fattr(&at)
	}
	return res, nil
}
