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
//
// The image is taken in the promotion's commit only: a collection pass
// commits too (releasesDurable, a synced Commit), and the background
// loop's pass, kicked by the partial sync's snapshots, could reach that
// commit after the arming. Its hook then ran a pass inside the pass,
// which waited for the collector's lock the loop held: the loop never
// ended, nor Close, which waits for it (the engine tests hit go test's
// 10-minute timeout under load). A pass with a synced commit now runs
// while armed, for certain; it hung before the hook was restricted
// (checked).
func TestGCReleaseBeforeSync(t *testing.T) {
	ctx := context.Background()
	mem := kv.NewMemory()
	memDisk := disk.NewMem()
	var (
		e      *Engine
		dst    *FS
		armed  atomic.Bool
		mu     sync.Mutex
		images []*kv.Memory
		disks  []*disk.Mem
		synced atomic.Int64 // synced Commits (a collection pass's)
	)
	capture := func(b kv.Batch) {
		if dst == nil || !promotedIn(b, dst) || !armed.CompareAndSwap(true, false) {
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
	e = openCrashEngine(t, ctx, asyncHookKV{mem, capture, &synced}, memDisk)
	src := must(e.CreateFS(ctx, "src", FSOptions{BlockSize: MinBlockSize}))(t)
	r := &runner{t: t, rng: rand.New(rand.NewPCG(8, 9)), fs: func() *FS { return src }, m: newModel(), bs: MinBlockSize}
	for range 80 {
		r.do(ctx)
	}
	replica := must(e.CreateReplica(ctx, "dst", ""))(t)
	partialSync(t, ctx, mem, src, replica, relRef)
	if n := refBlocksPresent(t, ctx, mem, replica); n == 0 {
		t.Fatal("the replica holds no reference count")
	}
	// A block of src released, for the pass below to take.
	ino := must(src.Create(ctx, RootCred, RootIno, "released", CreateGuarded, SetAttr{}, 0))(t).Attr.Ino
	for _, b := range []byte{1, 2} {
		if _, _, err := src.Write(ctx, RootCred, ino, 0, bytes.Repeat([]byte{b}, MinBlockSize)); err != nil {
			t.Fatal(err)
		}
	}
	_, srcEpoch := src.Mode()
	dst = replica
	armed.Store(true)
	before := synced.Load()
	if _, err := e.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	if synced.Load() == before {
		t.Fatal("no collection pass made its releases durable while armed: the test does not cover it")
	}
	if !armed.Load() {
		t.Fatal("a collection pass's commit took the crash image meant for the promotion's")
	}
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

// asyncHookKV calls hook with every batch committed with CommitAsync (the
// committers' commits) once it is visible, before its sync, and counts
// the synced Commits (the collector's, among others), which call no hook.
type asyncHookKV struct {
	kv.Store
	hook   func(kv.Batch)
	synced *atomic.Int64
}

func (h asyncHookKV) NewBatch() kv.Batch { return asyncHookBatch{h.Store.NewBatch(), h} }

type asyncHookBatch struct {
	kv.Batch
	h asyncHookKV
}

func (b asyncHookBatch) Commit(sync bool) error {
	err := b.Batch.Commit(sync)
	if err == nil && sync {
		b.h.synced.Add(1)
	}
	return err
}

func (b asyncHookBatch) CommitAsync() (func() error, error) {
	wait, err := kv.CommitAsync(b.Batch)
	if err == nil {
		b.h.hook(b.Batch)
	}
	return wait, err
}

// promotedIn reports whether the committed batch b leaves fs a primary
// (its mode key: local, never sealed).
func promotedIn(b kv.Batch, fs *FS) bool {
	v, err := b.Get(localKey(fs.id, locMode))
	if err != nil {
		return false
	}
	m, err := decodeMode(v)
	return err == nil && m.Mode == ModePrimary
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
		b.Set(gcKey(d.id, bid), d.releaseValue(clone.id, clone.durable.Load()+1))
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
	crashRefsPresent(t, ctx, e, mem, memDisk, "clone")
}

// crashRefsPresent closes e and opens what a crash right now would leave of
// its stores (the directories synced: the unlinks reached the disk), and
// fails unless the file system name holds reference counts and each names
// a block that is there.
func crashRefsPresent(t *testing.T, ctx context.Context, e *Engine, mem *kv.Memory, memDisk *disk.Mem, name string) {
	t.Helper()
	syncDirs(t, memDisk, ".")
	image, dimage := mem.CrashClone(), memDisk.CrashClone()
	e.Close()
	ce := openCrashEngine(t, ctx, image, dimage)
	defer ce.Close()
	if n := refBlocksPresent(t, ctx, image, must(ce.FS(name))(t)); n == 0 {
		t.Fatalf("%s holds no reference count", name)
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

// refIDs returns the blocks whose reference counts fs holds in store.
func refIDs(t *testing.T, store kv.Reader, fs *FS) []blocks.ID {
	t.Helper()
	var ids []blocks.ID
	for k := range fsKeys(t, store, fs.id) {
		if id, ok := refID([]byte(k)); ok {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		t.Fatal("the file system holds no reference count")
	}
	return ids
}

// releaseAtZero writes, as replaceRange does in a transaction (a replica's
// ingest, resync, RestartSync, PromoteEmpty; purgeFS alike), fs's release
// of block id at seq 0: its reference count and holder gone, the release
// queued. sync false leaves it visible and not durable, as a commit is
// before its sync.
func releaseAtZero(t *testing.T, store kv.Store, fs *FS, id blocks.ID, sync bool) {
	b := store.NewBatch()
	defer b.Close()
	b.Delete(absKey(fs.id, refKey(id)))
	b.Delete(holderKey(fs.dom.id, id, fs.id))
	b.Set(gcKey(fs.dom.id, id), fs.dom.releaseValue(fs.id, 0))
	if err := b.Commit(sync); err != nil {
		t.Error(err)
	}
}

// queueAtZero queues, durably, the releases at seq 0 of the blocks of ids
// by fs while fs holds them: the state that a file system which released
// them at seq 0 and referenced them again leaves (a reference adds a
// holder and leaves the queue alone).
func queueAtZero(t *testing.T, store kv.Store, fs *FS, ids []blocks.ID) {
	t.Helper()
	b := store.NewBatch()
	defer b.Close()
	for _, id := range ids {
		b.Set(gcKey(fs.dom.id, id), fs.dom.releaseValue(fs.id, 0))
	}
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
}

// TestGCReleaseAgainAtSeqZero: a block released at seq 0, referenced again
// and released at seq 0 again has written the same (fsid, seq) to its
// release queue entry twice. A collection pass that took the first release
// must still tell the second one from it:
//   - deleted: the second release commits (visible, not durable) between
//     the pass's scan and its holder check; the pass must leave the block,
//     which a crash right after it brings the reference back to;
//   - leaked: the second release commits (durable) after the holder check
//     found the block held and before the pass forgets the entries it took;
//     the pass must not forget the second one with the first, or no later
//     pass deletes the block.
func TestGCReleaseAgainAtSeqZero(t *testing.T) {
	ctx := context.Background()
	t.Run("deleted", func(t *testing.T) {
		mem := kv.NewMemory()
		memDisk := disk.NewMem()
		var armed atomic.Bool
		var fs *FS
		var (
			mu       sync.Mutex
			released = map[blocks.ID]bool{}
		)
		hook := func(lo []byte) {
			var id blocks.ID
			copy(id[:], lo[len(lo)-len(id):])
			mu.Lock()
			defer mu.Unlock()
			if !released[id] {
				released[id] = true
				releaseAtZero(t, mem, fs, id, false)
			}
		}
		e := openCrashEngine(t, ctx, holderIterKV{mem, &armed, hook}, memDisk)
		fs = must(e.CreateFS(ctx, "f", FSOptions{BlockSize: MinBlockSize}))(t)
		// Fewer blocks than a pass's batch: the pass ends with them.
		writeFile(t, fs, RootIno, "f", pattern(2*MinBlockSize, 3))
		queueAtZero(t, mem, fs, refIDs(t, mem, fs))
		armed.Store(true)
		if _, err := e.CollectGarbage(ctx); err != nil {
			t.Fatal(err)
		}
		armed.Store(false)
		mu.Lock()
		checked := len(released)
		mu.Unlock()
		if checked == 0 {
			t.Fatal("the pass checked no holders")
		}
		crashRefsPresent(t, ctx, e, mem, memDisk, "f")
	})
	t.Run("leaked", func(t *testing.T) {
		mem := kv.NewMemory()
		var armed atomic.Bool
		var fs *FS
		var id blocks.ID
		hook := func() { releaseAtZero(t, mem, fs, id, true) }
		e := openCrashEngine(t, ctx, heldDoneKV{mem, &armed, hook}, disk.NewMem())
		defer e.Close()
		fs = must(e.CreateFS(ctx, "f", FSOptions{BlockSize: MinBlockSize}))(t)
		writeFile(t, fs, RootIno, "f", pattern(MinBlockSize, 4))
		ids := refIDs(t, mem, fs)
		if len(ids) != 1 {
			t.Fatalf("%d blocks, want 1", len(ids))
		}
		id = ids[0]
		queueAtZero(t, mem, fs, ids)
		armed.Store(true)
		if _, err := e.CollectGarbage(ctx); err != nil {
			t.Fatal(err)
		}
		if armed.Load() {
			t.Fatal("the pass checked no holders")
		}
		st := fs.dom.blockStore()
		if !must(st.Has(ctx, id))(t) {
			t.Fatal("the pass deleted a block it found held")
		}
		if _, err := e.CollectGarbage(ctx); err != nil {
			t.Fatal(err)
		}
		if must(st.Has(ctx, id))(t) {
			t.Fatal("the block released again is still there after a later pass")
		}
	})
}

// TestFormat2ReleaseQueue: a store of format 2 opens (stamped 3) with the
// release queue entries it wrote (fsid ‖ seq, no tag), and the collector
// deletes their blocks.
func TestFormat2ReleaseQueue(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	fs := v.mkfs("f")
	writeFile(t, fs, RootIno, "f", pattern(2*MinBlockSize, 6))
	ids := refIDs(t, v.kv, fs)
	must(fs.Remove(ctx, RootCred, RootIno, "f"))(t)
	dom := fs.dom.id
	if err := v.e.Close(); err != nil {
		t.Fatal(err)
	}
	b := v.kv.NewBatch()
	n := 0
	err := kv.Scan(v.kv, gcPrefix(dom), upper(gcPrefix(dom)), func(k, val []byte) error {
		if len(val) != 24 {
			t.Errorf("release queue value of %d bytes, want 24", len(val))
		}
		b.Set(k, val[:16])
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(ids) {
		t.Fatalf("%d releases queued, want %d", n, len(ids))
	}
	b.Set(serverKey(srvFormat), encodeU64(2))
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	b.Close()
	v.open()
	if got := must(decodeU64(must(v.kv.Get(serverKey(srvFormat)))(t)))(t); got != FormatVersion {
		t.Fatalf("store of format 2 opened: format %d, want %d", got, FormatVersion)
	}
	if _, err := v.e.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	st := v.fs("f").dom.blockStore()
	for _, id := range ids {
		if must(st.Has(ctx, id))(t) {
			t.Fatalf("block %s of a format 2 release is still there", id)
		}
	}
}
