package replication

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kms"
	"github.com/regionfs/regionfs/internal/engine/kv/pebblekv"
	"github.com/regionfs/regionfs/internal/testkit"
)

// cpuTime is the CPU time (user and system) this process used so far:
// both regions run in it, so its difference over a phase is what the
// phase cost the machine, which a loaded machine changes far less than
// the phase's duration.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// diskRegion is a region on the real disk (Pebble and block files).
type diskRegion struct {
	name string
	st   *pebblekv.Store
	e    *engine.Engine
	n    *Node
	ln   net.Listener
	addr string
}

func newDiskRegion(b testing.TB, name string) *diskRegion {
	b.Helper()
	dir := b.TempDir()
	st, err := pebblekv.Open(filepath.Join(dir, "kv"), pebblekv.Options{})
	if err != nil {
		b.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "blocks"), 0o755)
	d, err := disk.NewOS(filepath.Join(dir, "blocks"))
	if err != nil {
		b.Fatal(err)
	}
	key, _ := kms.Generate("k-"+name, "alias/aws/elasticfilesystem")
	ring, _ := kms.New(key)
	e, err := engine.Open(context.Background(), engine.Options{KV: st, Disk: d, Keyring: ring, OnFatal: func(err error) { b.Errorf("fatal: %v", err) }})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	r := &diskRegion{name: name, st: st, e: e, addr: ln.Addr().String()}
	b.Cleanup(func() {
		if r.n != nil {
			r.n.Shutdown(context.Background())
			r.n.Close()
		}
		e.Close()
		st.Close()
	})
	r.ln = ln
	return r
}

// benchSize is the number in the environment variable name, def without
// it.
func benchSize[N int | int64](name string, def N) N {
	if s := os.Getenv(name); s != "" {
		fmt.Sscan(s, &def)
	}
	return def
}

// diskPairFS serves two regions on the real disk to each other and creates
// the file system "src" in the first.
func diskPairFS(b testing.TB, ctx context.Context) (a, d *diskRegion, src *engine.FS) {
	return diskPairFSOpts(b, ctx, engine.FSOptions{})
}

// diskPairFSOpts is diskPairFS with the source created with opts.
func diskPairFSOpts(b testing.TB, ctx context.Context, opts engine.FSOptions) (a, d *diskRegion, src *engine.FS) {
	a, d = newDiskRegion(b, "us-east-1"), newDiskRegion(b, "us-west-2")
	serveDiskPair(a, d)
	src, err := a.e.CreateFS(ctx, "src", opts)
	if err != nil {
		b.Fatal(err)
	}
	return a, d, src
}

// BenchmarkReplicationThroughput: bytes written in 1 MiB writes on the
// source, shipped to an encrypted replica on the real disk: the initial
// sync of data written before the replication exists, then streaming of
// data written after. Size: REGIONFS_BENCH_BYTES (default 256 MiB).
// Run: go test ./internal/replication -run '^$' -bench Throughput -benchtime 1x
func BenchmarkReplicationThroughput(b *testing.B) {
	total := benchSize("REGIONFS_BENCH_BYTES", int64(256<<20))
	ctx := context.Background()
	for range b.N {
		a, d, src := diskPairFS(b, ctx)
		write := func(name string) time.Duration {
			c, err := src.Create(ctx, engine.RootCred, engine.RootIno, name, engine.CreateGuarded, engine.SetAttr{}, 0)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 1<<20)
			rng := rand.New(rand.NewPCG(uint64(len(name)), 1))
			start := time.Now()
			for off := int64(0); off < total; off += int64(len(buf)) {
				for i := 0; i+8 <= len(buf); i += 8 {
					v := rng.Uint64()
					for j := range 8 {
						buf[i+j] = byte(v >> (8 * j))
					}
				}
				if _, _, err := src.Write(ctx, engine.RootCred, c.Attr.Ino, uint64(off), buf); err != nil {
					b.Fatal(err)
				}
			}
			return time.Since(start)
		}
		write("before")
		if _, err := d.e.CreateReplica(ctx, "dst", "alias/aws/elasticfilesystem"); err != nil {
			b.Fatal(err)
		}
		start, cpu := time.Now(), cpuTime()
		if err := d.n.AddInbound(InboundSpec{ID: "r", SourceRegion: a.name, DestFS: "dst"}); err != nil {
			b.Fatal(err)
		}
		if err := a.n.AddOutbound(OutboundSpec{ID: "r", SourceFS: "src", DestRegion: d.name, DestFS: "dst"}); err != nil {
			b.Fatal(err)
		}
		dst := func() *engine.FS { fs, _ := d.e.FS("dst"); return fs }
		testkit.WaitFor(b, "initial sync", 10*time.Minute, func() bool {
			_, applied, _ := dst().Replica().Applied()
			return dst().Replica().Consistent() && applied == src.Replica().DurableSeq()
		})
		syncTime, syncCPU := time.Since(start), cpuTime()-cpu
		cpu = cpuTime()
		wt := write("after")
		start = time.Now()
		testkit.WaitFor(b, "streaming", 10*time.Minute, func() bool {
			_, applied, _ := dst().Replica().Applied()
			return applied == src.Replica().DurableSeq()
		})
		tail := time.Since(start)
		mb := float64(total) / (1 << 20)
		gib := mb / 1024
		b.ReportMetric(syncCPU.Seconds()/gib, "sync-cpu-s/GiB")
		b.ReportMetric((cpuTime()-cpu).Seconds()/gib, "replicated-cpu-s/GiB")
		b.ReportMetric(mb/syncTime.Seconds(), "sync-MB/s")
		b.ReportMetric(mb/wt.Seconds(), "write-MB/s")
		b.ReportMetric(mb/(wt+tail).Seconds(), "replicated-MB/s")
		b.ReportMetric(tail.Seconds(), "tail-s")
	}
}

// BenchmarkInitialSyncSmallFiles: the initial sync of many 4 KiB files
// (REGIONFS_BENCH_FILES, default 20 000) of random content from an
// encrypted file system into an encrypted replica on the real disk, like
// bench/replication's dataset B (zeros would compress in Pebble's blocks
// and skip the source's value opening).
func BenchmarkInitialSyncSmallFiles(b *testing.B) {
	files := benchSize("REGIONFS_BENCH_FILES", 20000)
	ctx := context.Background()
	for range b.N {
		a, d, src := diskPairFSOpts(b, ctx, engine.FSOptions{KMSKeyID: "alias/aws/elasticfilesystem"})
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				data := make([]byte, 4096)
				rng := rand.New(rand.NewPCG(uint64(w), 3))
				for i := w; i < files; i += 16 {
					for j := 0; j+8 <= len(data); j += 8 {
						binary.LittleEndian.PutUint64(data[j:], rng.Uint64())
					}
					c, err := src.Create(ctx, engine.RootCred, engine.RootIno, fmt.Sprintf("f%06d", i), engine.CreateGuarded, engine.SetAttr{}, 0)
					if err == nil {
						_, _, err = src.Write(ctx, engine.RootCred, c.Attr.Ino, 0, data)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		el, cpu := timeInitialSync(b, ctx, a, d, src)
		b.ReportMetric(float64(files)/el.Seconds(), "files/s")
		b.ReportMetric(el.Seconds(), "sync-s")
		b.ReportMetric(cpu.Seconds(), "sync-cpu-s")
	}
}

// BenchmarkInitialSyncLargeFiles: the initial sync of 8 files of
// REGIONFS_BENCH_BYTES in total (default 256 MiB; bench/replication's
// dataset A is 1 GiB), written in 1 MiB writes before the replication
// exists, into an encrypted replica on the real disk.
// REGIONFS_BENCH_PROFILE names a CPU profile of the sync.
func BenchmarkInitialSyncLargeFiles(b *testing.B) {
	total := benchSize("REGIONFS_BENCH_BYTES", int64(256<<20))
	ctx := context.Background()
	for range b.N {
		a, d, src := diskPairFS(b, ctx)
		var wg sync.WaitGroup
		for f := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := src.Create(ctx, engine.RootCred, engine.RootIno, fmt.Sprintf("f%d", f), engine.CreateGuarded, engine.SetAttr{}, 0)
				if err != nil {
					b.Error(err)
					return
				}
				buf := make([]byte, 1<<20)
				rng := rand.New(rand.NewPCG(uint64(f), 2))
				for off := int64(0); off < total/8; off += int64(len(buf)) {
					for i := 0; i+8 <= len(buf); i += 8 {
						v := rng.Uint64()
						for j := range 8 {
							buf[i+j] = byte(v >> (8 * j))
						}
					}
					if _, _, err := src.Write(ctx, engine.RootCred, c.Attr.Ino, uint64(off), buf); err != nil {
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
		el, cpu := timeInitialSync(b, ctx, a, d, src)
		mb := float64(total) / (1 << 20)
		b.ReportMetric(mb/el.Seconds(), "sync-MB/s")
		b.ReportMetric(el.Seconds(), "sync-s")
		b.ReportMetric(cpu.Seconds()/(mb/1024), "sync-cpu-s/GiB")
	}
}

// timeInitialSync creates the replica "dst" in d, starts the replication
// of src (file system "src" of a) into it and waits until it holds all of
// src: the wall time and the process's CPU time of the sync, with the
// benchmark's timer and profiles (startProfiles) covering only it.
func timeInitialSync(b *testing.B, ctx context.Context, a, d *diskRegion, src *engine.FS) (wall, cpu time.Duration) {
	b.Helper()
	if _, err := d.e.CreateReplica(ctx, "dst", "alias/aws/elasticfilesystem"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	stop := startProfiles(b)
	start, cpu0 := time.Now(), cpuTime()
	if err := d.n.AddInbound(InboundSpec{ID: "r", SourceRegion: a.name, DestFS: "dst"}); err != nil {
		b.Fatal(err)
	}
	if err := a.n.AddOutbound(OutboundSpec{ID: "r", SourceFS: "src", DestRegion: d.name, DestFS: "dst"}); err != nil {
		b.Fatal(err)
	}
	testkit.WaitFor(b, "initial sync", 10*time.Minute, func() bool {
		fs, _ := d.e.FS("dst")
		_, applied, _ := fs.Replica().Applied()
		return fs.Replica().Consistent() && applied == src.Replica().DurableSeq()
	})
	wall = time.Since(start)
	stop()
	return wall, cpuTime() - cpu0
}

// startProfiles starts what the environment asks for: a CPU profile
// (REGIONFS_BENCH_PROFILE) and an execution trace (REGIONFS_BENCH_TRACE,
// for go tool trace -pprof=sync|syscall|sched: where the sync waits). The
// returned function stops them.
func startProfiles(b *testing.B) (stop func()) {
	b.Helper()
	var stops []func()
	if p := os.Getenv("REGIONFS_BENCH_PROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
	}
	if p := os.Getenv("REGIONFS_BENCH_TRACE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := trace.Start(f); err != nil {
			b.Fatal(err)
		}
		stops = append(stops, func() { trace.Stop(); f.Close() })
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

// serveDiskPair serves the replication nodes of a and d, each the other's
// peer.
func serveDiskPair(a, d *diskRegion) {
	peers := map[string]Peer{a.name: {URL: "http://" + a.addr, Secret: testSecret}, d.name: {URL: "http://" + d.addr, Secret: testSecret}}
	for _, r := range []*diskRegion{a, d} {
		r.n = New(Options{Region: r.name, Engine: r.e, Peers: peers})
		go r.n.Serve(context.Background(), r.ln)
	}
}
