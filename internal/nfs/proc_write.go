package nfs

import (
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procWrite serves WRITE. UNSTABLE data is buffered (see writeback.go)
// after the checks a write would fail (read-only, type, permission, size
// limit), and the reply says UNSTABLE — unless the disk is known to be
// full, then it is written through and the reply says FILE_SYNC (or
// NFS3ERR_NOSPC); DATA_SYNC and FILE_SYNC data is durable before the
// reply, which says FILE_SYNC. The reply carries the write verifier as it
// was before the data was buffered, so that a failed write-back of it
// (which changes the verifier) is always seen by the client's COMMIT.
func procWrite(r *request) (proto.Message, error) {
	var a proto.WriteArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	res := &proto.WriteRes{Verf: r.s.WriteVerifier()}
	t, err := r.resolve(a.FH)
	if err != nil {
		res.Status = r.status("WRITE", err)
		return res, nil
	}
	if a.Stable != proto.Unstable && uint64(a.Count) <= uint64(len(a.Data)) && a.Offset+uint64(a.Count) <= engine.MaxFileSize &&
		a.Offset <= engine.MaxFileSize && t.writable() == nil && !r.s.wb.has(t.fs, t.h.ino) {
		r.writeStable(t, &a, res)
		return res, nil
	}
	pre, err := r.dataChecks(t)
	if err == nil {
		switch {
		case uint64(a.Count) > uint64(len(a.Data)):
			err = engine.ErrInvalid
		case a.Offset > engine.MaxFileSize || a.Offset+uint64(a.Count) > engine.MaxFileSize:
			err = engine.ErrFileTooBig
		}
	}
	// More than wtmax (FSINFO) that still fits in a record (wtmax + 60 KiB;
	// larger ones close the connection) is written whole and the reply's
	// count says so. RFC 1813 3.3.7 lets a server write only wtmax bytes
	// (a short write); a client that ignores the count would then lose the
	// rest without an error, so all of it is written.
	data := a.Data[:min(uint64(a.Count), uint64(len(a.Data)))]
	if err == nil {
		r.s.ra.drop(t.fs, t.h.ino)
	}
	var after engine.Attr
	if err == nil {
		if a.Stable == proto.Unstable {
			after, res.Committed, err = r.writeUnstable(t, pre, a.Offset, data)
		} else {
			after, err = r.writeSync(t, pre, a.Offset, data)
			res.Committed = proto.FileSync
		}
	}
	res.Status = r.status("WRITE", err)
	if pre.Ino != 0 {
		res.Wcc.Before = wccAttr(&pre)
	}
	if err == nil {
		res.Count = uint32(len(data))
		res.Wcc.After = t.x.fattr(&after)
		r.s.met.dataWritten.Add(float64(len(data)))
	} else {
		res.Wcc.After = t.postOp(r.ctx, r.s)
	}
	return res, nil
}

// writeStable serves a DATA_SYNC or FILE_SYNC WRITE of a file with
// nothing buffered that no check before the engine refuses, without
// reading the file's attributes first: the engine checks the handle's
// generation in the write's transaction, which reads the inode anyway
// (WriteGen), and returns the attributes before and after — with nothing
// buffered, the file as the client sees it (one store read less per file
// in the create probe of issue 16, counted by TestCreateProbeStoreReads).
// A refused write reads them for its reply, and answers what the general
// path would have: a stale handle, then a file that is not regular,
// before the engine's refusal.
func (r *request) writeStable(t *target, a *proto.WriteArgs, res *proto.WriteRes) {
	r.s.ra.drop(t.fs, t.h.ino)
	data := a.Data[:a.Count]
	before, after, err := t.fs.WriteGen(r.ctx, t.cred, t.h.ino, t.h.gen, a.Offset, data)
	res.Committed = proto.FileSync
	r.synced(t, a.Offset, len(data), &after, err)
	if err != nil {
		cur, serr := t.stat(r.ctx, r.s)
		if serr == nil {
			serr = engine.CheckData(cur.Type)
		}
		if serr != nil {
			err = serr
		}
		res.Status = r.status("WRITE", err)
		if cur.Ino != 0 {
			res.Wcc.Before = wccAttr(&cur)
			res.Wcc.After = t.x.fattr(&cur)
		}
		return
	}
	res.Status = r.status("WRITE", nil)
	res.Count = uint32(len(data))
	res.Wcc.Before = wccAttr(&before)
	res.Wcc.After = t.x.fattr(&after)
	r.s.met.dataWritten.Add(float64(len(data)))
}

// dataTarget resolves fh for WRITE and COMMIT and checks that the data
// of its file may change (a writable export, a regular file). t is nil
// when fh does not resolve. pre, the attributes before the write (zero
// when they could not be read), is the file as the client sees it: with
// its buffered writes, which the engine's own pre-image in Write cannot
// have.
func (r *request) dataTarget(fh proto.FH) (t *target, pre engine.Attr, err error) {
	t, err = r.resolve(fh)
	if err != nil {
		return nil, engine.Attr{}, err
	}
	pre, err = r.dataChecks(t)
	return t, pre, err
}

// dataChecks is dataTarget of a resolved handle.
func (r *request) dataChecks(t *target) (pre engine.Attr, err error) {
	pre, err = t.stat(r.ctx, r.s)
	if err == nil {
		err = t.writable()
	}
	if err == nil {
		err = engine.CheckData(pre.Type)
	}
	return pre, err
}

// writeUnstable checks that the caller may write (the engine's rule, as
// Write would check it) and buffers the data;
// while the file system is known to be out of space — a write to it
// failed for lack of space, or the engine's free-space floor would not
// admit what is buffered and this — it writes through instead: the client
// learns at once (NFS3ERR_NOSPC) instead of after the data was
// acknowledged, and the first write that succeeds turns buffering on
// again.
func (r *request) writeUnstable(t *target, pre engine.Attr, off uint64, data []byte) (engine.Attr, proto.StableHow, error) {
	if err := t.fs.MayWrite(r.ctx, t.cred, t.h.ino); err != nil {
		return engine.Attr{}, proto.Unstable, err
	}
	if len(data) == 0 {
		return pre, proto.Unstable, nil
	}
	if r.s.wb.writeThrough(t.fs) || t.fs.CheckSpace(r.s.wb.buffered()+int64(len(data))) != nil {
		after, err := r.writeSync(t, pre, off, data)
		return after, proto.FileSync, err
	}
	after, err := r.buffer(t, pre, off, data)
	return after, proto.Unstable, err
}

// buffer adds the data to the file's buffer: a WRITE read into one of
// the server's record buffers keeps that buffer until its data is written
// (no copy, no new memory per WRITE); other data is copied.
func (r *request) buffer(t *target, pre engine.Attr, off uint64, data []byte) (engine.Attr, error) {
	var buf *wbuf
	if b := r.takeRecord(); b != nil {
		buf = newWbuf(r.s, b)
	} else {
		data = append([]byte(nil), data...)
	}
	if err := r.s.wb.add(r.ctx, t.fs, t.h.ino, t.cred, off, data, buf); err != nil {
		return engine.Attr{}, err
	}
	after := pre
	r.s.wb.overlayAttr(t.fs, &after)
	return after, nil
}

// writeSync writes durably, straight to the engine; buffered data of the
// file is written first, so that it cannot land after this (its failure
// is its own: lost ranges, see writeback.go). It fails if the data did not
// land, and clears what it covers of the file's lost ranges if it did.
func (r *request) writeSync(t *target, pre engine.Attr, off uint64, data []byte) (engine.Attr, error) {
	if r.s.wb.has(t.fs, t.h.ino) {
		// A write the engine will refuse is refused before the buffered
		// data is written, which would give the file new times.
		if err := t.fs.MayWrite(r.ctx, t.cred, t.h.ino); err != nil {
			return engine.Attr{}, err
		}
		if err := r.s.wb.settle(r.ctx, t.fs, t.h.ino); err != nil {
			return engine.Attr{}, err
		}
	}
	_, after, err := t.fs.Write(r.ctx, t.cred, t.h.ino, off, data)
	r.synced(t, off, len(data), &after, err)
	return after, err
}

// synced records the outcome of a durable write of n bytes at off in the
// write-back state (writeSync, writeStable): a failure is its own (see
// writeback.go); data that landed clears what it covers of the file's
// lost ranges, and after shows the file as the client sees it.
func (r *request) synced(t *target, off uint64, n int, after *engine.Attr, err error) {
	if err != nil {
		r.s.wb.failed(t.fs, err)
		return
	}
	r.s.wb.rewritten(t.fs, t.h.ino, off, n)
	r.s.wb.overlayAttr(t.fs, after)
}
