// Package layering holds the test that keeps dependencies pointing one way
// (DESIGN.md §2): cmd → api, nfs, fuse → control, replication, monitor →
// engine → kv, blocks, disk. It has no code of its own.
package layering
