// Package disk is the OS seam of the block store: the FS interface and its
// implementations: OS (a real directory), Mem (in memory, able to simulate a
// crash by dropping everything that was not made durable) and Faulty (wraps
// another FS and injects ENOSPC/EIO on chosen writes, syncs or renames).
package disk
