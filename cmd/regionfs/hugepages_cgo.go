//go:build cgo && linux

package main

import (
	"os"
	"strings"
	"syscall"
)

// hugePagesTunables make glibc's malloc back the memory it takes for
// Pebble with transparent huge pages. With cgo, Pebble allocates its
// memtables (256 KiB doubling to 32 MiB on a fresh store) and every block
// of its block cache (one calloc per block loaded) from glibc, so without
// them every 4 KiB of fresh memory is a page fault on first touch: ~2.5
// per small-file create, 5 % of the server's CPU (bench/nfs create18,
// create20), and 1.2-1.6 CPU-s of a fresh server's first 192 MiB of block
// cache, as in the read of an initial sync's snapshot (bench/replication
// sync20, sync21). glibc reads its tunables only when the process starts,
// hence the re-execution.
//
//   - glibc.malloc.hugetlb=1: glibc advises the kernel to use huge pages
//     (madvise(MADV_HUGEPAGE); glibc 2.35 and later, older ones ignore it)
//     for its main heap and its mmap'd chunks: the memtables.
//   - glibc.malloc.arena_max=1: every thread allocates from that main
//     heap. A cache block is smaller than the mmap threshold, and calls
//     into C run on many threads, each of which glibc otherwise gives an
//     arena of its own, which it does not advise (glibc 2.36): the block
//     cache then took no huge page at all. One arena's lock is no
//     contention for Pebble's allocations (one per block read from a
//     table, memtable or flush), which are all that go through malloc:
//     Go's own heap does not.
var hugePagesTunables = []string{"glibc.malloc.hugetlb=1", "glibc.malloc.arena_max=1"}

// withHugePages returns env with those of hugePagesTunables added to
// GLIBC_TUNABLES that it does not set already, to any value, and whether
// it added any: GLIBC_TUNABLES=glibc.malloc.hugetlb=0 turns huge pages
// off, glibc.malloc.arena_max=0 gives threads their arenas again.
func withHugePages(env []string) ([]string, bool) {
	have, found := "", false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GLIBC_TUNABLES="); ok && !found {
			have, found = v, true // glibc reads the first
		}
	}
	set := map[string]bool{}
	for t := range strings.SplitSeq(have, ":") {
		name, _, _ := strings.Cut(t, "=")
		set[name] = true
	}
	var add []string
	for _, t := range hugePagesTunables {
		if name, _, _ := strings.Cut(t, "="); !set[name] {
			add = append(add, t)
		}
	}
	if len(add) == 0 {
		return env, false
	}
	v := strings.Join(add, ":")
	if have != "" {
		v = have + ":" + v
	}
	out := make([]string, 0, len(env)+1)
	done := false
	for _, kv := range env {
		if !done && strings.HasPrefix(kv, "GLIBC_TUNABLES=") {
			kv, done = "GLIBC_TUNABLES="+v, true
		}
		out = append(out, kv)
	}
	if !done {
		out = append(out, "GLIBC_TUNABLES="+v)
	}
	return out, true
}

// execWithHugePages re-executes the program (the same process, arguments
// and environment) with hugePagesTunables unless GLIBC_TUNABLES sets them
// already. It returns only when it does not re-execute: the tunables set,
// or the program's file gone (then the process runs on, without them).
func execWithHugePages() {
	env, ok := withHugePages(os.Environ())
	if !ok {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(exe, os.Args, env)
}
