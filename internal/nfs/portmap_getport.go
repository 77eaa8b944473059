package nfs

import "github.com/regionfs/regionfs/internal/nfs/proto"

// pmapGetPort serves the portmapper's GETPORT on the NFS port itself, for
// clients that ask it where NFS and MOUNT are: both are on the port the
// question arrived on (TCP only; 0 = not registered).
func pmapGetPort(r *request) (proto.Message, error) {
	var a proto.Mapping
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	res := &proto.Uint32Res{}
	if a.Prot == proto.IPProtoTCP {
		for _, m := range r.mappings() {
			if m.Prog == a.Prog && m.Vers == a.Vers {
				res.V = m.Port
			}
		}
	}
	return res, nil
}

// mappings are the programs served on the connection's port.
func (r *request) mappings() []proto.Mapping {
	port := uint32(r.c.local.Port())
	return []proto.Mapping{
		{Prog: proto.ProgPortmap, Vers: proto.VersPortmap, Prot: proto.IPProtoTCP, Port: port},
		{Prog: proto.ProgNFS, Vers: proto.VersNFS, Prot: proto.IPProtoTCP, Port: port},
		{Prog: proto.ProgMount, Vers: proto.VersMount, Prot: proto.IPProtoTCP, Port: port},
	}
}
