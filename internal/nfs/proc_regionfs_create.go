package nfs

import (
	"encoding/binary"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procRegionFSCreate serves REGIONFS_CREATE (proto.ProcRegionFSCreate):
// an exclusive create whose file is made with the attributes given, its
// verifier kept in the inode apart from them (engine.CreateExclusive),
// so that the client's call sent again after a lost reply finds the file
// and anyone else's create fails. Other clients never see the file
// without its mode, as they do between an NFSv3 EXCLUSIVE CREATE and the
// SETATTR that must follow it.
func procRegionFSCreate(r *request) (proto.Message, error) {
	var a proto.ExclusiveCreateArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	verf := binary.BigEndian.Uint64(a.Verf[:])
	return r.create("REGIONFS_CREATE", a.Where, engine.CreateExclusive, sattr(&a.Attr), verf, false), nil
}
