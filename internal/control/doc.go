// Package control is the domain of a region's EFS control plane: file
// systems, mount targets, access points, tags, lifecycle and backup
// settings, file system policies and account preferences, with EFS's rules
// and life cycles. It owns no protocol: package api/efs speaks the AWS wire
// format over it, cmd serves mount targets over NFS through the
// MountTargetServer seam, and the EFS replication configurations
// (package control/replconf, over the replication node) create, protect,
// fence and flush file systems through replica.go. It never imports nfs,
// api or replication.
//
// # State machine
//
// File systems, mount targets and access points are created in creating
// and become available after Options.TransitionDelay; UpdateFileSystem
// goes through updating; deletion goes through deleting, after which the
// resource is gone (describing it is a NotFound error). Backup policies go
// through ENABLING/DISABLING the same way. Every state change is durable
// (one synced KV batch) before it is visible or acknowledged, and the
// transition worker resumes pending transitions after a restart, timed
// from when the state was entered.
//
// A file system's engine file system is named by its id. It is created
// right after the file system's record is durable (Open creates it if a
// crash came in between) and deleted, outside the control lock, once
// deleting is due; the record and the file system's access points go
// last. A mount target is served (MountTargetServer.Start) before its
// record is written, stopped when its deletion starts, and served again by
// Open after a restart.
//
// # Keys (under 'c' of the server's one store; values are JSON)
//
//	'c' 'v'         format version {"version":1}
//	'c' 'f' fs-id   file system (token, state and since, modes, encryption key id,
//	                tags, protection, lifecycle, backup, policy, replication role)
//	'c' 'm' fsmt-id mount target (file system, subnet, zone, VPC, address, ENI, groups)
//	'c' 'a' fsap-id access point (file system, client token, POSIX user, root directory)
//	'c' 'p'         account preferences (resource id type)
//
// In-memory indexes (creation tokens, client tokens) are rebuilt by Open.
// Listings are ordered by creation time then id; their opaque markers
// encode that position, so a page boundary survives deletions.
//
// # Errors
//
// Every rule violation is an *Error wrapping one sentinel (ErrBadRequest,
// ErrFileSystemNotFound, ErrIncorrectLifeCycleState, …) with a public
// message; other errors are internal failures.
package control
