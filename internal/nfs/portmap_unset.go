package nfs

import "github.com/regionfs/regionfs/internal/nfs/proto"

// pmapUnset serves the portmapper's UNSET: refused (false).
func pmapUnset(r *request) (proto.Message, error) {
	var a proto.Mapping
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	return &proto.BoolRes{}, nil
}
