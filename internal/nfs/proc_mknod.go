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
	t, dir, err := r.dirOpPrologue(a.Where.Dir, a.Where.Name, true)
	var ent engine.Entry
	if err == nil {
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
			err = engine.ErrBadType
		}
		if err == nil {
			sa := sattr(&a.Attr)
			sa.Size = nil
			ent, err = t.fs.Mknod(r.ctx, t.cred, t.h.ino, a.Where.Name, typ, a.Major, a.Minor, sa)
		}
	}
	return r.createReply("MKNOD", t, dir, ent, err), nil
}
