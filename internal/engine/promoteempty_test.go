package engine

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// fsKeys returns the relative keys (and values) a file system holds.
func fsKeys(t testing.TB, store kv.Reader, fsid uint64) map[string]string {
	t.Helper()
	p := fsPrefix(fsid)
	out := map[string]string{}
	if err := kv.Scan(store, p, upper(p), func(k, v []byte) error {
		out[string(k[len(p):])] = string(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// relTags returns the sorted set of relative keys of a dump, the values
// left out (a fresh file system's keys, whatever its times and keys).
func relKeySet(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// partialSync ingests the source's keys one chunk at a time into a new
// replica until it holds a key with the tag upTo (0: one chunk), and
// fails if the sync finishes first.
func partialSync(t *testing.T, ctx context.Context, store kv.Reader, src, dst *FS, upTo byte) {
	t.Helper()
	s := &syncer{t: t, src: src, dst: dst, chunkKeys: 3, snapEvery: 1}
	for {
		if s.run(ctx, 1, nil) {
			t.Fatal("the initial sync finished")
		}
		if upTo == 0 {
			return
		}
		for k := range fsKeys(t, store, dst.id) {
			if k[0] == upTo {
				return
			}
		}
	}
}

// midKV takes crash images while a commit's batch is written and not
// yet synced (capture), besides after every synced commit (hookKV).
type midKV struct {
	kv.Store
	capture func()
}

func (m midKV) NewBatch() kv.Batch { return midBatch{hookBatch{m.Store.NewBatch(), m.capture}} }

type midBatch struct{ hookBatch }

func (b midBatch) CommitAsync() (func() error, error) {
	wait, err := b.hookBatch.CommitAsync()
	if err == nil {
		b.hook()
	}
	return wait, err
}

// checkEmptyPrimary fails unless fs is a writable primary at epoch that
// holds what a new file system holds (an empty root, the keys of fresh)
// and nothing else, and passes fsck.
func checkEmptyPrimary(t *testing.T, ctx context.Context, e *Engine, fs *FS, epoch uint64, fresh []string) {
	t.Helper()
	if mode, ep := fs.Mode(); mode != ModePrimary || ep != epoch {
		t.Fatalf("mode %v epoch %d, want a primary at %d", mode, ep, epoch)
	}
	if got := relKeySet(fsKeys(t, e.kv, fs.id)); !slices.Equal(got, fresh) {
		t.Fatalf("keys %q, want a new file system's %q", got, fresh)
	}
	dump, err := dumpFS(ctx, fs)
	if err != nil {
		t.Fatal(err)
	}
	if len(dump) != 1 {
		t.Fatalf("tree %v, want an empty root", dump)
	}
	if u := must(fs.Usage())(t); u.Files != 1 || u.Bytes != 0 {
		t.Fatalf("usage %+v, want the root only", u)
	}
	if h := must(fs.Replica().EpochHistory())(t); len(h) != 1 || h[0].Epoch != epoch {
		t.Fatalf("epoch history %+v, want one epoch %d", h, epoch)
	}
	if err := fs.Replica().Verify(ctx, true); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

// TestPromoteEmpty: a replica without a consistent state (a new one, an
// initial sync stopped among the inodes or past the reference counts) is
// refused by Promote (ErrNotReady) and becomes, with
// PromoteEmpty, a writable file system holding exactly what a new one
// holds, at an epoch above its source's, across a restart; the blocks its
// ingested reference counts named go to the collector. A replica with a
// consistent state is refused and keeps it ("consistent"), and
// so is one being resynced.
func TestPromoteEmpty(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		prep func(t *testing.T, store kv.Reader, src, dst *FS)
	}{
		{"new", func(t *testing.T, store kv.Reader, src, dst *FS) {}},
		{"inodes", func(t *testing.T, store kv.Reader, src, dst *FS) { partialSync(t, ctx, store, src, dst, 0) }},
		{"refs", func(t *testing.T, store kv.Reader, src, dst *FS) { partialSync(t, ctx, store, src, dst, relRef) }},
		// A resync of an initial sync past the superblock: nothing
		// consistent to put back (AbandonResync: ErrNoState), so it is
		// promoted empty like the initial sync.
		{"resync-of-initial-sync", func(t *testing.T, store kv.Reader, src, dst *FS) {
			partialSync(t, ctx, store, src, dst, relRef)
			if err := dst.Replica().BeginResync(ctx, nil); err != nil {
				t.Fatal(err)
			}
			_, err := dst.Replica().AbandonResync(ctx, 0)
			wantErr(t, err, ErrNoState)
		}},
		{"resync", func(t *testing.T, store kv.Reader, src, dst *FS) {
			s := &syncer{t: t, src: src, dst: dst, chunkKeys: 50, snapEvery: 2}
			s.run(ctx, 0, nil)
			caughtUpEqual(t, ctx, src, dst)
			if err := dst.Replica().BeginResync(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t, modelOpts)
			must(v.e.CreateFS(ctx, "src", FSOptions{BlockSize: MinBlockSize}))(t)
			src := func() *FS { return v.fs("src") }
			r := &runner{t: t, rng: rand.New(rand.NewPCG(5, 9)), fs: src, m: newModel(), bs: MinBlockSize}
			for range 80 {
				r.do(ctx)
			}
			fresh := relKeySet(fsKeys(t, v.e.kv, v.mkfs("fresh").id))
			must(v.e.CreateReplica(ctx, "dst", "alias/aws/elasticfilesystem"))(t)
			dst := func() *FS { return v.fs("dst") }
			tc.prep(t, v.e.kv, src(), dst())
			var refs []blocks.ID
			for k := range fsKeys(t, v.e.kv, dst().id) {
				if len(k) == 1+blocks.IDSize && k[0] == relRef {
					refs = append(refs, must(blocks.IDFromBytes([]byte(k[1:])))(t))
				}
			}
			if tc.name == "refs" && len(refs) == 0 {
				t.Fatal("the partial sync holds no reference count")
			}
			_, err := dst().Replica().Promote(ctx)
			wantErr(t, err, ErrNotReady)
			_, srcEpoch := src().Mode()
			if tc.name == "resync" {
				// Its earlier state is not discarded: refused, unchanged.
				before := fsKeys(t, v.e.kv, dst().id)
				_, err := dst().Replica().PromoteEmpty(ctx, srcEpoch)
				wantErr(t, err, ErrNotReady)
				if after := fsKeys(t, v.e.kv, dst().id); fmt.Sprint(after) != fmt.Sprint(before) {
					t.Fatal("a refused empty promotion changed the resynced replica")
				}
				return
			}
			rp, err := dst().Replica().PromoteEmpty(ctx, srcEpoch)
			if err != nil {
				t.Fatal(err)
			}
			if !rp.Empty || rp.Seq != 0 || rp.NewEpoch <= srcEpoch || rp.NewEpoch < 2 {
				t.Fatalf("recovery point %+v, want an empty one at an epoch above the source's %d", rp, srcEpoch)
			}
			checkEmptyPrimary(t, ctx, v.e, dst(), rp.NewEpoch, fresh)
			_, err = dst().Replica().Promote(ctx)
			wantErr(t, err, ErrNotReplica)
			_, err = dst().Replica().PromoteEmpty(ctx, 0)
			wantErr(t, err, ErrNotReplica)
			// Writable, and durable across a restart.
			ent := must(dst().Create(ctx, RootCred, RootIno, "after", CreateUnchecked, SetAttr{}, 0))(t)
			data := bytes.Repeat([]byte("x"), 3*MinBlockSize)
			if _, _, err := dst().Write(ctx, RootCred, ent.Attr.Ino, 0, data); err != nil {
				t.Fatal(err)
			}
			v.crash()
			if mode, ep := dst().Mode(); mode != ModePrimary || ep != rp.NewEpoch {
				t.Fatalf("after a restart: mode %v epoch %d", mode, ep)
			}
			got, _, _, err := dst().Read(ctx, RootCred, ent.Attr.Ino, 0, len(data)+1)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read after a restart: %d bytes, %v", len(got), err)
			}
			if err := dst().Replica().Verify(ctx, true); err != nil {
				t.Fatal(err)
			}
			// The blocks of the discarded reference counts are collected.
			must(v.e.CollectGarbage(ctx))(t)
			for _, id := range refs {
				if must(dst().dom.blockStore().Has(ctx, id))(t) {
					t.Fatalf("block %s of a discarded reference count is still there after a collection", id)
				}
			}
			// The source is untouched.
			if d := diffDumps(r.m.dump(), must(dumpFS(ctx, src()))(t)); d != "" {
				t.Fatalf("source changed:\n%s", d)
			}
		})
	}
	t.Run("consistent", func(t *testing.T) {
		v := newEnv(t, modelOpts)
		src := v.mkfs("src")
		r := &runner{t: t, rng: rand.New(rand.NewPCG(6, 9)), fs: func() *FS { return v.fs("src") }, m: newModel(), bs: MinBlockSize}
		for range 30 {
			r.do(ctx)
		}
		dst := must(v.e.CreateReplica(ctx, "dst", ""))(t)
		(&syncer{t: t, src: src, dst: dst, chunkKeys: 1 << 20, snapEvery: 1}).run(ctx, 0, nil)
		caughtUpEqual(t, ctx, src, dst)
		before := fsKeys(t, v.e.kv, dst.id)
		_, err := dst.Replica().PromoteEmpty(ctx, 0)
		wantErr(t, err, ErrInvalid)
		if mode, _ := dst.Mode(); mode != ModeReplica {
			t.Fatalf("mode %v after a refused PromoteEmpty", mode)
		}
		if after := fsKeys(t, v.e.kv, dst.id); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatal("a refused PromoteEmpty changed the replica")
		}
		if rp, err := dst.Replica().Promote(ctx); err != nil || rp.Empty {
			t.Fatalf("promote after a refused PromoteEmpty: %+v %v", rp, err)
		}
	})
}

// TestCrashPromoteEmpty: crash images taken at every synced commit, block
// file operation and directory sync while a replica whose initial sync
// stopped past its reference counts is promoted empty, on Pebble over its
// crashable VFS (some keeping part of what was not synced), hold either
// the replica as it was (keys unchanged, still a replica, and promotable
// empty after the restart) or the new empty file system, never a mix.
func TestCrashPromoteEmpty(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(77, 1))
	pmem := vfs.NewCrashableMem()
	memDisk := disk.NewMem()
	type point struct {
		fs   *vfs.MemFS
		disk *disk.Mem
	}
	var (
		mu     sync.Mutex
		points []point
		armed  atomic.Bool
	)
	capture := func() {
		if !armed.Load() {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		// Images keeping from none to all of what was not synced.
		for i := range 6 {
			img := pmem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: i * 20, RNG: rand.New(rand.NewPCG(rng.Uint64(), 1))})
			points = append(points, point{fs: img, disk: memDisk.CrashClone()})
		}
	}
	st := openPebble(t, pmem, "")
	e := openCrashEngine(t, ctx, midKV{st, capture}, hookDisk{memDisk, capture})
	src := must(e.CreateFS(ctx, "src", FSOptions{BlockSize: MinBlockSize}))(t)
	r := &runner{t: t, rng: rand.New(rand.NewPCG(8, 9)), fs: func() *FS { return src }, m: newModel(), bs: MinBlockSize}
	for range 80 {
		r.do(ctx)
	}
	freshFS := must(e.CreateFS(ctx, "fresh", FSOptions{}))(t)
	fresh := relKeySet(fsKeys(t, st, freshFS.id))
	dst := must(e.CreateReplica(ctx, "dst", ""))(t)
	partialSync(t, ctx, st, src, dst, relRef)
	before := fsKeys(t, st, dst.id)
	_, srcEpoch := src.Mode()
	armed.Store(true)
	capture() // before the reset
	rp, err := dst.Replica().PromoteEmpty(ctx, srcEpoch)
	if err != nil {
		t.Fatal(err)
	}
	capture() // after it
	armed.Store(false)
	e.Close()
	st.Close()
	var old, reset int
	for i, p := range points {
		ps := openPebble(t, p.fs, fmt.Sprintf("crash point %d: reopen pebble: ", i))
		e := openCrashEngine(t, ctx, ps, p.disk)
		fs := must(e.FS("dst"))(t)
		switch mode, _ := fs.Mode(); mode {
		case ModeReplica:
			old++
			if got := fsKeys(t, ps, fs.id); fmt.Sprint(got) != fmt.Sprint(before) {
				t.Fatalf("crash point %d: a replica whose keys changed (%d keys, had %d)", i, len(got), len(before))
			}
			if st := fs.Replica().SyncState(); !st.Active {
				t.Fatalf("crash point %d: sync state %+v, want the interrupted sync", i, st)
			}
			rp2, err := fs.Replica().PromoteEmpty(ctx, srcEpoch)
			if err != nil {
				t.Fatalf("crash point %d: promote empty after the restart: %v", i, err)
			}
			checkEmptyPrimary(t, ctx, e, fs, rp2.NewEpoch, fresh)
		case ModePrimary:
			reset++
			checkEmptyPrimary(t, ctx, e, fs, rp.NewEpoch, fresh)
		default:
			t.Fatalf("crash point %d: mode %v", i, mode)
		}
		if _, err := fs.Mkdir(ctx, RootCred, RootIno, "after-crash", SetAttr{}); err != nil {
			t.Fatalf("crash point %d: write after recovery: %v", i, err)
		}
		e.Close()
		ps.Close()
	}
	t.Logf("%d crash points: %d the old replica, %d the new file system", len(points), old, reset)
	if old == 0 || reset == 0 {
		t.Fatalf("crash points held %d old replicas and %d new file systems, want both", old, reset)
	}
}
