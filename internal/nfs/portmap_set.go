package nfs

import "github.com/regionfs/regionfs/internal/nfs/proto"

// pmapSet serves the portmapper's SET: registrations are refused (false);
// this is not a general portmapper.
func pmapSet(r *request) (proto.Message, error) {
	var a proto.Mapping
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	return &proto.BoolRes{}, nil
}
