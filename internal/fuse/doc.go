// Package fuse is `regionfs mount`: a FUSE file system (hanwen/go-fuse v2)
// over regionfs's NFSv3 client (package nfs/client), so that the kernel's
// VFS reaches a regionfs mount target without a kernel NFS client.
//
// Semantics, as a Linux NFS mount gives them:
//   - Attribute and entry caching for AttrTimeout/EntryTimeout; names a
//     READDIRPLUS returned answer lookups from memory for as long. A
//     directory's attributes come from the wcc data of the operations in
//     it, and a directory this client created knows its names while the
//     wcc data shows nobody else changed it: creating files in it costs
//     no LOOKUP and no GETATTR of the directory (dircache.go).
//   - Close-to-open consistency: open always revalidates the attributes
//     with GETATTR, and keeps the kernel's page cache only when the file
//     is unchanged; when it changed, the kernel is also told to drop the
//     attributes it caches (its size bounds its reads); close (FLUSH) and
//     fsync write back and COMMIT.
//   - Write-behind: writes are gathered into wsize pieces and sent as
//     UNSTABLE WRITEs in the background (overlapping pieces are never in
//     flight together); data stays in memory until a COMMIT with the same
//     write verifier covers it. A file whose only unwritten data is one
//     piece (a small file) is written FILE_SYNC at close, fsync or
//     SETATTR instead, and needs no COMMIT. A changed verifier (the server restarted)
//     resends it. An error of a background write is returned by the next
//     fsync or close of the file, never dropped.
//   - Attribute changes through a file being written (times, owner, mode
//     as `cp -a` sets them before closing) travel with its data: one
//     SETATTR after the data at fsync or close, whose failure that fsync
//     or close returns (attrs.go). A small file's data then goes
//     UNSTABLE, the SETATTR after its reply, then the COMMIT: a server
//     may make the data and the change durable together (regionfs does,
//     in one commit, where a FILE_SYNC WRITE and a SETATTR are two).
//   - Readahead: sequential reads fetch the next rsize pieces ahead.
//   - The connection is a client.Session: a server restart or a lost
//     connection is retried forever (a hard mount) with the same handles.
//     When the session switches to another copy of the data (a failover
//     to a promoted replica), data written but not committed before the
//     switch is dropped: the next fsync/close of each such file fails
//     with EIO and the file (path, bytes) is logged.
package fuse
