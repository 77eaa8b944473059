package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/testkit"
)

// gatedStore holds the next batch commit at a gate once armed (holdNext),
// so that a test sees what the committer does while a group is being
// committed to the store.
type gatedStore struct {
	kv.Store
	mu    sync.Mutex
	armed chan struct{} // the gate of the next commit; nil: none
	all   []chan struct{}
	held  atomic.Int64 // commits waiting at a gate
}

// holdNext holds the next commit until release is called.
func (g *gatedStore) holdNext() (release func()) {
	gate := make(chan struct{})
	g.mu.Lock()
	g.armed = gate
	g.all = append(g.all, gate)
	g.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}

// releaseAll opens every gate (test cleanup).
func (g *gatedStore) releaseAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = nil
	for _, gate := range g.all {
		select {
		case <-gate:
		default:
			close(gate)
		}
	}
	g.all = nil
}

func (g *gatedStore) pass() {
	g.mu.Lock()
	gate := g.armed
	g.armed = nil
	g.mu.Unlock()
	if gate != nil {
		g.held.Add(1)
		<-gate
		g.held.Add(-1)
	}
}

func (g *gatedStore) NewBatch() kv.Batch { return &gatedBatch{Batch: g.Store.NewBatch(), g: g} }

type gatedBatch struct {
	kv.Batch
	g *gatedStore
}

func (b *gatedBatch) Commit(sync bool) error {
	b.g.pass()
	return b.Batch.Commit(sync)
}

func (b *gatedBatch) CommitAsync() (func() error, error) {
	b.g.pass()
	return kv.CommitAsync(b.Batch)
}

// pollUntil fails the test unless cond holds within 10 s.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: %s", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// TestCommitterRunsWhileGroupCommits is the guard of the applier (issue
// 16, counted, not timed): a group of client mutations that others wait
// behind is committed to the store (Pebble's WAL write and memtable
// apply: a third of the committer's time per mkdir at 32 writers) off the
// committer, which meanwhile runs the next operations over that group's
// writes. With one operation per group and the commit of mkdir a held,
// the mkdirs queued behind it must run: one of a's name (ErrExist: it
// reads the held group's dentry) and one of a new name (after a's inode,
// in a directory with a's link); none is answered before a's group is
// durable, and the file system ends as if they ran one by one.
func TestCommitterRunsWhileGroupCommits(t *testing.T) {
	g := &gatedStore{Store: kv.NewMemory()}
	ctx := context.Background()
	e, err := Open(ctx, Options{
		KV: g, Disk: disk.NewMem(), GCInterval: time.Hour, MergeDelay: time.Hour, MaxGroup: 1,
		OnFatal: func(err error) { t.Errorf("fatal storage error: %v", err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	t.Cleanup(g.releaseAll) // before e.Close: the committer may wait at a gate
	fs := must(e.CreateFS(ctx, "fs", FSOptions{BlockSize: MinBlockSize}))(t)
	base := must(fs.Mkdir(ctx, RootCred, RootIno, "base", SetAttr{}))(t).Attr.Ino
	type result struct {
		ent Entry
		err error
	}
	mkdir := func(name string) chan result {
		ch := make(chan result, 1)
		go func() {
			ent, err := fs.Mkdir(ctx, RootCred, base, name, SetAttr{})
			ch <- result{ent, err}
		}()
		return ch
	}

	// A lone mkdir, committed by the committer itself, held: the next
	// three queue behind it, in this order.
	releaseFirst := g.holdNext()
	first := mkdir("first")
	pollUntil(t, "the first mkdir's commit reaches the store", func() bool { return g.held.Load() == 1 })
	queued := fs.Stats().Queued
	a := mkdir("a")
	pollUntil(t, "mkdir a is queued", func() bool { return fs.Stats().Queued >= queued+1 })
	again := mkdir("a")
	pollUntil(t, "the second mkdir a is queued", func() bool { return fs.Stats().Queued >= queued+2 })
	b := mkdir("b")
	pollUntil(t, "mkdir b is queued", func() bool { return fs.Stats().Queued >= queued+3 })

	// a's group, with others queued behind it, goes to the applier,
	// whose commit of it is held.
	ran := fs.stats.ran.Load()
	releaseA := g.holdNext()
	releaseFirst()
	pollUntil(t, "the committer runs a, then the two mkdirs queued behind a's held commit", func() bool {
		return fs.stats.ran.Load() >= ran+3 && g.held.Load() == 1
	})
	if r := <-first; r.err != nil {
		t.Fatal(r.err)
	}
	select {
	case r := <-a:
		t.Fatalf("mkdir a answered before its group was durable: %v", r.err)
	case r := <-again:
		t.Fatalf("a mkdir was answered before the group it read was durable: %v", r.err)
	case r := <-b:
		t.Fatalf("a mkdir was answered before the group it read was durable: %v", r.err)
	default:
	}
	releaseA()
	ra, ragain, rb := <-a, <-again, <-b
	if ra.err != nil || rb.err != nil {
		t.Fatalf("mkdir a: %v, mkdir b: %v", ra.err, rb.err)
	}
	if !errors.Is(ragain.err, ErrExist) {
		t.Fatalf("second mkdir a: %v, want ErrExist", ragain.err)
	}
	if rb.ent.Attr.Ino <= ra.ent.Attr.Ino {
		t.Errorf("b got inode %d, a %d: b must be allocated after a", rb.ent.Attr.Ino, ra.ent.Attr.Ino)
	}
	if rb.ent.Dir.Before.Nlink != 4 || rb.ent.Dir.After.Nlink != 5 {
		t.Errorf("b's directory links %d -> %d, want 4 -> 5 (a's group counted)", rb.ent.Dir.Before.Nlink, rb.ent.Dir.After.Nlink)
	}
	if n := fs.stats.handed.Load(); n == 0 {
		t.Error("no group handed to the applier")
	}
	for name, want := range map[string]uint64{"a": ra.ent.Attr.Ino, "b": rb.ent.Attr.Ino} {
		got := must(fs.Lookup(ctx, RootCred, base, name))(t)
		if got.Ino != want {
			t.Errorf("lookup %s: inode %d, want %d", name, got.Ino, want)
		}
	}
}

// TestLoneWriterCommitsInline: a lone submitter's groups are committed by
// the committer itself, as before the applier (counted: no group handed
// over), and their syncs waited for and answered by it, not by the
// finisher (counted: every commit awaited), so that its wait has no
// extra goroutine hand-off (nothing runs during it anyway); 32 writers'
// groups are handed over (halves, or others queued), and once they are
// gone a lone one's are neither handed over nor left to the finisher
// again. Without the committer's own wait (create12) no group is
// awaited.
//
// The 32 writers' groups are handed over because a sync is held until
// every writer's mkdir is queued, and groups hold at most 4 operations
// (MaxGroup): a group then ends with others queued behind it, whatever
// the scheduling. Left to the scheduler, with one P (-test.cpu 1) the
// writers queue only while the committer waits, each wakes it (the
// committer runs next), and its wait for more lasts half a commit,
// microseconds on the in-memory store: its groups held one or two
// operations and ended with the queue empty, so it rightly committed
// them itself (nothing would have run during a hand-off), and the test
// failed in 33 of 40 runs.
func TestLoneWriterCommitsInline(t *testing.T) {
	v := newEnv(t, func(o *Options) { o.MaxGroup = 4 })
	fs := v.mkfs("fs")
	ctx := context.Background()
	base := must(fs.Mkdir(ctx, RootCred, RootIno, "base", SetAttr{}))(t).Attr.Ino
	awaited, commits := fs.stats.awaited.Load(), fs.stats.commits.Load()
	for i := range 100 {
		must(fs.Mkdir(ctx, RootCred, base, fmt.Sprint("lone", i), SetAttr{}))(t)
	}
	if n := fs.stats.handed.Load(); n != 0 {
		t.Errorf("a lone writer's 100 mkdirs: %d groups handed to the applier, want 0", n)
	}
	if a, c := fs.stats.awaited.Load()-awaited, fs.stats.commits.Load()-commits; a != c || c < 100 {
		t.Errorf("a lone writer's 100 mkdirs: %d of %d commits awaited by the committer, want all (at least 100)", a, c)
	}
	const writers = 32
	// Syncs wait until every writer's mkdir is queued or in a group.
	var hold atomic.Bool
	hold.Store(true)
	v.kv.SetSyncHook(func() {
		if !hold.Load() {
			return
		}
		if !testkit.Until(time.Minute, func() bool {
			return fs.stats.queued.Load()-fs.stats.answered.Load() >= writers
		}) {
			t.Error("the writers' mkdirs not all queued within a minute")
		}
		hold.Store(false)
	})
	defer v.kv.SetSyncHook(nil)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if _, err := fs.Mkdir(ctx, RootCred, base, fmt.Sprintf("w%d-%d", w, i), SetAttr{}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if fs.stats.handed.Load() == 0 {
		t.Error("32 writers' mkdirs: no group handed to the applier")
	}
	for i := range 80 {
		must(fs.Mkdir(ctx, RootCred, base, fmt.Sprint("again", i), SetAttr{}))(t)
	}
	handed := fs.stats.handed.Load()
	awaited, commits = fs.stats.awaited.Load(), fs.stats.commits.Load()
	for i := range 50 {
		must(fs.Mkdir(ctx, RootCred, base, fmt.Sprint("alone", i), SetAttr{}))(t)
	}
	if n := fs.stats.handed.Load() - handed; n != 0 {
		t.Errorf("a lone writer again: %d of 50 groups handed to the applier, want 0", n)
	}
	if a, c := fs.stats.awaited.Load()-awaited, fs.stats.commits.Load()-commits; a != c || c < 50 {
		t.Errorf("a lone writer again: %d of %d commits awaited by the committer, want all (at least 50)", a, c)
	}
}
