//go:build cgo && linux

package main

import (
	"os"
	"strings"
	"syscall"
)

// hugePagesTunable makes glibc's malloc advise the kernel to back the
// memory it maps with transparent huge pages (madvise(MADV_HUGEPAGE);
// glibc 2.35 and later, older ones ignore it). With cgo, Pebble allocates
// its memtables (256 KiB doubling to 32 MiB on a fresh store) and its
// block cache with calloc, so without it every 4 KiB of a fresh memtable
// is a page fault on first touch: ~2.5 per small-file create, 5 % of the
// server's CPU (bench/nfs create18, create20). glibc reads its tunables
// only when the process starts, hence the re-execution.
const (
	hugePagesTunable = "glibc.malloc.hugetlb"
	hugePagesValue   = hugePagesTunable + "=1"
)

// withHugePages returns env with glibc.malloc.hugetlb=1 added to
// GLIBC_TUNABLES, and false when env sets that tunable already, to any
// value: GLIBC_TUNABLES=glibc.malloc.hugetlb=0 turns it off.
func withHugePages(env []string) ([]string, bool) {
	out := make([]string, 0, len(env)+1)
	set := false
	for _, kv := range env {
		v, ok := strings.CutPrefix(kv, "GLIBC_TUNABLES=")
		if !ok {
			out = append(out, kv)
			continue
		}
		for t := range strings.SplitSeq(v, ":") {
			if name, _, _ := strings.Cut(t, "="); name == hugePagesTunable {
				return env, false
			}
		}
		if !set && v != "" {
			v += ":"
		}
		out = append(out, "GLIBC_TUNABLES="+v+hugePagesValue)
		set = true
	}
	if !set {
		out = append(out, "GLIBC_TUNABLES="+hugePagesValue)
	}
	return out, true
}

// execWithHugePages re-executes the program (the same process, arguments
// and environment) with glibc.malloc.hugetlb=1 unless GLIBC_TUNABLES sets
// it already. It returns only when it does not re-execute: the tunable set,
// or the program's file gone (then the process runs on, without it).
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
