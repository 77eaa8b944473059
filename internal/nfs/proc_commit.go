package nfs

import (
	"errors"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procCommit serves COMMIT: every buffered UNSTABLE write of the file
// (whatever the range asked for) is durable before the reply, which
// carries the write verifier as it is after that. If data in the range
// asked for was lost by a failed write-back (now or before, and not
// written again since), the reply is that failure (NFS3ERR_NOSPC,
// NFS3ERR_IO), every time: see writeback.go.
//
// Every create answered before its sync (REGIONFS_CREATE_VISIBLE) is
// durable before the reply too: a COMMIT of a file or of a directory
// (which `regionfs mount` sends for fsync of a directory; still
// NFS3ERR_ISDIR, as RFC 1813 has it, once they are) is the client's way
// to wait for it.
func procCommit(r *request) (proto.Message, error) {
	var a proto.CommitArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	res := &proto.CommitRes{}
	t, pre, err := r.dataTarget(a.FH)
	if t == nil {
		res.Verf = r.s.WriteVerifier()
		res.Status = r.status("COMMIT", err)
		return res, nil
	}
	wrote := false
	if err == nil {
		wrote, err = r.s.wb.commit(r.ctx, t.fs, t.h.ino, a.Offset, a.Count)
	}
	switch {
	case err == nil:
		err = t.fs.SyncVisible(r.ctx)
	case pre.Type == engine.TypeDir && errors.Is(err, engine.ErrIsDir):
		if serr := t.fs.SyncVisible(r.ctx); serr != nil {
			err = serr
		}
	}
	res.Verf = r.s.WriteVerifier()
	res.Status = r.status("COMMIT", err)
	if pre.Ino != 0 {
		res.Wcc.Before = wccAttr(&pre)
	}
	if pre.Ino != 0 && !wrote {
		// Nothing was buffered (FILE_SYNC data, or committed before):
		// the COMMIT changed nothing and the file is as pre read it,
		// so no second read of its attributes.
		res.Wcc.After = t.x.fattr(&pre)
	} else {
		res.Wcc.After = t.postOp(r.ctx, r.s)
	}
	return res, nil
}
