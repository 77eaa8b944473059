package nfs

import (
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procCommit serves COMMIT: every buffered UNSTABLE write of the file
// (whatever the range asked for) is durable before the reply, which
// carries the write verifier; a failed background write of the file is
// reported here.
func procCommit(r *request) (proto.Message, error) {
	var a proto.CommitArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	res := &proto.CommitRes{Verf: r.s.verf}
	t, err := r.resolve(a.FH)
	if err != nil {
		res.Status = r.status("COMMIT", err)
		return res, nil
	}
	pre, err := t.stat(r.ctx, r.s)
	if err == nil {
		err = t.writable()
	}
	if err == nil {
		switch pre.Type {
		case engine.TypeRegular:
			err = r.s.wb.commit(r.ctx, t.fs, t.h.ino)
		case engine.TypeDir:
			err = engine.ErrIsDir
		default:
			err = engine.ErrInvalid
		}
	}
	res.Status = r.status("COMMIT", err)
	if pre.Ino != 0 {
		res.Wcc.Before = wccAttr(&pre)
	}
	res.Wcc.After = t.postOp(r.ctx, r.s)
	return res, nil
}
