// Package engine implements regionfs file systems: inodes, directories,
// block maps, the change journal, replica apply, snapshots, clones and block
// life cycle, over three seams: kv.Store (metadata, one per server),
// blocks.Store (content-addressed block files, one per domain) and disk.FS.
// Nothing here knows about NFS, HTTP or AWS.
//
// FS is a file system as its clients use it (NFS, the control plane):
// namespace operations, reads and writes, attributes, its mode. Replica
// (FS.Replica, Engine.Replica) is the same file system as replication
// uses it: journal, snapshots and checksums, apply, sync and resync,
// pins, promotion and fencing, blocks by id. Replication learns what it
// needs of a key from the engine (SyncWeight) and never parses the layout
// below.
//
// # Commit path
//
// Each file system has one committer goroutine, the only writer of its
// keys. Operations queue to it (bounded queue: backpressure); it runs each
// as a transaction against one indexed batch (read-your-writes), gives each
// successful transaction the next journal sequence number and appends its
// journal record to the same batch, then syncs the block directories and
// commits the group with one synced write (group commit). Only then does it
// publish the durable mark and answer the callers. A failed fsync or commit
// stops the engine (Options.OnFatal); it is never retried. Whole blocks of a
// write are hashed and stored by the writer before it queues, so hashing and
// block I/O run in parallel outside the committer.
//
// # Keyspace (one kv.Store per server; big-endian integers)
//
//	's' 'v'                    server format version
//	's' 'n' / 's' 'm'          next file-system id / next domain id
//	's' 'f' fsid               file-system record (JSON: name, domain, state)
//	's' 'N' name               name → fsid
//	's' 'd' dom                domain record (JSON: lineage, KMS key id, wrapped data key, hash key)
//	's' 'c'                    clean-shutdown marker
//	'f' fsid <rel>             replicated state (below); byte-identical on replicas
//	'j' fsid seq               journal record
//	'l' fsid 'm'               local mode (primary/replica/fenced, epochs, applied point)
//	'l' fsid 'p' name          pin (journal retention and block release floor)
//	'l' fsid 't'               journal truncated below this seq
//	'l' fsid 'U'               resync undo head (JSON: consistent, mode and last seq before the resync)
//	'u' fsid <rel>             resync undo: first value of <rel> before the resync (1 ‖ value, or 0 = absent)
//	'h' dom id fsid            holder: fsid references block id (server-local)
//	'g' dom id                 release queue: count of id reached zero (fsid ‖ seq ‖ tag unique to the write; format 2: no tag)
//
// Replicated keys, relative to 'f' fsid (journal after-images use these):
//
//	'M' "super"                superblock (JSON: version, block size, lineage, id key, handle MAC key)
//	'M' "epochs"               epoch history [(epoch, start seq)]
//	'M' "next" / "boot"        next inode number / boot counter for generations
//	'M' "usage"                bytes ‖ files in use (bytes: what linked regular files use, inode.counted)
//	'I' ino 'A'                inode attributes (versioned fixed binary; version 2: + held bytes)
//	'I' ino 'B' idx            block map entry: block id (33) ‖ length (4)
//	'I' ino 'D' name           directory entry: ino ‖ type ‖ cookie
//	'I' ino 'E' idx seq        pending extent: offset (4) ‖ bytes
//	'I' ino 'L'                inline data of a small file
//	'I' ino 'O' cookie         readdir order: ino ‖ type ‖ name
//	'R' id                     block reference count
//	'X' ino idx                block with pending extents (to merge)
//	'Z' ino                    zombie: data being released ('z' unlinked, 't' huge truncate)
//
// All keys of an inode are adjacent, so a directory page or a file's block
// map is one bounded range scan. Readdir cookies come from a per-directory
// counter and never change for an entry's life.
//
// # Journal records
//
// A record (Record.Encode) is: version 1 ‖ uvarint epoch ‖ uvarint seq ‖
// varint time (ns) ‖ op summary (name, inodes, names) ‖ mutations (kind,
// key, value; sorted by key) ‖ ids of blocks gaining references ‖ ids whose
// count reached zero ‖ CRC-32C. Replaying records 1..n into an empty
// replica yields the source's replicated range at n, byte for byte.
//
// # Blocks
//
// A file is cut into fixed blocks (block size per file system). Full-block
// writes store a block; smaller writes are staged as pending extents in the
// metadata and merged in the background; tiny files live inline. Block ids
// are keyed BLAKE3 under the lineage's id key. A block file is deleted only
// when no holder remains, it is not in flight, its release seq is below
// every pin, and no reader that could still reference it is active.
//
// # Encryption
//
// An encrypted file system's domain has a data key wrapped by a KMS key of
// the local keyring. Block files are sealed by the block store; values of
// 'f', 'j' and 'u' keys are sealed below the kv seam (kv.Sealed), so the logical
// keyspace and block ids are identical in every region. Names inside keys
// stay plaintext (documented limitation).
//
// Reads do not update atime (like mounting with noatime).
package engine
