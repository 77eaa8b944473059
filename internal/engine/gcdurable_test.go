package engine

import (
	"bytes"
	"context"
	"math/rand/v2"
	"path"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// TestGCReleaseBeforeSync: a release queued at seq 0 (PromoteEmpty's
// replaceRange drops the replica's reference counts; purgeFS does the same)
// is not acted on before the commit that released the block is durable. A
// collection pass runs between the commit (visible) and its sync, and a
// crash image is taken right after it: every block that the image's
// reference counts name is still in the block store.
func TestGCReleaseBeforeSync(t *testing.T) {
	ctx := context.Background()
	mem := kv.NewMemory()
	memDisk := disk.NewMem()
	var (
		e      *Engine
		armed  atomic.Bool
		mu     sync.Mutex
		images []*kv.Memory
		disks  []*disk.Mem
	)
	capture := func() {
		if !armed.CompareAndSwap(true, false) {
			return
		}
		if _, err := e.CollectGarbage(ctx); err != nil {
			t.Errorf("collect: %v", err)
		}
		// The unlinks reach the disk (a later directory sync, or the
		// file system's own journal commit, before the crash).
		syncDirs(t, memDisk, ".")
		mu.Lock()
		defer mu.Unlock()
		images = append(images, mem.CrashClone())
		disks = append(disks, memDisk.CrashClone())
	}
	e = openCrashEngine(t, ctx, midKV{mem, capture}, memDisk)
	src := must(e.CreateFS(ctx, "src", FSOptions{BlockSize: MinBlockSize}))(t)
	r := &runner{t: t, rng: rand.New(rand.NewPCG(8, 9)), fs: func() *FS { return src }, m: newModel(), bs: MinBlockSize}
	for range 80 {
		r.do(ctx)
	}
	dst := must(e.CreateReplica(ctx, "dst", ""))(t)
	partialSync(t, ctx, mem, src, dst, relRef)
	if n := refBlocksPresent(t, ctx, mem, dst); n == 0 {
		t.Fatal("the replica holds no reference count")
	}
	_, srcEpoch := src.Mode()
	armed.Store(true)
	if _, err := dst.Replica().PromoteEmpty(ctx, srcEpoch); err != nil {
		t.Fatal(err)
	}
	e.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(images) != 1 {
		t.Fatalf("%d crash images, want 1", len(images))
	}
	ce := openCrashEngine(t, ctx, images[0], disks[0])
	defer ce.Close()
	refBlocksPresent(t, ctx, images[0], must(ce.FS("dst"))(t))
}

// refBlocksPresent fails unless every block that fs's reference counts
// name is in its block store, and returns how many there are.
func refBlocksPresent(t *testing.T, ctx context.Context, store kv.Reader, fs *FS) int {
	t.Helper()
	n := 0
	for k := range fsKeys(t, store, fs.id) {
		if len(k) != 1+blocks.IDSize || k[0] != relRef {
			continue
		}
		id, err := blocks.IDFromBytes([]byte(k[1:]))
		if err != nil {
			t.Fatal(err)
		}
		ok, err := fs.dom.blockStore().Has(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			mode, _ := fs.Mode()
			t.Fatalf("%v %s: block %s of a reference count is gone", mode, fs.name, id)
		}
		n++
	}
	return n
}

// syncDirs syncs dir and every directory under it.
func syncDirs(t *testing.T, m *disk.Mem, dir string) {
	t.Helper()
	ents, err := m.ReadDir(dir)
	if err != nil {
		t.Error(err)
		return
	}
	for _, ent := range ents {
		if ent.IsDir() {
			syncDirs(t, m, path.Join(dir, ent.Name()))
		}
	}
	if err := m.SyncDir(dir); err != nil {
		t.Error(err)
	}
}

// holderIterKV calls hook before every iteration of a block's holders
// (the collector's held check) while armed.
type holderIterKV struct {
	kv.Store
	armed *atomic.Bool
	hook  func(lo []byte)
}

func (k holderIterKV) NewIter(lo, hi []byte) (kv.Iterator, error) {
	if k.armed.Load() && len(lo) > 0 && lo[0] == pfxHolder {
		k.hook(lo)
	}
	return k.Store.NewIter(lo, hi)
}

// TestGCHeldAfterLaterRelease: a collection pass takes a durable release
// of a block that a clone still holds; before the pass checks the holders,
// the clone commits the release of its own last reference, visible but not
// yet durable. The pass must not delete the block on the strength of the
// older release: a crash right after it brings the clone's reference back.
func TestGCHeldAfterLaterRelease(t *testing.T) {
	ctx := context.Background()
	mem := kv.NewMemory()
	memDisk := disk.NewMem()
	var armed atomic.Bool
	var e *Engine
	var clone *FS
	var released atomic.Int32
	hook := func(lo []byte) {
		// The clone's release of the block, as its transaction commits
		// it: holder gone, queue entry at a seq past its durable mark,
		// not synced.
		d := clone.dom
		var bid blocks.ID
		copy(bid[:], lo[len(lo)-len(bid):])
		b := mem.NewBatch()
		defer b.Close()
		b.Delete(holderKey(d.id, bid, clone.id))
		b.Set(gcKey(d.id, bid), gcEntry{fsid: clone.id, seq: clone.durable.Load() + 1}.encode())
		if err := b.Commit(false); err != nil {
			t.Error(err)
		}
		released.Add(1)
	}
	e = openCrashEngine(t, ctx, holderIterKV{mem, &armed, hook}, memDisk)
	src := must(e.CreateFS(ctx, "src", FSOptions{BlockSize: MinBlockSize}))(t)
	writeFile(t, src, RootIno, "f", pattern(3*MinBlockSize+100, 7))
	clone = must(e.Clone(ctx, "src", "clone"))(t)
	// Armed before the remove: the clone's end kicks the background
	// collector, whose pass may take the release before this one does.
	// Whichever pass checks the holders first meets the later release.
	armed.Store(true)
	must(src.Remove(ctx, RootCred, RootIno, "f"))(t)
	if _, err := e.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	armed.Store(false)
	if released.Load() == 0 {
		t.Fatal("the pass checked no holders")
	}
	syncDirs(t, memDisk, ".")
	image, dimage := mem.CrashClone(), memDisk.CrashClone()
	e.Close()
	ce := openCrashEngine(t, ctx, image, dimage)
	defer ce.Close()
	if n := refBlocksPresent(t, ctx, image, must(ce.FS("clone"))(t)); n == 0 {
		t.Fatal("the clone holds no reference count")
	}
}

// heldDoneKV calls hook once the collector's held check of a block has
// iterated its holders (its iterator closed), while armed.
type heldDoneKV struct {
	kv.Store
	armed *atomic.Bool
	hook  func()
}

func (k heldDoneKV) NewIter(lo, hi []byte) (kv.Iterator, error) {
	it, err := k.Store.NewIter(lo, hi)
	if err != nil || len(lo) == 0 || lo[0] != pfxHolder || !k.armed.CompareAndSwap(true, false) {
		return it, err
	}
	return heldDoneIter{it, k.hook}, nil
}

type heldDoneIter struct {
	kv.Iterator
	hook func()
}

func (it heldDoneIter) Close() error {
	err := it.Iterator.Close()
	it.hook()
	return err
}

// TestGCWriterBetweenHeldAndInflight: a writer that deduplicates against
// a released block (in flight, write, commit, out of flight) after the
// collector found the block without holders but before it looked at the
// blocks in flight must not lose the block: its reference is durable and
// acknowledged. The writer runs right after the held check; when the
// check is made under the domain's lock (as the in-flight check is), it
// waits for the pass and writes the block again.
func TestGCWriterBetweenHeldAndInflight(t *testing.T) {
	ctx := context.Background()
	mem := kv.NewMemory()
	var armed atomic.Bool
	var src *FS
	data := pattern(2*MinBlockSize, 5)
	done := make(chan struct{})
	write := func() {
		defer close(done)
		ino, err := src.Create(ctx, RootCred, RootIno, "g", CreateGuarded, SetAttr{}, 0)
		if err != nil {
			t.Error(err)
			return
		}
		if _, _, err := src.Write(ctx, RootCred, ino.Attr.Ino, 0, data); err != nil {
			t.Error(err)
		}
	}
	hook := func() {
		if src.dom.mu.TryLock() {
			// The collector holds nothing: the writer comes and goes
			// between its checks.
			src.dom.mu.Unlock()
			write()
			return
		}
		go write()
	}
	e := openCrashEngine(t, ctx, heldDoneKV{mem, &armed, hook}, disk.NewMem())
	defer e.Close()
	src = must(e.CreateFS(ctx, "src", FSOptions{BlockSize: MinBlockSize}))(t)
	writeFile(t, src, RootIno, "f", data)
	must(src.Remove(ctx, RootCred, RootIno, "f"))(t)
	armed.Store(true)
	if _, err := e.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	if armed.Load() {
		t.Fatal("the pass checked no holders")
	}
	<-done
	if n := refBlocksPresent(t, ctx, mem, src); n == 0 {
		t.Fatal("the file system holds no reference count")
	}
	ino := must(src.Lookup(ctx, RootCred, RootIno, "g"))(t).Ino
	if got := readAll(t, src, ino); !bytes.Equal(got, data) {
		t.Fatal("g reads back other data")
	}
}
