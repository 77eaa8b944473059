package nfs

import (
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procSetAttr serves SETATTR: change mode, owner, size or times, only if
// the guard (the client's idea of the ctime) still holds. Buffered
// UNSTABLE data of the file is made durable first, so a truncation or an
// explicit mtime is never overtaken by older data written later; a small
// file's buffered data and the change are one durable commit
// (writeback.settleAttr).
func procSetAttr(r *request) (proto.Message, error) {
	var a proto.SetAttrArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	res := &proto.SetAttrRes{}
	t, err := r.resolve(a.FH)
	if err != nil {
		res.Status = r.status("SETATTR", err)
		return res, nil
	}
	pre, err := t.stat(r.ctx, r.s)
	if err == nil {
		err = t.writable()
	}
	if err == nil {
		r.s.ra.drop(t.fs, t.h.ino)
	}
	var after engine.Attr
	var guard *time.Time
	if a.Guard != nil {
		g := a.Guard.Go()
		guard = &g
	}
	done := false
	if err == nil && r.s.wb.has(t.fs, t.h.ino) {
		// Writing the buffered data gives the file new times, so a
		// SETATTR that will be refused is refused before it, and changes
		// nothing (the data stays buffered). The guard is the ctime the
		// client was shown, buffered writes included.
		if a.Guard != nil && proto.TimeOf(pre.Ctime) != *a.Guard {
			err = engine.ErrNotSync
		} else {
			err = t.fs.MaySetAttr(r.ctx, t.cred, t.h.ino, sattr(&a.Attr))
		}
	}
	if err == nil && r.s.wb.has(t.fs, t.h.ino) {
		switch {
		case a.Guard == nil && a.Attr.Size == nil:
			// The data and the change in one commit when they can.
			after, done, err = r.s.wb.settleAttr(r.ctx, t.fs, t.h.ino, t.cred, sattr(&a.Attr))
		default:
			// The guard stays the client's: the write-back gives the
			// file the time of its buffered writes, the ctime the
			// client was shown (engine.FS.WriteBuffered), so the
			// engine's check holds unless something else changed the
			// file, before or while the data was written.
			err = r.s.wb.settle(r.ctx, t.fs, t.h.ino)
		}
	}
	if err == nil && !done {
		_, after, err = t.fs.SetAttr(r.ctx, t.cred, t.h.ino, sattr(&a.Attr), guard)
		if err == nil && a.Attr.Size != nil {
			r.s.wb.truncated(t.fs, t.h.ino, *a.Attr.Size)
		}
	}
	res.Status = r.status("SETATTR", err)
	if pre.Ino != 0 {
		res.Wcc.Before = wccAttr(&pre)
	}
	if err == nil {
		res.Wcc.After = t.x.fattr(&after)
	} else {
		res.Wcc.After = t.postOp(r.ctx, r.s)
	}
	return res, nil
}
