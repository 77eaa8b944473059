package engine

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkMetadataScale: the metadata-scale goal of issue 16 in the
// engine — a file system with many files (all in one directory, the hard
// case for listings), the memory the process holds once they exist, and
// what a page of that directory costs at its start and at its end.
//
// On Pebble configured as the servers configure it. Setup:
// REGIONFS_BENCH_FILES empty files (default 20 000; the goal is
// 1 000 000) made by 64 concurrent writers through FS.Create, each create
// a durable operation (the committer groups them). Then, after a GC:
// VmRSS and VmHWM of this process (engine, Pebble, the test binary) and
// the Go heap. Then a full listing in pages of 512 entries with
// attributes (READDIRPLUS's engine call), in cookie order as a client
// reads it, timing every page; and the first and the last page again, 50
// times each, warm. Figures: files/s of the setup, rss-MiB, hwm-MiB,
// heap-MiB, go-total-MiB, bytes/file (VmRSS over the files), the mean of
// the first and of the last 10 pages of the listing and their ratio, and
// the warm first/last page and their ratio, and the same again once the
// store is flushed and compacted (compacted-…). Goals: RSS ≤ 512 MiB at
// 1 000 000 files; last/first ≤ 2.
//
//	REGIONFS_BENCH_FILES=1000000 go test ./internal/engine -run '^$' \
//	    -bench MetadataScale -benchtime 1x -timeout 60m
//
// REGIONFS_BENCH_DIR=DIR keeps the engine in DIR, and a later run with the
// same REGIONFS_BENCH_FILES lists what an earlier one made (the setup
// figure is then meaningless); REGIONFS_BENCH_LIST_PROFILE=FILE writes a
// CPU profile of the listings alone.
func BenchmarkMetadataScale(b *testing.B) {
	files := 20_000
	if s := os.Getenv("REGIONFS_BENCH_FILES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2048 {
			b.Fatalf("REGIONFS_BENCH_FILES=%q: want a number ≥ 2048", s)
		}
		files = n
	}
	keep := os.Getenv("REGIONFS_BENCH_DIR")
	if keep == "" {
		keep = b.TempDir()
	}
	_, fs, st := benchEngineAt(b, keep, serverKV)
	ctx := context.Background()
	var dir uint64
	const writers = 64
	start := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	if a, err := fs.Lookup(ctx, RootCred, RootIno, "big"); err == nil {
		// Made by an earlier run in REGIONFS_BENCH_DIR.
		dir = a.Ino
		next.Store(int64(files))
	} else {
		dir = must(fs.Mkdir(ctx, RootCred, RootIno, "big", SetAttr{}))(b).Attr.Ino
	}
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(files) {
					return
				}
				if _, err := fs.Create(ctx, RootCred, dir, fmt.Sprintf("file-%07d", i), CreateGuarded, SetAttr{}, 0); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	setup := time.Since(start)
	b.Logf("%d files created in %v (%.0f files/s, %d writers)", files, setup.Round(time.Millisecond), float64(files)/setup.Seconds(), writers)

	const pageSize, edge = 512, 10
	var times []time.Duration
	// ring keeps the cookies of the last pageSize+1 entries listed: the
	// first of them starts the last full page.
	var ring [pageSize + 1]uint64
	listing := func() {
		times = times[:0]
		cookie, n := uint64(0), 0
		for {
			t0 := time.Now()
			ents, eof, _, err := fs.ReadDir(ctx, RootCred, dir, cookie, pageSize, true)
			if err != nil {
				b.Fatal(err)
			}
			if !eof || len(ents) == pageSize {
				times = append(times, time.Since(t0))
			}
			for _, e := range ents {
				ring[n%len(ring)] = e.Cookie
				n++
			}
			if len(ents) > 0 {
				cookie = ents[len(ents)-1].Cookie
			}
			if eof {
				break
			}
		}
		if n != files {
			b.Fatalf("listing: %d entries, want %d", n, files)
		}
	}
	mean := func(d []time.Duration) time.Duration {
		var s time.Duration
		for _, x := range d {
			s += x
		}
		return s / time.Duration(len(d))
	}
	if p := os.Getenv("REGIONFS_BENCH_LIST_PROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	b.ResetTimer()
	for range b.N {
		runtime.GC()
		mem := readMem(b)
		b.ReportMetric(float64(files)/setup.Seconds(), "creates/s")
		b.ReportMetric(mem.rss/(1<<20), "rss-MiB")
		b.ReportMetric(mem.hwm/(1<<20), "hwm-MiB")
		b.ReportMetric(mem.heap/(1<<20), "heap-MiB")
		b.ReportMetric(mem.goTotal/(1<<20), "go-total-MiB")
		b.ReportMetric(mem.rss/float64(files), "rss-bytes/file")

		listing()
		n := min(edge, len(times)/2) // fewer pages than 2×edge with a small REGIONFS_BENCH_FILES
		first, last := mean(times[:n]), mean(times[len(times)-n:])
		b.ReportMetric(float64(first.Microseconds()), "list-first-µs")
		b.ReportMetric(float64(last.Microseconds()), "list-last-µs")
		b.ReportMetric(float64(last)/float64(first), "list-last/first")

		// Warm: the first page and the page of the last 512 entries.
		lastCookie := ring[(files-pageSize-1)%len(ring)]
		page := func(c uint64) time.Duration {
			const reps = 50
			t0 := time.Now()
			for range reps {
				ents, _, _, err := fs.ReadDir(ctx, RootCred, dir, c, pageSize, true)
				if err != nil || len(ents) != pageSize {
					b.Fatalf("page: %d entries, %v", len(ents), err)
				}
			}
			return time.Since(t0) / reps
		}
		// firstLast reports the first and the last page once both are
		// cached (each read once before it is timed).
		firstLast := func(label string) {
			page(0)
			page(lastCookie)
			f, l := page(0), page(lastCookie)
			b.ReportMetric(float64(f.Microseconds()), label+"-first-µs")
			b.ReportMetric(float64(l.Microseconds()), label+"-last-µs")
			b.ReportMetric(float64(l)/float64(f), label+"-last/first")
		}
		firstLast("warm")
		b.Logf("right after the creates: %s", st.Metrics())

		// Compacted: every key flushed and compacted to the bottom level,
		// as the directory is once it has not been written for a while —
		// an LSM tree reads a recent key from its memtable and an old one
		// through every level above its own, so right after the creates
		// the oldest entries cost more than the newest whatever the
		// listing does.
		if err := st.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := st.DB().Compact(ctx, []byte{0}, []byte{0xff, 0xff}, false); err != nil {
			b.Fatal(err)
		}
		firstLast("compacted")
		b.Logf("compacted: %s", st.Metrics())
		runtime.GC()
		after := readMem(b)
		b.ReportMetric(after.hwm/(1<<20), "hwm-after-list-MiB")
	}
}

type memFigures struct{ rss, hwm, heap, goTotal float64 }

// readMem reads this process's VmRSS and VmHWM and the Go runtime's heap
// objects and total mapped memory.
func readMem(tb testing.TB) memFigures {
	tb.Helper()
	var m memFigures
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(string(f[1]), 64)
		switch string(f[0]) {
		case "VmRSS:":
			m.rss = kb * 1024
		case "VmHWM:":
			m.hwm = kb * 1024
		}
	}
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/total:bytes"}}
	rtmetrics.Read(s)
	m.heap = float64(s[0].Value.Uint64())
	m.goTotal = float64(s[1].Value.Uint64())
	return m
}
