package nfs

import "github.com/regionfs/regionfs/internal/nfs/proto"

// procGetAttr serves GETATTR: the attributes of a file.
func procGetAttr(r *request) (proto.Message, error) {
	var a proto.GetAttrArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	res := &proto.GetAttrRes{}
	t, err := r.resolve(a.FH)
	if err == nil {
		at, serr := t.stat(r.ctx, r.s)
		if err = serr; err == nil {
			res.Attr = *t.x.fattr(&at)
		}
	}
	res.Status = r.status("GETATTR", err)
	return res, nil
}
