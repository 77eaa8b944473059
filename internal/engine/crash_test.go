package engine

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/engine/kv/pebblekv"
)

// hookDisk calls hook before every operation that can change what a crash
// leaves on disk.
type hookDisk struct {
	disk.FS
	hook func()
}

func (h hookDisk) Create(name string) (disk.File, error) {
	h.hook()
	f, err := h.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return hookFile{f, h.hook}, nil
}
func (h hookDisk) Rename(a, b string) error { h.hook(); return h.FS.Rename(a, b) }
func (h hookDisk) Remove(name string) error { h.hook(); return h.FS.Remove(name) }
func (h hookDisk) SyncDir(name string) error {
	h.hook()
	return h.FS.SyncDir(name)
}
func (h hookDisk) MkdirAll(name string) error { h.hook(); return h.FS.MkdirAll(name) }
func (h hookDisk) ReadDir(name string) ([]fs.DirEntry, error) {
	return h.FS.ReadDir(name)
}

type hookFile struct {
	disk.File
	hook func()
}

func (f hookFile) Write(p []byte) (int, error) { f.hook(); return f.File.Write(p) }
func (f hookFile) Sync() error                 { f.hook(); return f.File.Sync() }

// crashPoint is what a crash at one moment would leave, and how many
// operations had been acknowledged then.
type crashPoint struct {
	kvStore kv.Store
	disk    *disk.Mem
	acked   int
	where   string
}

// openCrashEngine opens an engine over store and d as the crash tests run
// it: the model's options, maintenance held back, a fatal error fails t.
func openCrashEngine(t *testing.T, ctx context.Context, store kv.Store, d disk.FS) *Engine {
	t.Helper()
	o := Options{
		KV: store, Disk: d,
		GCInterval: time.Hour, MergeDelay: time.Hour,
		OnFatal: func(err error) { t.Errorf("fatal: %v", err) },
	}
	modelOpts(&o)
	e, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestCrash runs the model's random sequences on the crashing disk and the
// in-memory KV, takes crash images at random moments (inside commits, block
// writes, renames and directory syncs), reopens each one and checks that
// the state equals the model after every acknowledged operation (and
// possibly the one in flight), that nothing is corrupt and that fsck
// passes.
func TestCrash(t *testing.T) {
	ctx := context.Background()
	seeds, steps, perSeed := 12, 150, 60
	if testing.Short() {
		seeds, steps, perSeed = 3, 80, 30
	}
	total := crashSeeds(t, 100, seeds, func(t *testing.T, seed uint64) int { return runCrashSeed(t, ctx, seed, steps, perSeed) })
	t.Logf("%d crash points checked", total)
	if !testing.Short() && total < 500 {
		t.Errorf("only %d crash points", total)
	}
}

// crashSeeds runs run as a subtest for each of n seeds from first and
// returns the crash points checked in all.
func crashSeeds(t *testing.T, first uint64, n int, run func(t *testing.T, seed uint64) int) int {
	total := 0
	for i := range n {
		seed := first + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Logf("seed %d", seed)
			total += run(t, seed)
		})
	}
	return total
}

// runModel creates file system "c" on e and applies steps random
// operations of seed to it and to the model, calling acked after each; it
// returns the model's state before the first and after every operation.
func runModel(t *testing.T, ctx context.Context, e *Engine, seed uint64, steps int, acked func()) []map[string]string {
	t.Helper()
	if _, err := e.CreateFS(ctx, "c", FSOptions{BlockSize: MinBlockSize}); err != nil {
		t.Fatal(err)
	}
	m := newModel()
	dumps := []map[string]string{m.dump()}
	r := &runner{t: t, rng: rand.New(rand.NewPCG(seed, 99)), fs: func() *FS { fs, _ := e.FS("c"); return fs }, m: m, bs: MinBlockSize}
	for range steps {
		r.do(ctx)
		dumps = append(dumps, m.dump())
		acked()
	}
	return dumps
}

func runCrashSeed(t *testing.T, ctx context.Context, seed uint64, steps, perSeed int) int {
	rng := rand.New(rand.NewPCG(seed, 7))
	memKV, memDisk := kv.NewMemory(), disk.NewMem()
	var (
		mu     sync.Mutex
		points []crashPoint
		acked  int
		events int
	)
	// Capture with a probability that spreads perSeed points over the run.
	capture := func(where string) {
		mu.Lock()
		defer mu.Unlock()
		events++
		if len(points) >= perSeed || rng.IntN(5) != 0 {
			return
		}
		points = append(points, crashPoint{kvStore: memKV.CrashClone(), disk: memDisk.CrashClone(), acked: acked, where: where})
	}
	memKV.SetSyncHook(func() { capture("kv commit") })
	e := openCrashEngine(t, ctx, memKV, hookDisk{memDisk, func() { capture("disk") }})
	defer e.Close()
	dumps := runModel(t, ctx, e, seed, steps, func() {
		mu.Lock()
		acked++
		mu.Unlock()
	})
	mu.Lock()
	pts := points
	mu.Unlock()
	for i, p := range pts {
		checkCrashPoint(t, ctx, p, dumps, i)
	}
	return len(pts)
}

func checkCrashPoint(t *testing.T, ctx context.Context, p crashPoint, dumps []map[string]string, i int) {
	t.Helper()
	o := Options{
		KV: p.kvStore, Disk: p.disk, GCInterval: time.Hour, MergeDelay: time.Hour,
		OnFatal: func(err error) { t.Errorf("fatal after crash: %v", err) },
	}
	modelOpts(&o)
	e, err := Open(ctx, o)
	if err != nil {
		t.Fatalf("crash point %d (%s, %d acked): open: %v", i, p.where, p.acked, err)
	}
	defer e.Close()
	fs, err := e.FS("c")
	if err != nil {
		if p.acked == 0 {
			return // crashed while the file system was being created
		}
		t.Fatalf("crash point %d: %v", i, err)
	}
	got, err := dumpFS(ctx, fs)
	if err != nil {
		t.Fatalf("crash point %d (%s, %d acked): %v", i, p.where, p.acked, err)
	}
	ok := false
	for k := p.acked; k <= p.acked+1 && k < len(dumps); k++ {
		if diffDumps(dumps[k], got) == "" {
			ok = true
			break
		}
	}
	if !ok {
		t.Fatalf("crash point %d (%s): state is not the model after %d or %d ops:\n%s", i, p.where, p.acked, p.acked+1, diffDumps(dumps[p.acked], got))
	}
	if err := fs.Replica().Verify(ctx, true); err != nil {
		t.Fatalf("crash point %d (%s): verify: %v", i, p.where, err)
	}
	// The engine must keep working after recovery.
	if _, err := fs.Mkdir(ctx, RootCred, RootIno, "after-crash", SetAttr{}); err != nil && err != ErrExist {
		t.Fatalf("crash point %d: write after recovery: %v", i, err)
	}
}

// hookKV calls hook after every synced commit of the wrapped store.
type hookKV struct {
	kv.Store
	hook func()
}

func (h hookKV) NewBatch() kv.Batch { return hookBatch{h.Store.NewBatch(), h.hook} }

type hookBatch struct {
	kv.Batch
	hook func()
}

func (b hookBatch) Commit(sync bool) error {
	err := b.Batch.Commit(sync)
	if err == nil && sync {
		b.hook()
	}
	return err
}

// CommitAsync keeps the wrapped store's pipelining; the hook runs once the
// sync is waited for.
func (b hookBatch) CommitAsync() (func() error, error) {
	wait, err := kv.CommitAsync(b.Batch)
	if err != nil {
		return nil, err
	}
	return func() error {
		err := wait()
		if err == nil {
			b.hook()
		}
		return err
	}, nil
}

// pebbleCrashImage is a crash image of pmem that keeps a random part of
// what was not synced.
func pebbleCrashImage(pmem *vfs.MemFS, rng *rand.Rand) *vfs.MemFS {
	return pmem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(60), RNG: rand.New(rand.NewPCG(rng.Uint64(), 1))})
}

// openPebble opens the crash tests' Pebble store on fs, with zeros ahead
// of the WAL as the server's; an error fails t, after what.
func openPebble(t *testing.T, fs vfs.FS, what string) *pebblekv.Store {
	t.Helper()
	st, err := pebblekv.Open("db", pebblekv.Options{FS: fs, CacheSizeBytes: 4 << 20, OverwriteWAL: true})
	if err != nil {
		t.Fatalf("%s%v", what, err)
	}
	return st
}

// TestCrashPebble runs the random sequences on Pebble over its crashable
// in-memory VFS together with the crashing block disk, so that "blocks
// before metadata" is checked against Pebble's real write-ahead log. Crash
// images keep a random part of what was not synced.
func TestCrashPebble(t *testing.T) {
	ctx := context.Background()
	seeds, steps, perSeed := 4, 100, 25
	if testing.Short() {
		seeds, steps, perSeed = 2, 60, 10
	}
	total := crashSeeds(t, 200, seeds, func(t *testing.T, seed uint64) int {
		rng := rand.New(rand.NewPCG(seed, 3))
		pmem := vfs.NewCrashableMem()
		memDisk := disk.NewMem()
		type pebblePoint struct {
			fs    *vfs.MemFS
			disk  *disk.Mem
			acked int
		}
		var (
			mu     sync.Mutex
			points []pebblePoint
			acked  int
		)
		capture := func() {
			mu.Lock()
			defer mu.Unlock()
			if len(points) >= perSeed || rng.IntN(6) != 0 {
				return
			}
			clone := pebbleCrashImage(pmem, rng)
			points = append(points, pebblePoint{fs: clone, disk: memDisk.CrashClone(), acked: acked})
		}
		st := openPebble(t, pmem, "")
		e := openCrashEngine(t, ctx, hookKV{st, capture}, hookDisk{memDisk, capture})
		dumps := runModel(t, ctx, e, seed, steps, func() {
			mu.Lock()
			acked++
			mu.Unlock()
		})
		e.Close()
		st.Close()
		for i, p := range points {
			ps := openPebble(t, p.fs, fmt.Sprintf("crash point %d: reopen pebble: ", i))
			checkCrashPoint(t, ctx, crashPoint{kvStore: ps, disk: p.disk, acked: p.acked, where: "pebble"}, dumps, i)
			ps.Close()
		}
		return len(points)
	})
	t.Logf("%d Pebble crash points checked", total)
}

// TestCrashPipelined: several writers create small files at once (CREATE,
// then the data, each acknowledged durable), so that the committer
// pipelines groups (the next commits while the previous syncs), on Pebble
// over its crashable VFS. Crash images taken at random moments, some kept
// with part of what was not synced, hold every file whose data was
// acknowledged before the image was taken, with its data, and pass fsck.
func TestCrashPipelined(t *testing.T) {
	ctx := context.Background()
	writers, files := 6, 60
	if testing.Short() {
		files = 25
	}
	rng := rand.New(rand.NewPCG(42, 1))
	pmem := vfs.NewCrashableMem()
	memDisk := disk.NewMem()
	type point struct {
		fs    *vfs.MemFS
		disk  *disk.Mem
		acked []string // files acknowledged before the image
	}
	var (
		mu     sync.Mutex
		points []point
		acked  []string
	)
	capture := func() {
		mu.Lock()
		defer mu.Unlock()
		if len(points) >= 40 || rng.IntN(4) != 0 {
			return
		}
		have := append([]string(nil), acked...)
		clone := pebbleCrashImage(pmem, rng)
		points = append(points, point{fs: clone, disk: memDisk.CrashClone(), acked: have})
	}
	st := openPebble(t, pmem, "")
	e := openCrashEngine(t, ctx, hookKV{st, capture}, hookDisk{memDisk, func() {}})
	fs, err := e.CreateFS(ctx, "c", FSOptions{BlockSize: MinBlockSize})
	if err != nil {
		t.Fatal(err)
	}
	content := func(name string) []byte { return fmt.Appendf(nil, "data of %s", name) }
	before := fs.Stats()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range files {
				name := fmt.Sprintf("w%d-%03d", w, i)
				ent, err := fs.Create(ctx, RootCred, RootIno, name, CreateGuarded, SetAttr{}, 0)
				if err != nil {
					t.Errorf("create %s: %v", name, err)
					return
				}
				if _, _, err := fs.Write(ctx, RootCred, ent.Attr.Ino, 0, content(name)); err != nil {
					t.Errorf("write %s: %v", name, err)
					return
				}
				mu.Lock()
				acked = append(acked, name)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	after := fs.Stats()
	t.Logf("%d files by %d writers: %d group commits, %d operations", writers*files, writers, after.Commits-before.Commits, after.GroupOps-before.GroupOps)
	e.Close()
	st.Close()
	if len(points) < 10 {
		t.Fatalf("only %d crash images", len(points))
	}
	for i, p := range points {
		ps := openPebble(t, p.fs, fmt.Sprintf("crash image %d: reopen pebble: ", i))
		o := Options{
			KV: ps, Disk: p.disk, GCInterval: time.Hour, MergeDelay: time.Hour,
			OnFatal: func(err error) { t.Errorf("fatal after crash: %v", err) },
		}
		modelOpts(&o)
		re, err := Open(ctx, o)
		if err != nil {
			t.Fatalf("crash image %d: open: %v", i, err)
		}
		rfs, err := re.FS("c")
		if err != nil {
			t.Fatalf("crash image %d: %v", i, err)
		}
		for _, name := range p.acked {
			a, err := rfs.Lookup(ctx, RootCred, RootIno, name)
			if err != nil {
				t.Fatalf("crash image %d (%d acknowledged): %s: %v", i, len(p.acked), name, err)
			}
			data, _, _, err := rfs.Read(ctx, RootCred, a.Ino, 0, 100)
			if err != nil || string(data) != string(content(name)) {
				t.Fatalf("crash image %d: %s reads %q, %v; want %q", i, name, data, err, content(name))
			}
		}
		if err := rfs.Replica().Verify(ctx, true); err != nil {
			t.Fatalf("crash image %d: verify: %v", i, err)
		}
		re.Close()
		ps.Close()
	}
	t.Logf("%d crash images checked", len(points))
}
