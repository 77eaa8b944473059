package nfs

import "github.com/regionfs/regionfs/internal/nfs/proto"

// mountUmnt serves MOUNT UMNT: forget one mount of the caller.
func mountUmnt(r *request) (proto.Message, error) {
	var a proto.DirPathArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	host := r.who.host
	if host == "" {
		host = r.c.remote.Addr().String()
	}
	r.s.mu.Lock()
	delete(r.s.mounts, mountEntry{host: host, path: a.Path})
	r.s.mu.Unlock()
	return proto.Void{}, nil
}
