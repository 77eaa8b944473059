package nfs

import "github.com/regionfs/regionfs/internal/nfs/proto"

// mountUmntAll serves MOUNT UMNTALL: forget every mount of the caller.
func mountUmntAll(r *request) (proto.Message, error) {
	if err := r.decode(proto.Void{}); err != nil {
		return nil, err
	}
	host := r.who.host
	if host == "" {
		host = r.c.remote.Addr().String()
	}
	r.s.mu.Lock()
	for m := range r.s.mounts {
		if m.host == host {
			delete(r.s.mounts, m)
		}
	}
	r.s.mu.Unlock()
	return proto.Void{}, nil
}
