//go:build !cgo || !linux

package main

// execWithHugePages does nothing without cgo: Pebble's memtables are then
// Go allocations, which glibc's tunables do not reach (hugepages_cgo.go).
func execWithHugePages() {}
