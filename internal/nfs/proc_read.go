package nfs

import (
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procRead serves READ: at most rtmax bytes at an offset, including data
// still buffered by UNSTABLE writes.
func procRead(r *request) (proto.Message, error) {
	var a proto.ReadArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	res := &proto.ReadRes{}
	t, err := r.resolve(a.FH)
	if err != nil {
		res.Status = r.status("READ", err)
		return res, nil
	}
	at, err := t.stat(r.ctx, r.s)
	if err == nil {
		err = engine.CheckData(at.Type)
	}
	if err == nil {
		count := int(min(a.Count, r.s.maxIO))
		ov := r.s.wb.snapshot(t.fs, t.h.ino)
		defer ov.release()
		var data []byte
		var eof bool
		if ov == nil {
			// The data may be a buffer of the engine's block cache,
			// held until the reply is written (reply.free).
			data, eof, at, r.hold, err = r.s.ra.read(r.ctx, t, at, a.Offset, count, &r.after)
		} else {
			data, eof, at, err = t.fs.Read(r.ctx, t.cred, t.h.ino, a.Offset, count)
		}
		if err == nil && ov != nil {
			data, eof = ov.apply(a.Offset, count, data, at.Size)
			r.s.wb.overlayAttr(t.fs, &at)
		}
		res.Data, res.EOF, res.Count = data, eof, uint32(len(data))
		if err == nil {
			r.s.met.dataRead.Add(float64(len(data)))
		}
	}
	res.Status = r.status("READ", err)
	if at.Ino != 0 {
		res.Attr = t.x.fattr(&at)
	}
	return res, nil
}
