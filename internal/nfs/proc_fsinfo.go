package nfs

import (
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procFSInfo serves FSINFO: honest transfer sizes (rtmax = wtmax = the
// largest READ/WRITE this server accepts, 1 MiB by default; the preferred
// size is the same, a whole engine block), nanosecond times, hard and
// symbolic links.
func procFSInfo(r *request) (proto.Message, error) {
	var a proto.FSInfoArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	res := &proto.FSInfoRes{}
	t, err := r.resolve(a.FH)
	if err != nil {
		res.Status = r.status("FSINFO", err)
		return res, nil
	}
	at, err := t.stat(r.ctx, r.s)
	res.Status = r.status("FSINFO", err)
	if err != nil {
		return res, nil
	}
	res.Attr = t.x.fattr(&at)
	io := r.s.maxIO
	res.RTMax, res.RTPref, res.RTMult = io, io, 4096
	res.WTMax, res.WTPref, res.WTMult = io, io, 4096
	res.DTPref = 64 << 10
	res.MaxFileSize = engine.MaxFileSize
	res.TimeDelta = proto.Time{Nsec: 1}
	res.Properties = proto.FSFLink | proto.FSFSymlink | proto.FSFHomogeneous
	if !t.x.readOnly() {
		res.Properties |= proto.FSFCanSetTime
	}
	return res, nil
}
