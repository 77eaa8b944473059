package nfs

import (
	"encoding/binary"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procRegionFSCreateVisible serves REGIONFS_CREATE_VISIBLE
// (proto.ProcRegionFSCreateVisible): REGIONFS_CREATE answered once the
// file is readable, before the journal's sync. `regionfs mount` sends it
// for open(O_CREAT|O_EXCL), and the close's REGIONFS_CLOSE (one durable
// commit, later in the journal) makes the create durable too: one sync
// per copied small file instead of two. A COMMIT waits for it (procCommit);
// a restart before then loses the file, and its handle is stale.
func procRegionFSCreateVisible(r *request) (proto.Message, error) {
	var a proto.ExclusiveCreateArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	verf := binary.BigEndian.Uint64(a.Verf[:])
	return r.create("REGIONFS_CREATE_VISIBLE", a.Where, engine.CreateExclusive, sattr(&a.Attr), verf, true), nil
}
