package nfs

import (
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procMknod serves MKNOD: character and block devices, sockets and FIFOs;
// other types are NFS3ERR_BADTYPE.
func procMknod(r *request) (proto.Message, error) {
	var a proto.MknodArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	return r.makeNode("MKNOD", a.Where, &a.Attr, func(t *target, sa engine.SetAttr) (engine.Entry, error) {
		var typ engine.FileType
		switch a.Type {
		case proto.TypeChr:
			typ = engine.TypeChar
		case proto.TypeBlk:
			typ = engine.TypeBlock
		case proto.TypeSock:
			typ = engine.TypeSocket
		case proto.TypeFIFO:
			typ = engine.TypeFIFO
		default:
			return engine.Entry{}, engine.ErrBadType
		}
		return t.fs.Mknod(r.ctx, t.cred, t.h.ino, a.Where.Name, typ, a.Major, a.Minor, sa)
	}), nil
}
