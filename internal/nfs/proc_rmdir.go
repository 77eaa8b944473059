package nfs

import "github.com/regionfs/regionfs/internal/nfs/proto"

// procRmdir serves RMDIR of an empty directory.
func procRmdir(r *request) (proto.Message, error) {
	var a proto.RmdirArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	return r.removeName("RMDIR", &a, true), nil
}
