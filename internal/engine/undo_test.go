package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// differingRanges returns the ranges of n keys of snap (the first from the
// start, the last to the end) whose content differs on dst, filled with
// snap's keys: what a resync by range checksums sends.
func differingRanges(t *testing.T, ctx context.Context, snap *Snapshot, dst *FS, n int) []SyncRange {
	t.Helper()
	it := must(snap.Iter(nil, nil))(t)
	var bounds [][]byte
	i := 0
	for ok := it.First(); ok; ok = it.Next() {
		if i%n == 0 {
			bounds = append(bounds, bytes.Clone(it.Key()))
		}
		i++
	}
	it.Close()
	bounds[0] = nil
	var out []SyncRange
	for i, lo := range bounds {
		var hi []byte
		if i+1 < len(bounds) {
			hi = bounds[i+1]
		}
		if must(snap.Checksum(lo, hi))(t) == must(dst.Replica().RangeChecksum(ctx, lo, hi))(t) {
			continue
		}
		r := SyncRange{Lo: lo, Hi: hi}
		rit := must(snap.Iter(lo, hi))(t)
		for ok := rit.First(); ok; ok = rit.Next() {
			r.Pairs = append(r.Pairs, Mutation{Key: bytes.Clone(rit.Key()), Value: bytes.Clone(must(rit.Value())(t))})
		}
		rit.Close()
		out = append(out, r)
	}
	return out
}

// undoKeys counts the keys of fs's resync undo.
func undoKeys(t *testing.T, e *Engine, fs *FS) int {
	t.Helper()
	n := 0
	p := undoPrefix(fs.id)
	if err := kv.Scan(e.kv, p, upper(p), func(k, v []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.kv.Get(localKey(fs.id, locUndo)); err == nil {
		n++
	}
	return n
}

// checkRestored fails unless fs is a writable primary at an epoch above
// newer, holding exactly before (fsck with block reads included, before and
// after a collection pass).
func checkRestored(t *testing.T, ctx context.Context, e *Engine, fs *FS, before map[string]string, newer uint64) {
	t.Helper()
	if m, epoch := fs.Mode(); m != ModePrimary || epoch <= newer {
		t.Fatalf("after the abandon: mode %s at epoch %d, want a primary above epoch %d", m, epoch, newer)
	}
	if d := diffDumps(before, must(dumpFS(ctx, fs))(t)); d != "" {
		t.Fatalf("not the state from before the resync:\n%s", d)
	}
	if err := fs.Replica().Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fs.Replica().Verify(ctx, true); err != nil {
		t.Fatalf("after a collection pass: %v", err)
	}
	if n := undoKeys(t, e, fs); n != 0 {
		t.Fatalf("%d undo keys left", n)
	}
}

// TestAbandonResync: a failover of a file system in the middle of a
// failback (its resync's source lost: a second failure) used to be refused
// for ever (Promote and PromoteEmpty answer ErrNotReady while a resync
// replaces the state range by range). AbandonResync puts back exactly the
// state the file system held when BeginResync ran — never a mix of the two
// histories — with the blocks it references, and makes it a writable
// primary at an epoch above both histories'; a later failback still works.
func TestAbandonResync(t *testing.T) {
	for _, tc := range []struct {
		name   string
		keys   bool // by key sets (else by range checksums)
		reopen bool // restart in the middle of the resync
		again  bool // the resync begins a second time (a new pass)
	}{
		{name: "key-sets", keys: true},
		{name: "range-checksums"},
		{name: "reopen-in-the-middle", keys: true, reopen: true},
		{name: "begun-twice", again: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			v := newEnv(t, modelOpts)
			a, b, fork := diverge(t, ctx, v, 21, 40, 60)
			before := must(dumpFS(ctx, a))(t)
			lastBefore := a.Replica().DurableSeq()
			_, bEpoch := b.Mode()
			var keys [][]byte
			if tc.keys {
				keys = must(a.Replica().KeysTouched(ctx, fork+1, a.Replica().DurableSeq()))(t)
			}
			if err := a.Replica().BeginResync(ctx, keys); err != nil {
				t.Fatal(err)
			}
			if got := a.Replica().DurableSeq(); got != 0 {
				t.Errorf("durable seq %d after BeginResync, want 0 (the journal starts over)", got)
			}
			snap := must(b.Replica().Snapshot(ctx))(t)
			var ranges []SyncRange
			if tc.keys {
				ranges = keySetRanges(t, ctx, b, snap, fork, keys)
			} else {
				ranges = differingRanges(t, ctx, snap, a, 4)
			}
			if len(ranges) < 4 {
				t.Fatalf("only %d ranges differ", len(ranges))
			}
			half := len(ranges) / 2
			for _, r := range ranges[:half] {
				ingestRanges(t, ctx, b, a, snap, []SyncRange{r})
			}
			if tc.reopen {
				v.reopen()
				a, b = v.fs("a"), v.fs("b")
			}
			if tc.again {
				if err := a.Replica().BeginResync(ctx, nil); err != nil {
					t.Fatal(err)
				}
			}
			ingestRanges(t, ctx, b, a, snap, ranges[half:len(ranges)-1])
			snap.Close()
			// The source is lost here. Neither promotion can take a
			// state that is half replaced.
			if _, err := a.Replica().Promote(ctx); !errors.Is(err, ErrNotReady) {
				t.Fatalf("promote in the middle of a resync: %v", err)
			}
			if _, err := a.Replica().PromoteEmpty(ctx, bEpoch); !errors.Is(err, ErrNotReady) {
				t.Fatalf("promote empty in the middle of a resync: %v", err)
			}
			rp, err := a.Replica().AbandonResync(ctx, bEpoch)
			if err != nil {
				t.Fatal(err)
			}
			if !rp.Abandoned || rp.Empty || rp.Seq != lastBefore || rp.NewEpoch <= bEpoch {
				t.Fatalf("recovery point %+v; want abandoned at seq %d above epoch %d", rp, lastBefore, bEpoch)
			}
			if rp.Shared != 0 && rp.Shared != fork {
				t.Fatalf("shared seq %d, want the fork %d", rp.Shared, fork)
			}
			// The split point is recorded with the promotion: what a
			// control plane completing the failover after a restart
			// reads (it read the file system's own last seq, not
			// abandoned, before).
			if got, ok := a.Replica().Promoted(); !ok || got.Seq != rp.Seq || !got.Abandoned || got.Shared != rp.Shared {
				t.Fatalf("recorded recovery point %+v (%v), want %+v", got, ok, rp)
			}
			t.Logf("abandoned: %+v (fork %d)", rp, fork)
			if got := a.Replica().DurableSeq(); got != lastBefore {
				t.Fatalf("durable seq %d after the abandon, want %d", got, lastBefore)
			}
			checkRestored(t, ctx, v.e, a, before, bEpoch)
			hist := must(a.Replica().EpochHistory())(t)
			if top := hist[len(hist)-1]; top.Epoch != rp.NewEpoch || top.StartSeq != lastBefore+1 {
				t.Fatalf("epoch history %+v: want epoch %d from %d", hist, rp.NewEpoch, lastBefore+1)
			}
			// Writable, its journal going on from its own last seq; and
			// so after a restart.
			ent := must(a.Create(ctx, RootCred, RootIno, "after-abandon", CreateGuarded, SetAttr{}, 0))(t)
			if _, _, err := a.Write(ctx, RootCred, ent.Attr.Ino, 0, bytes.Repeat([]byte("z"), 3*MinBlockSize)); err != nil {
				t.Fatal(err)
			}
			if got := a.Replica().DurableSeq(); got <= lastBefore {
				t.Fatalf("durable seq %d after a write, want above %d", got, lastBefore)
			}
			v.reopen()
			a, b = v.fs("a"), v.fs("b")
			want := must(dumpFS(ctx, a))(t)
			delete(want, "/after-abandon")
			if d := diffDumps(before, want); d != "" {
				t.Fatalf("after a restart:\n%s", d)
			}
			if err := a.Replica().Verify(ctx, true); err != nil {
				t.Fatal(err)
			}
			// The failback can be tried again, by range checksums.
			if err := a.Replica().BeginResync(ctx, nil); err != nil {
				t.Fatal(err)
			}
			snap = must(b.Replica().Snapshot(ctx))(t)
			ingestRanges(t, ctx, b, a, snap, differingRanges(t, ctx, snap, a, 4))
			if err := a.Replica().FinishResync(ctx, snap.Seq, snap.Seq, snap.Epoch, snap.Time); err != nil {
				t.Fatal(err)
			}
			snap.Close()
			if n := undoKeys(t, v.e, a); n != 0 {
				t.Fatalf("%d undo keys left after the resync finished", n)
			}
			assertSame(t, ctx, b, a)
		})
	}
}

// TestAbandonResyncDuringReplay: a resync whose ranges come from snapshots
// up to a later seq than its base is consistent only once the records up
// to there are applied; until then the undo also saves what the records
// change, and an abandon still puts back the state from before. Once
// consistent, the undo is gone and the blocks only the old state held are
// released.
func TestAbandonResyncDuringReplay(t *testing.T) {
	for _, finish := range []bool{false, true} {
		t.Run(fmt.Sprintf("finish=%v", finish), func(t *testing.T) {
			ctx := context.Background()
			v := newEnv(t, modelOpts)
			a, b, _ := diverge(t, ctx, v, 22, 30, 30)
			before := must(dumpFS(ctx, a))(t)
			_, bEpoch := b.Mode()
			if err := a.Replica().BeginResync(ctx, nil); err != nil {
				t.Fatal(err)
			}
			snap := must(b.Replica().Snapshot(ctx))(t)
			ingestRanges(t, ctx, b, a, snap, differingRanges(t, ctx, snap, a, 4))
			base := snap.Seq
			snap.Close()
			for i := range 20 {
				must(b.Mkdir(ctx, RootCred, RootIno, fmt.Sprintf("later-%d", i), SetAttr{}))(t)
			}
			top := b.Replica().DurableSeq()
			if err := a.Replica().FinishResync(ctx, base, top, snap.Epoch, snap.Time); err != nil {
				t.Fatal(err)
			}
			if a.Replica().Consistent() {
				t.Fatal("consistent before the records up to the top are applied")
			}
			upTo := base + (top-base)/2
			if finish {
				upTo = top
			}
			// The blocks that only the undo keeps now.
			var onlyOld []blocks.ID
			p := undoKey(a.id, []byte{relRef})
			err := kv.Scan(v.e.kv, p, upper(p), func(k, val []byte) error {
				rel := k[len(undoPrefix(a.id)):]
				if _, err := v.e.kv.Get(absKey(a.id, rel)); errors.Is(err, kv.ErrNotFound) && val[0] == undoPresent {
					id, _ := refID(rel)
					onlyOld = append(onlyOld, id)
				}
				return nil
			})
			if err != nil || len(onlyOld) == 0 {
				t.Fatalf("%d blocks only the undo keeps: %v", len(onlyOld), err)
			}
			recs := must(b.Replica().ReadJournal(ctx, base+1, int(upTo-base), 1<<20))(t)
			ship(t, ctx, b, a, recs)
			if !finish {
				if _, err := a.Replica().Promote(ctx); !errors.Is(err, ErrNotReady) {
					t.Fatalf("promote before the top: %v", err)
				}
				if _, err := a.Replica().AbandonResync(ctx, bEpoch); err != nil {
					t.Fatal(err)
				}
				checkRestored(t, ctx, v.e, a, before, bEpoch)
				return
			}
			if n := undoKeys(t, v.e, a); n != 0 {
				t.Fatalf("%d undo keys left once consistent", n)
			}
			if _, err := a.Replica().AbandonResync(ctx, bEpoch); !errors.Is(err, ErrInvalid) {
				t.Fatalf("abandon of a finished resync: %v", err)
			}
			must(v.e.CollectGarbage(ctx))(t)
			for _, id := range onlyOld {
				if ok := must(a.dom.blockStore().Has(ctx, id))(t); ok {
					t.Errorf("block %s of the old state only is kept once the resync is done", id)
				}
			}
			assertSame(t, ctx, b, a)
		})
	}
}

// TestCrashAbandonResync takes crash images at every synced commit of a
// failback that is abandoned (or that finishes) — inside BeginResync, the
// ranges, the finish, the replay and the abandon — and checks each: the
// file system is either resumable or abandonable to exactly its state from
// before the resync, or that state itself, or (finished) consistent; fsck
// passes with block reads, and it takes writes afterwards.
func TestCrashAbandonResync(t *testing.T) {
	for _, finish := range []bool{false, true} {
		t.Run(fmt.Sprintf("finish=%v", finish), func(t *testing.T) {
			ctx := context.Background()
			v := newEnv(t, modelOpts)
			a, b, fork := diverge(t, ctx, v, 31, 40, 50)
			before := must(dumpFS(ctx, a))(t)
			_, bEpoch := b.Mode()
			type image struct {
				kv   *kv.Memory
				disk *disk.Mem
				step string
			}
			var (
				mu     sync.Mutex
				images []image
				step   = "begin"
			)
			v.kv.SetSyncHook(func() {
				mu.Lock()
				images = append(images, image{kv: v.kv.CrashClone(), disk: v.disk.CrashClone(), step: step})
				mu.Unlock()
			})
			at := func(s string) { mu.Lock(); step = s; mu.Unlock() }
			keys := must(a.Replica().KeysTouched(ctx, fork+1, a.Replica().DurableSeq()))(t)
			if err := a.Replica().BeginResync(ctx, keys); err != nil {
				t.Fatal(err)
			}
			at("ranges")
			snap := must(b.Replica().Snapshot(ctx))(t)
			ranges := keySetRanges(t, ctx, b, snap, fork, keys)
			for i := 0; i < len(ranges); i += 8 {
				ingestRanges(t, ctx, b, a, snap, ranges[i:min(i+8, len(ranges))])
			}
			if finish {
				at("finish")
				if err := a.Replica().FinishResync(ctx, snap.Seq, snap.Seq, snap.Epoch, snap.Time); err != nil {
					t.Fatal(err)
				}
				at("replay")
				must(b.Mkdir(ctx, RootCred, RootIno, "after-resync", SetAttr{}))(t)
				replayFrom(t, ctx, b, a, snap.Seq)
			} else {
				at("abandon")
				if _, err := a.Replica().AbandonResync(ctx, bEpoch); err != nil {
					t.Fatal(err)
				}
			}
			snap.Close()
			v.kv.SetSyncHook(nil)
			// The background collector's synced commits call the hook
			// too, possibly still in flight here.
			mu.Lock()
			imgs := images[:len(images):len(images)]
			mu.Unlock()
			if len(imgs) < 5 {
				t.Fatalf("only %d crash images", len(imgs))
			}
			counts := map[string]int{}
			for i, im := range imgs {
				o := v.opts
				o.KV, o.Disk = im.kv, im.disk
				e, err := Open(ctx, o)
				if err != nil {
					t.Fatalf("image %d (%s): open: %v", i, im.step, err)
				}
				fa, err := e.FS("a")
				if err != nil {
					e.Close()
					t.Fatalf("image %d (%s): %v", i, im.step, err)
				}
				m, _ := fa.Mode()
				outcome := "before"
				switch {
				case m == ModeReplica && fa.Replica().Consistent():
					outcome = "finished"
					if err := fa.Replica().Verify(ctx, true); err != nil {
						t.Fatalf("image %d (%s): finished resync: %v", i, im.step, err)
					}
					if n := undoKeys(t, e, fa); n != 0 {
						t.Fatalf("image %d (%s): %d undo keys left once consistent", i, im.step, n)
					}
				case m == ModeReplica:
					outcome = "abandoned"
					if _, err := fa.Replica().AbandonResync(ctx, bEpoch); err != nil {
						t.Fatalf("image %d (%s): abandon: %v", i, im.step, err)
					}
					fallthrough
				default:
					if rp, ok := fa.Replica().Promoted(); (im.step == "abandon" || outcome == "abandoned") && (!ok || !rp.Abandoned) {
						t.Fatalf("image %d (%s, %s): recorded recovery point %+v (%v), want the abandoned resync's", i, im.step, outcome, rp, ok)
					}
					if d := diffDumps(before, must(dumpFS(ctx, fa))(t)); d != "" {
						t.Fatalf("image %d (%s, %s): not the state from before the resync:\n%s", i, im.step, outcome, d)
					}
					if err := fa.Replica().Verify(ctx, true); err != nil {
						t.Fatalf("image %d (%s): %v", i, im.step, err)
					}
					if _, err := e.CollectGarbage(ctx); err != nil {
						t.Fatal(err)
					}
					if err := fa.Replica().Verify(ctx, true); err != nil {
						t.Fatalf("image %d (%s): after a collection: %v", i, im.step, err)
					}
					if m, _ := fa.Mode(); m == ModePrimary {
						if _, err := fa.Mkdir(ctx, RootCred, RootIno, "after-crash", SetAttr{}); err != nil {
							t.Fatalf("image %d (%s): write: %v", i, im.step, err)
						}
					}
				}
				counts[im.step+"→"+outcome]++
				e.Close()
			}
			t.Logf("%d crash images: %v", len(imgs), counts)
		})
	}
}
