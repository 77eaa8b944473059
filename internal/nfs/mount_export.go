package nfs

import "github.com/regionfs/regionfs/internal/nfs/proto"

// mountExport serves MOUNT EXPORT: every export path with the client
// networks allowed to mount it (none listed = everyone).
func mountExport(r *request) (proto.Message, error) {
	if err := r.decode(proto.Void{}); err != nil {
		return nil, err
	}
	res := &proto.ExportRes{}
	seen := map[string]int{}
	for _, x := range r.s.exports.Load().list {
		i, ok := seen[x.path]
		if !ok {
			i = len(res.Entries)
			seen[x.path] = i
			res.Entries = append(res.Entries, proto.ExportEntry{Dir: x.path})
		}
		for _, p := range x.Clients {
			res.Entries[i].Groups = append(res.Entries[i].Groups, p.String())
		}
	}
	return res, nil
}
