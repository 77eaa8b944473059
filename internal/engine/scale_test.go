package engine

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// Regression guards of issue 16's metadata-scale goals: counts, not
// timings (BenchmarkDurableOps and BenchmarkMetadataScale measure the
// time).

// TestGroupCommitSyncs: concurrent writers share syncs. In each round 32
// writers make one durable mkdir each; every sync of the store is held
// until all 32 operations are handed to the committer (a slow disk, made
// deterministic), so a committer that groups what arrives while a sync
// runs needs at most three syncs per round (the group that was syncing,
// the half of the writers committed while it syncs, see splitAt, and the
// one that gathered the rest), whatever the scheduling. It fails when a
// change commits operations one by one, or commits more than two groups
// while a sync is running, or writes a key a group rewrites (the
// directory's inode, the counters) once per operation instead of once per
// group; and it checks that every operation is durable when it is
// answered.
func TestGroupCommitSyncs(t *testing.T) {
	v := newEnv(t)
	fs := v.mkfs("fs")
	ctx := context.Background()
	base := must(fs.Mkdir(ctx, RootCred, RootIno, "base", SetAttr{}))(t).Attr.Ino
	const writers, rounds = 32, 8
	var (
		target atomic.Uint64 // hold syncs until Stats().Queued reaches it
		syncs  atomic.Int64
	)
	target.Store(0)
	v.kv.SetSyncHook(func() {
		syncs.Add(1)
		deadline := time.Now().Add(10 * time.Second)
		for fs.Stats().Queued < target.Load() {
			if time.Now().After(deadline) {
				t.Errorf("the committer holds %d operations, want %d within 10 s", fs.Stats().Queued, target.Load())
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
	})
	defer v.kv.SetSyncHook(nil)
	for r := range rounds {
		target.Store(fs.Stats().Queued + writers)
		syncs.Store(0)
		written := v.kv.Written()
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("r%d-w%d", r, w)
				if _, err := fs.Mkdir(ctx, RootCred, base, name, SetAttr{}); err != nil {
					t.Error(err)
					return
				}
				// Acknowledged: it is in what a crash leaves now.
				img := v.kv.CrashClone()
				if _, err := img.Get(absKey(fs.id, dentryKey(base, name))); err != nil {
					t.Errorf("mkdir %s answered but not durable: %v", name, err)
				}
			}()
		}
		wg.Wait()
		if n := syncs.Load(); n > 3 {
			t.Errorf("round %d: %d writers' mkdirs took %d syncs, want at most 3", r, writers, n)
		}
		// Each mkdir writes its inode, its dentry, its readdir order key
		// and its journal record; the directory's inode and the file
		// system's counters are written once per group (at most three),
		// not once per mkdir (224 writes a round when they were).
		if n := v.kv.Written() - written; n > 4*writers+12 {
			t.Errorf("round %d: %d writers' mkdirs wrote %d keys, want at most %d", r, writers, n, 4*writers+12)
		}
	}
}

// countingStore counts the keys a reader visits: iterator positions on a
// key and point reads.
type countingStore struct {
	kv.Store
	steps, gets atomic.Int64
}

func (c *countingStore) Get(key []byte) ([]byte, error) {
	c.gets.Add(1)
	return c.Store.Get(key)
}

func (c *countingStore) NewIter(lo, hi []byte) (kv.Iterator, error) {
	it, err := c.Store.NewIter(lo, hi)
	if err != nil {
		return nil, err
	}
	return &countingIter{Iterator: it, n: &c.steps}, nil
}

func (c *countingStore) NewSnapshot() kv.Snapshot {
	return &countingSnap{Snapshot: c.Store.NewSnapshot(), c: c}
}

type countingSnap struct {
	kv.Snapshot
	c *countingStore
}

func (s *countingSnap) Get(key []byte) ([]byte, error) {
	s.c.gets.Add(1)
	return s.Snapshot.Get(key)
}

func (s *countingSnap) NewIter(lo, hi []byte) (kv.Iterator, error) {
	it, err := s.Snapshot.NewIter(lo, hi)
	if err != nil {
		return nil, err
	}
	return &countingIter{Iterator: it, n: &s.c.steps}, nil
}

type countingIter struct {
	kv.Iterator
	n *atomic.Int64
}

func (it *countingIter) count(ok bool) bool {
	if ok {
		it.n.Add(1)
	}
	return ok
}

func (it *countingIter) First() bool          { return it.count(it.Iterator.First()) }
func (it *countingIter) Last() bool           { return it.count(it.Iterator.Last()) }
func (it *countingIter) Next() bool           { return it.count(it.Iterator.Next()) }
func (it *countingIter) Prev() bool           { return it.count(it.Iterator.Prev()) }
func (it *countingIter) SeekGE(k []byte) bool { return it.count(it.Iterator.SeekGE(k)) }
func (it *countingIter) SeekLT(k []byte) bool { return it.count(it.Iterator.SeekLT(k)) }

func (c *countingStore) counts() (int64, int64) { return c.steps.Load(), c.gets.Load() }

// TestReadDirPageCost: a page of a large directory reads the same number
// of keys wherever its cookie is — the page's entries (and their inodes
// with attributes), never the entries before the cookie. It fails when a
// listing starts scanning from the directory's start, or reads more than
// a constant beyond its page.
func TestReadDirPageCost(t *testing.T) {
	cs := &countingStore{Store: kv.NewMemory()}
	ctx := context.Background()
	e, err := Open(ctx, Options{
		KV: cs, Disk: disk.NewMem(), GCInterval: time.Hour, MergeDelay: time.Hour,
		OnFatal: func(err error) { t.Errorf("fatal storage error: %v", err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	fs, err := e.CreateFS(ctx, "fs", FSOptions{BlockSize: MinBlockSize})
	if err != nil {
		t.Fatal(err)
	}
	dir := must(fs.Mkdir(ctx, RootCred, RootIno, "big", SetAttr{}))(t).Attr.Ino
	const entries, page = 5000, 100
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < entries; i += 16 {
				if _, err := fs.Create(ctx, RootCred, dir, fmt.Sprintf("f%05d", i), CreateGuarded, SetAttr{}, 0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// The cookies where pages start: the start, the middle, the last page.
	all, eof, _, err := fs.ReadDir(ctx, RootCred, dir, 0, entries+1, false)
	if err != nil || !eof || len(all) != entries {
		t.Fatalf("listing: %d entries, eof %v, %v", len(all), eof, err)
	}
	for _, plus := range []bool{false, true} {
		for _, at := range []int{0, entries / 2, entries - page} {
			cookie := uint64(0)
			if at > 0 {
				cookie = all[at-1].Cookie
			}
			s0, g0 := cs.counts()
			ents, _, _, err := fs.ReadDir(ctx, RootCred, dir, cookie, page, plus)
			s1, g1 := cs.counts()
			if err != nil || len(ents) != page || ents[0].Name != all[at].Name {
				t.Fatalf("page at %d: %d entries, %v", at, len(ents), err)
			}
			// The page's keys, one more to learn it is not the last, the
			// directory's inode; with plus one inode per entry.
			wantSteps, wantGets := int64(page+1), int64(1)
			if plus {
				wantGets += page
			}
			if s, g := s1-s0, g1-g0; s > wantSteps || g > wantGets {
				t.Errorf("page of %d (plus %v) after entry %d of %d visited %d keys and read %d, want at most %d and %d",
					page, plus, at, entries, s, g, wantSteps, wantGets)
			}
		}
	}
}

// TestDurableWriteSyncs is the syncs-per-write regression guard of issue
// 16 (a count, not a timing; BenchmarkSequentialWrite measures the time):
// a durable 1 MiB write of a whole block costs one fsync of its block
// file, one of the block's directory entry and one journal sync, also
// on a new file system whose blocks land in directories no block used
// yet (the fan-out directories exist from the start). It fails when a
// change adds a sync to this path, and checks that each write is durable,
// block and name, when it returns.
func TestDurableWriteSyncs(t *testing.T) {
	v := newEnv(t)
	fa := disk.NewFaulty(v.disk)
	o := v.opts
	o.KV, o.Disk = v.kv, fa
	v.e.Close()
	e, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	v.e = e
	ctx := context.Background()
	fs, err := e.CreateFS(ctx, "fs", FSOptions{BlockSize: DefaultBlockSize})
	if err != nil {
		t.Fatal(err)
	}
	ino := must(fs.Create(ctx, RootCred, RootIno, "big", CreateGuarded, SetAttr{}, 0))(t).Attr.Ino
	var kvSyncs atomic.Int64
	v.kv.SetSyncHook(func() { kvSyncs.Add(1) })
	defer v.kv.SetSyncHook(nil)
	chunk := make([]byte, DefaultBlockSize)
	const writes = 32
	for i := range writes {
		binaryFill(chunk, uint64(i))
		syncs, dirSyncs, journal := fa.Count(disk.OpSync), fa.Count(disk.OpSyncDir), kvSyncs.Load()
		if _, _, err := fs.Write(ctx, RootCred, ino, uint64(i)*DefaultBlockSize, chunk); err != nil {
			t.Fatal(err)
		}
		s, d, j := fa.Count(disk.OpSync)-syncs, fa.Count(disk.OpSyncDir)-dirSyncs, kvSyncs.Load()-journal
		if s != 1 || d != 1 || j != 1 {
			t.Errorf("durable 1 MiB write %d: %d block file syncs, %d directory syncs, %d journal syncs; want 1, 1, 1", i, s, d, j)
		}
	}
	// What a crash leaves now holds every write.
	k, dd := v.kv.CrashClone(), v.disk.CrashClone()
	o.KV, o.Disk = k, dd
	e2, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	fs2, err := e2.FS("fs")
	if err != nil {
		t.Fatal(err)
	}
	for i := range writes {
		binaryFill(chunk, uint64(i))
		got, _, _, err := fs2.Read(ctx, RootCred, ino, uint64(i)*DefaultBlockSize, DefaultBlockSize)
		if err != nil || !bytes.Equal(got, chunk) {
			t.Fatalf("write %d after a crash: %d bytes, %v", i, len(got), err)
		}
	}
}

// TestSplitAt: a group is split in halves only with enough submitters and
// syncs shorter than a whole group's work.
func TestSplitAt(t *testing.T) {
	const maxGroup = 256
	for _, c := range []struct {
		writers    int
		work, sync time.Duration
		want       int
	}{
		{1, 20 * time.Microsecond, 0, maxGroup},
		{8, 20 * time.Microsecond, 100 * time.Microsecond, maxGroup},
		{minSplitWriters - 1, 20 * time.Microsecond, 100 * time.Microsecond, maxGroup},
		{minSplitWriters, 20 * time.Microsecond, 100 * time.Microsecond, minSplitWriters / 2},
		{32, 20 * time.Microsecond, 300 * time.Microsecond, 16},
		{33, 20 * time.Microsecond, 0, 17},
		{32, 20 * time.Microsecond, 640 * time.Microsecond, maxGroup}, // the sync takes as long as the group's work
		{32, 20 * time.Microsecond, 2 * time.Millisecond, maxGroup},
	} {
		if got := splitAt(c.writers, maxGroup, c.work, c.sync); got != c.want {
			t.Errorf("splitAt(%d writers, work %v, sync %v) = %d, want %d", c.writers, c.work, c.sync, got, c.want)
		}
	}
}
