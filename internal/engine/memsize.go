package engine

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// Bounds of the default block cache.
const (
	minBlockCacheBytes = 64 << 20
	maxBlockCacheBytes = 2 << 30
)

// DefaultBlockCacheBytes is the block cache's size when Options leave it
// zero: a sixteenth of the memory this process may use (the machine's, or
// its cgroup's limit when lower), between 64 MiB and 2 GiB. Like the page
// cache an NFS server reads from, it keeps what was recently written or
// read, so that a file read back soon is served from memory, verified
// once.
func DefaultBlockCacheBytes() int64 {
	mem := physicalMemory()
	if lim := cgroupMemoryLimit(); lim > 0 && (mem == 0 || lim < mem) {
		mem = lim
	}
	return min(max(mem/16, minBlockCacheBytes), maxBlockCacheBytes)
}

// physicalMemory is MemTotal from /proc/meminfo, 0 when unknown.
func physicalMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// cgroupMemoryLimit is the cgroup v2 memory.max of this process, 0 when
// there is none.
func cgroupMemoryLimit() int64 {
	b, err := os.ReadFile("/sys/fs/cgroup/memory.max")
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0 // "max"
	}
	return n
}
