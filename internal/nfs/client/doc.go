// Package client is regionfs's NFS version 3 client: ONC RPC over TCP
// with many calls in flight on one connection (replies are matched by
// XID, in any order), and the MOUNT v3, NFS v3 and portmapper procedures,
// sharing the wire types of package proto with the server. It serves
// regionfs's own tests and tools (and later `regionfs mount`).
//
// A Conn is one connection; a Client is a Conn with a credential, so
// several identities can share a connection. Methods return the decoded
// result and an error: a transport or RPC error, or the result's status
// (a proto.Status or proto.MountStatus, comparable with errors.Is) when it
// is not OK, in which case the result is still returned for its wcc data.
package client
