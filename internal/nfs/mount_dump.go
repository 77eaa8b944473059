package nfs

import (
	"cmp"
	"slices"

	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// mountDump serves MOUNT DUMP: the mounts clients reported (MNT minus
// UMNT), as Linux's mountd keeps them: advisory only.
func mountDump(r *request) (proto.Message, error) {
	if err := r.decode(proto.Void{}); err != nil {
		return nil, err
	}
	res := &proto.DumpRes{}
	r.s.mu.Lock()
	for m := range r.s.mounts {
		res.Entries = append(res.Entries, proto.MountEntry{Host: m.host, Path: m.path})
	}
	r.s.mu.Unlock()
	slices.SortFunc(res.Entries, func(a, b proto.MountEntry) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Path, b.Path))
	})
	return res, nil
}
