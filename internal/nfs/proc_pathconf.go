package nfs

import (
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procPathConf serves PATHCONF: the engine's limits.
func procPathConf(r *request) (proto.Message, error) {
	var a proto.PathConfArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	res := &proto.PathConfRes{}
	t, err := r.resolve(a.FH)
	if err != nil {
		res.Status = r.status("PATHCONF", err)
		return res, nil
	}
	at, err := t.stat(r.ctx, r.s)
	res.Status = r.status("PATHCONF", err)
	if err != nil {
		return res, nil
	}
	res.Attr = t.x.fattr(&at)
	res.LinkMax = engine.MaxLinks
	res.NameMax = engine.MaxNameLen
	res.NoTrunc = true
	res.ChownRestricted = true
	res.CasePreserving = true
	return res, nil
}
