package nfs

import "github.com/regionfs/regionfs/internal/nfs/proto"

// pmapDump serves the portmapper's DUMP: the programs on this port.
func pmapDump(r *request) (proto.Message, error) {
	if err := r.decode(proto.Void{}); err != nil {
		return nil, err
	}
	return &proto.PmapDumpRes{Mappings: r.mappings()}, nil
}
