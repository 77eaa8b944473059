package nfs

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/testkit"
)

// BenchmarkSmallFileCreates: what nfs-cp does for a small file (CREATE,
// WRITE UNSTABLE, COMMIT), on the real disk, with 1 and 8 connections.
// Run: go test ./internal/nfs -run '^$' -bench SmallFileCreates -benchtime 1x
func BenchmarkSmallFileCreates(b *testing.B) {
	for _, conns := range []int{1, 8} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			v := newEnv(b, envOpt{dir: b.TempDir()})
			ctx := context.Background()
			data := make([]byte, 4096)
			const perConn = 1500
			for range b.N {
				start := time.Now()
				var wg sync.WaitGroup
				for w := range conns {
					c := v.dial()
					root := v.mount(c, "/")
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range perConn {
							res, err := c.Create(ctx, root, fmt.Sprintf("w%d-%d-%d", w, i, time.Now().UnixNano()), proto.Unchecked, proto.Sattr{})
							if err != nil {
								b.Error(err)
								return
							}
							if _, err := c.Write(ctx, res.FH, 0, data, proto.Unstable); err != nil {
								b.Error(err)
								return
							}
							if _, err := c.Commit(ctx, res.FH, 0, 0); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(conns*perConn)/time.Since(start).Seconds(), "files/s")
			}
		})
	}
}

// BenchmarkSequentialRead: what nfs-cp does to read a file (1 MiB READs,
// one at a time, on one connection), on the real disk, after the file was
// written through the engine (larger than the engine's block cache). Size: REGIONFS_BENCH_BYTES (256 MiB by default).
// Run: go test ./internal/nfs -run '^$' -bench SequentialRead -benchtime 1x
func BenchmarkSequentialRead(b *testing.B) {
	total := int64(256 << 20)
	if s := os.Getenv("REGIONFS_BENCH_BYTES"); s != "" {
		fmt.Sscan(s, &total)
	}
	v := newEnv(b, envOpt{dir: b.TempDir()})
	ctx := context.Background()
	c := v.dial()
	root := v.mount(c, "/")
	res, err := c.Create(ctx, root, "big", proto.Unchecked, proto.Sattr{})
	if err != nil {
		b.Fatal(err)
	}
	ent, err := v.fs.Lookup(ctx, engine.RootCred, engine.RootIno, "big")
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for off := int64(0); off < total; off += int64(len(chunk)) {
		for i := 0; i < len(chunk); i += 8 {
			binary.LittleEndian.PutUint64(chunk[i:], rng.Uint64())
		}
		if _, _, err := v.fs.Write(ctx, engine.RootCred, ent.Ino, uint64(off), chunk); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(total)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		var n int64
		for off := uint64(0); ; {
			r, err := c.Read(ctx, res.FH, off, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			n += int64(len(r.Data))
			off += uint64(len(r.Data))
			if r.EOF || len(r.Data) == 0 {
				break
			}
		}
		if n != total {
			b.Fatalf("read %d bytes of %d", n, total)
		}
		b.ReportMetric(float64(n)/1e6/time.Since(start).Seconds(), "MB/s")
	}
}

// BenchmarkLibnfsRead: nfs-cp reads files back (1 MiB READs, one at a
// time per stream), 1 and 4 streams at once, each stream its own file of
// REGIONFS_BENCH_BYTES/streams bytes of its own data (256 MiB in all by
// default) written through nfs-cp first. Only the server runs in this process, so a CPU
// profile is the server's: REGIONFS_BENCH_CPUPROFILE=P writes the reads'
// profile (not the writes') to P.streams1 and P.streams4.
// Run: go test ./internal/nfs -run '^$' -bench LibnfsRead -benchtime 1x
func BenchmarkLibnfsRead(b *testing.B) {
	nfsCp := testkit.NeedTool(b, "nfs-cp")
	total := int64(256 << 20)
	if s := os.Getenv("REGIONFS_BENCH_BYTES"); s != "" {
		fmt.Sscan(s, &total)
	}
	for _, streams := range []int{1, 4} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) {
			v := newEnv(b, envOpt{dir: b.TempDir(), overwriteWAL: true})
			tmp := b.TempDir()
			src := filepath.Join(tmp, "src.bin")
			for i := range streams {
				// Each stream its own data (as bench/nfs): regionfs
				// stores equal blocks once, and streams sharing them
				// would read each other's blocks from the cache.
				f, err := os.Create(src)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyN(f, rand.NewChaCha8([32]byte{1, byte(i)}), total/int64(streams)); err != nil {
					b.Fatal(err)
				}
				f.Close()
				run(b, 5*time.Minute, nfsCp, src, v.libnfsURL(fmt.Sprintf("/big%d.bin", i)))
			}
			b.SetBytes(total)
			if p := os.Getenv("REGIONFS_BENCH_CPUPROFILE"); p != "" {
				stop := startCPUProfile(b, fmt.Sprintf("%s.streams%d", p, streams))
				defer stop()
			}
			outs := make([]string, streams)
			for i := range outs {
				outs[i] = fmt.Sprintf("/dev/shm/nfsbench-%d-%d.bin", os.Getpid(), i)
			}
			removeOuts := func() {
				for _, out := range outs {
					os.Remove(out)
				}
			}
			b.Cleanup(removeOuts)
			b.ResetTimer()
			for range b.N {
				gets := v.fs.Stats().Blocks.Gets
				ru0 := rusage(b)
				start := time.Now()
				var wg sync.WaitGroup
				errs := make(chan error, streams)
				for i := range streams {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if msg, err := exec.Command(nfsCp, v.libnfsURL(fmt.Sprintf("/big%d.bin", i)), outs[i]).CombinedOutput(); err != nil {
							errs <- fmt.Errorf("nfs-cp out: %v: %s", err, msg)
						}
					}()
				}
				wg.Wait()
				close(errs)
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(total)/1e6/time.Since(start).Seconds(), "MB/s")
				// Blocks read from their files (not served by the cache).
				b.ReportMetric(float64(v.fs.Stats().Blocks.Gets-gets), "block-reads")
				// The server's CPU and page faults (this process: the
				// nfs-cp readers are children), steadier than MB/s on a
				// loaded machine.
				ru := rusage(b)
				mib := float64(total) / (1 << 20)
				cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
				b.ReportMetric(float64(cpu.Microseconds())/mib, "cpu-µs/MiB")
				b.ReportMetric(float64(ru.Minflt-ru0.Minflt)/mib, "faults/MiB")
				// Removed after the figures: freeing the copies' pages
				// costs this process CPU that is not the server's.
				removeOuts()
			}
		})
	}
}

// rusage is this process's resource usage.
func rusage(b *testing.B) syscall.Rusage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru
}

// startCPUProfile writes a CPU profile to path until the returned
// function is called.
func startCPUProfile(b *testing.B, path string) func() {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// BenchmarkLibnfsWrite: nfs-cp writes a file of REGIONFS_BENCH_BYTES (256
// MiB by default) into a fresh server (1 MiB UNSTABLE WRITEs, then
// COMMIT), as bench/nfs's sequential write does. Only the server runs in
// this process: REGIONFS_BENCH_CPUPROFILE=P writes the write's CPU profile
// to P. Besides MB/s it reports what the server's process cost per MiB
// written: heap bytes allocated, minor page faults (first touches of
// memory) and CPU time.
// Run: go test ./internal/nfs -run '^$' -bench LibnfsWrite -benchtime 1x
func BenchmarkLibnfsWrite(b *testing.B) {
	nfsCp := testkit.NeedTool(b, "nfs-cp")
	total := int64(256 << 20)
	if s := os.Getenv("REGIONFS_BENCH_BYTES"); s != "" {
		fmt.Sscan(s, &total)
	}
	src := filepath.Join(b.TempDir(), "src.bin")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.NewChaCha8([32]byte{1}), total); err != nil {
		b.Fatal(err)
	}
	f.Close()
	b.SetBytes(total)
	for i := range b.N {
		b.StopTimer()
		v := newEnv(b, envOpt{dir: b.TempDir(), overwriteWAL: true})
		if p := os.Getenv("REGIONFS_BENCH_CPUPROFILE"); p != "" && i == 0 {
			stop := startCPUProfile(b, p)
			defer stop()
		}
		b.StartTimer()
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		ru0 := rusage(b)
		start := time.Now()
		run(b, 10*time.Minute, nfsCp, src, v.libnfsURL(fmt.Sprintf("/big%d.bin", i)))
		el := time.Since(start)
		ru1 := rusage(b)
		runtime.ReadMemStats(&ms1)
		mib := float64(total) / (1 << 20)
		b.ReportMetric(float64(total)/1e6/el.Seconds(), "MB/s")
		b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/mib, "alloc-B/MiB")
		b.ReportMetric(float64(ru1.Minflt-ru0.Minflt)/mib, "minflt/MiB")
		cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
		b.ReportMetric(float64(cpu.Microseconds())/mib, "cpu-µs/MiB")
		b.ReportMetric(float64(ms1.HeapSys)/(1<<20), "heap-sys-MiB")
	}
}
