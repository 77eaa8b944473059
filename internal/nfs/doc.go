// Package nfs is regionfs's NFS version 3 server (RFC 1813) over the
// storage engine, with its own ONC RPC (RFC 5531, package rpc) and XDR
// (RFC 4506, package xdr) and the wire types shared with the client
// (package proto).
//
// One TCP port serves NFS v3 (program 100003), MOUNT v3 (100005: NULL,
// MNT, DUMP, UMNT, UMNTALL, EXPORT) and the portmapper's GETPORT and DUMP
// (100000 v2), so clients pass port= and mountport= the same number, or
// ask the portmapper on that port. Other programs get PROG_UNAVAIL, other
// versions PROG_MISMATCH, unknown procedures PROC_UNAVAIL, undecodable
// arguments GARBAGE_ARGS, a panicking procedure SYSTEM_ERR; a record over
// Options.MaxRecordBytes or a record that is not an RPC call closes the
// connection.
//
// Each procedure is in its own file (proc_*.go, mount_*.go,
// portmap_*.go). Requests of one connection run concurrently (at most
// MaxInflightPerConn, and MaxInflight server-wide); replies go out as they
// complete, so in any order. Request bytes read and reply bytes not yet
// written are bounded per connection and server-wide, a reply waiting for
// a client that does not read holds only that connection's share, and an
// incomplete record closes its connection after RecordTimeout (limits.go):
// a client can slow down only itself.
//
// Exports (SetExports) name a file system, optionally a sub-directory of
// it, with options: read-only (every mutating procedure answers
// NFS3ERR_ROFS, as does any file system the engine does not run as
// primary), root squash, allowed client networks, and an identity that
// replaces the caller's (EFS access points). Credentials are AUTH_UNIX
// (up to 16 groups) or AUTH_NONE (the anonymous identity); permissions are
// the engine's, checked as the caller.
//
// File handles (handle.go) carry the file system's lineage, the inode
// and its generation, the issuing export and a MAC under the file system's
// replicated key: they survive restarts and failover to a promoted replica,
// a forged one is NFS3ERR_BADHANDLE, one whose inode is gone NFS3ERR_STALE.
//
// UNSTABLE writes are buffered per file and made durable by COMMIT, by
// size and by a timer (writeback.go); the write verifier is new at every
// start and changes whenever buffered data could not be written, and a
// COMMIT over data a failed write-back dropped fails every time until the
// data is written again: no reply ever calls stable what the server does
// not hold. Non-idempotent procedures go through a duplicate request cache
// (drc.go). Errors map to statuses in one ordered table (errors.go).
package nfs
