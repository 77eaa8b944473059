// Package proto holds the wire types of NFS version 3 and MOUNT version 3
// (RFC 1813) and of the portmapper version 2 (RFC 1833), with their XDR
// encoders and decoders, shared by regionfs's NFS server (package nfs) and
// client (package nfs/client). One file per procedure: its argument and
// result types; types.go has the shared structures (fattr3, sattr3, wcc
// data, handles).
//
// Every Decode method reads from an xdr.Decoder whose first error sticks;
// callers check Done after decoding. Limits (handle and name lengths,
// counts) are enforced while decoding, so a decoder never allocates more
// than its input holds.
package proto
