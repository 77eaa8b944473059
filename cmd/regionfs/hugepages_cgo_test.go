//go:build cgo && linux

package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regionfs/regionfs/internal/engine/kv/pebblekv"
	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/race"
	"github.com/regionfs/regionfs/internal/testkit"
)

func TestHugePagesEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		want []string // nil: unchanged, no re-execution
	}{
		{"none", []string{"A=1"}, []string{"A=1", "GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1"}},
		{"empty", []string{"GLIBC_TUNABLES=", "B=2"}, []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1", "B=2"}},
		{"others", []string{"GLIBC_TUNABLES=glibc.malloc.mmap_threshold=65536"}, []string{"GLIBC_TUNABLES=glibc.malloc.mmap_threshold=65536:glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1"}},
		{"hugetlb on", []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=1"}, []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1"}},
		{"arena_max set", []string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2"}, []string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"}},
		{"both set", []string{"GLIBC_TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.hugetlb=1"}, nil},
		{"off", []string{"GLIBC_TUNABLES=glibc.malloc.arena_max=0:glibc.malloc.hugetlb=0"}, nil},
		{"prefix is another", []string{"GLIBC_TUNABLES=glibc.malloc.hugetlbx=1"}, []string{"GLIBC_TUNABLES=glibc.malloc.hugetlbx=1:glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1"}},
		{"the first counts", []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=0", "GLIBC_TUNABLES=x=1"}, []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=0:glibc.malloc.arena_max=1", "GLIBC_TUNABLES=x=1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.env)
			got, changed := withHugePages(in)
			if changed != (tc.want != nil) {
				t.Fatalf("withHugePages(%q) changed = %v", tc.env, changed)
			}
			if tc.want == nil {
				tc.want = tc.env
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("withHugePages(%q) (-want +got):\n%s", tc.env, d)
			}
			if d := cmp.Diff(tc.env, in); d != "" {
				t.Errorf("the input changed (-was +is):\n%s", d)
			}
		})
	}
}

// TestServerHugePages: a cgo build of `regionfs nfs serve` started without
// the tunable runs with it (the same process, re-executed once), and its
// fresh memtables take huge pages: counted in page faults per small-file
// create (CREATE GUARDED + 4 KiB FILE_SYNC WRITE) after the first memtables, against the same server
// started with glibc.malloc.hugetlb=0, which keeps that setting. Measured
// (2026-12-07, create20): 2.9-3.3 faults per file without, 0.75-1.44 with.
func TestServerHugePages(t *testing.T) {
	thp, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || bytes.Contains(thp, []byte("[never]")) {
		t.Skipf("transparent huge pages are off on this machine (%q, %v): nothing to count", thp, err)
	}
	bin := buildBinary(t)
	// The first memtables (256 KiB doubling) are too small for huge
	// pages: warm files fill them, the counted ones go to 4 and 8 MiB
	// memtables.
	const warm, files = 600, 1500
	faults := map[string]float64{}
	for _, tc := range []struct {
		tunables, want string
	}{
		{"glibc.malloc.hugetlb=0", "GLIBC_TUNABLES=glibc.malloc.hugetlb=0:glibc.malloc.arena_max=1"},
		{"", "GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1"},
	} {
		t.Run(fmt.Sprintf("tunables=%q", tc.tunables), func(t *testing.T) {
			dir := t.TempDir()
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			cmd := exec.Command(bin, "nfs", "serve", "--data-dir", filepath.Join(dir, "data"), "--listen", addr, "--log-level", "warn")
			cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GLIBC_TUNABLES=") })
			if tc.tunables != "" {
				cmd.Env = append(cmd.Env, "GLIBC_TUNABLES="+tc.tunables)
			}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-done
			})
			testkit.WaitFor(t, "the server's listener", 60*time.Second, func() bool {
				c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
				if err == nil {
					c.Close()
				}
				return err == nil
			})
			pid := cmd.Process.Pid
			env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			if err != nil {
				t.Fatal(err)
			}
			// glibc 2.36 parses GLIBC_TUNABLES in place, overwriting each
			// ':' with a NUL: the tunables after the first follow it as
			// pieces of their own.
			var tunables []string
			for kv := range bytes.SplitSeq(env, []byte{0}) {
				if bytes.HasPrefix(kv, []byte("GLIBC_TUNABLES=")) {
					tunables = append(tunables, string(kv))
				} else if n := len(tunables); n > 0 && bytes.HasPrefix(kv, []byte("glibc.")) {
					tunables[n-1] += ":" + string(kv)
				}
			}
			if d := cmp.Diff([]string{tc.want}, tunables); d != "" {
				t.Fatalf("the server's GLIBC_TUNABLES (-want +got):\n%s\noutput:\n%s", d, out.String())
			}

			ctx := t.Context()
			conn, err := client.Dial(ctx, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			c := conn.WithAuth(client.Unix("test", 0, 0))
			root, _, err := c.Mount(ctx, "/")
			if err != nil {
				t.Fatal(err)
			}
			data := bytes.Repeat([]byte{7}, 4096)
			var before int64
			for i := range warm + files {
				if i == warm {
					before = minorFaults(t, pid)
				}
				res, err := c.Create(ctx, root, fmt.Sprintf("f%05d", i), proto.Guarded, proto.Sattr{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.Write(ctx, res.FH, 0, data, proto.FileSync); err != nil {
					t.Fatal(err)
				}
			}
			faults[tc.want] = float64(minorFaults(t, pid)-before) / files
			t.Logf("%.2f page faults per file", faults[tc.want])
		})
	}
	off, on := faults["GLIBC_TUNABLES=glibc.malloc.hugetlb=0:glibc.malloc.arena_max=1"], faults["GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1"]
	// Without the re-execution both are ~3; the rest with it (0.75-1.44
	// per file measured) is the Go heap's and the small first memtables'.
	if !t.Failed() && on > off*2/3 {
		t.Errorf("page faults per small-file create: %.2f with glibc.malloc.hugetlb=1, %.2f with =0; want at most two thirds", on, off)
	}
}

// minorFaults returns the minor page faults of process pid so far
// (/proc/PID/stat, field 10).
func minorFaults(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	_, rest, ok := bytes.Cut(b, []byte(") "))
	f := strings.Fields(string(rest))
	if !ok || len(f) < 8 {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	n, err := strconv.ParseInt(f[7], 10, 64) // field 10: fields 3.. start at f[0]
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBlockCacheHugePages: a cold Pebble block cache filled by a scan (as
// an initial sync's read of its snapshot on a fresh server) takes its
// memory in huge pages under the re-execution's tunables, counted in page
// faults per MiB scanned, against glibc.malloc.hugetlb=1 alone (8a68cc8),
// under which each thread that calls into C allocates from an arena of
// its own that glibc does not advise: one fault per 4 KiB. A child
// process (this test again, cacheScanEnv set) writes 48 MiB of 4 KiB
// values into tables, reopens the store with a fresh cache and counts
// its own faults during one scan. Measured (2026-12-07, sync21): ~296
// faults per MiB with hugetlb=1 alone, 8-16 with both tunables.
func TestBlockCacheHugePages(t *testing.T) {
	if dir := os.Getenv(cacheScanEnv); dir != "" {
		cacheScanChild(t, dir)
		return
	}
	if race.Enabled {
		// Its child is this test binary: under the race detector it
		// counted 24 or 1 100 faults per MiB from run to run (2026-12-07),
		// the race runtime's, not glibc's. .ci/run runs it without -race.
		t.Skip("page faults of a race-detector build measure its runtime, not glibc's malloc; run without -race")
	}
	thp, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || bytes.Contains(thp, []byte("[never]")) {
		t.Skipf("transparent huge pages are off on this machine (%q, %v): nothing to count", thp, err)
	}
	perMiB := map[string]float64{}
	for _, tunables := range []string{"glibc.malloc.hugetlb=1", strings.Join(hugePagesTunables, ":")} {
		t.Run(tunables, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBlockCacheHugePages$", "-test.count=1", "-test.v")
			cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GLIBC_TUNABLES=") })
			cmd.Env = append(cmd.Env, "GLIBC_TUNABLES="+tunables, cacheScanEnv+"="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			_, line, ok := bytes.Cut(out, []byte("cache scan: "))
			var faults, mib float64
			if ok {
				_, err = fmt.Sscanf(string(line), "%g faults, %g MiB", &faults, &mib)
			}
			if !ok || err != nil || mib < 40 {
				t.Fatalf("child's output (%v):\n%s", err, out)
			}
			perMiB[tunables] = faults / mib
			t.Logf("%.1f page faults per MiB scanned", faults/mib)
		})
	}
	before, after := perMiB["glibc.malloc.hugetlb=1"], perMiB[strings.Join(hugePagesTunables, ":")]
	// 4 KiB pages: 256 per MiB of blocks.
	if !t.Failed() && after > before/4 {
		t.Errorf("page faults per MiB of a cold block cache's scan: %.1f with %q, %.1f with glibc.malloc.hugetlb=1 alone; want at most a quarter",
			after, strings.Join(hugePagesTunables, ":"), before)
	}
}

// cacheScanChild writes 48 MiB of 4 KiB values into the tables of a store
// in dir, reopens it with a fresh cache and prints the page faults of one
// scan over them.
func cacheScanChild(t *testing.T, dir string) {
	const values = 12 << 10
	st, err := pebblekv.Open(dir, pebblekv.Options{CacheSizeBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	val := make([]byte, 4096)
	err = st.IngestIncompressible(func(yield func([]byte, []byte) bool) {
		for i := range values {
			for j := 0; j+8 <= len(val); j += 8 {
				binary.LittleEndian.PutUint64(val[j:], rng.Uint64())
			}
			if !yield(fmt.Appendf(nil, "k%08d", i), val) {
				return
			}
		}
	})
	if err == nil {
		err = st.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if st, err = pebblekv.Open(dir, pebblekv.Options{CacheSizeBytes: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	it, err := st.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var n, size int
	before := ownMinorFaults(t)
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			t.Fatal(err)
		}
		n++
		size += len(v)
	}
	faults := ownMinorFaults(t) - before
	if err := it.Error(); err != nil || n != values {
		t.Fatalf("scanned %d of %d values: %v", n, values, err)
	}
	fmt.Printf("cache scan: %d faults, %.1f MiB\n", faults, float64(size)/(1<<20))
}

// ownMinorFaults returns this process's minor page faults so far.
func ownMinorFaults(t *testing.T) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Minflt
}
