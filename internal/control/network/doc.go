// Package network is the security-group domain of a region's VPC:
// security groups with their ingress and egress rules (protocol, port
// range, IPv4/IPv6 CIDR, prefix list or referenced group, description,
// tags), as EC2 keeps them. Groups of the configuration are created at the
// first start and are managed like any other afterwards.
//
// Mount targets admit an NFS client when one of their groups has an
// ingress rule for TCP (or all protocols) whose port range covers the NFS
// port — 2049, or the port the region really serves NFS on — and whose
// CIDR contains the client's address. Rules naming prefix lists or other
// groups are kept and described but admit no client (clients here have no
// network interfaces in groups). Every change is durable before it is
// acknowledged and is pushed to the mount targets at once (Watch), so it
// applies to the next connection; established connections are kept, as
// EC2's stateful groups keep tracked connections.
//
// # Keys (under 'n' of the server's store; values are JSON)
//
//	'n' 'g' group id   security group and its rules
package network
