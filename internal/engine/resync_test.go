package engine

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// diverge builds the failback situation: a source and its replica agree up
// to fork F; the replica is promoted and both write on (the source's
// writes after F were never shipped). It returns the old source, the new
// primary and F.
func diverge(t *testing.T, ctx context.Context, v *env, seed uint64, lost, after int) (oldSrc, newPri *FS, fork uint64) {
	t.Helper()
	src := must(v.e.CreateFS(ctx, "a", FSOptions{BlockSize: MinBlockSize}))(t)
	if err := src.Replica().SetPin("b", 1); err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d", seed)
	ra := &runner{t: t, rng: rand.New(rand.NewPCG(seed, 3)), fs: func() *FS { return src }, m: newModel(), bs: MinBlockSize}
	for range 150 {
		ra.do(ctx)
	}
	dst := must(v.e.CreateReplica(ctx, "b", ""))(t)
	catchUp(t, ctx, src, dst)
	fork = src.Replica().DurableSeq()
	atFork := ra.m.clone()
	for range lost { // writes on the old source that never shipped
		ra.do(ctx)
	}
	if _, err := dst.Replica().Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := src.Replica().Fence(ctx, 2); err != nil {
		t.Fatal(err)
	}
	rb := &runner{t: t, rng: rand.New(rand.NewPCG(seed, 4)), fs: func() *FS { return dst }, m: atFork, bs: MinBlockSize}
	for range after {
		rb.do(ctx)
	}
	return src, dst, fork
}

// clone copies the model, keeping hard links shared.
func (m *model) clone() *model {
	seen := map[*mnode]*mnode{}
	var cp func(n, parent *mnode) *mnode
	cp = func(n, parent *mnode) *mnode {
		if c, ok := seen[n]; ok {
			return c
		}
		c := *n
		c.data = bytes.Clone(n.data)
		c.parent = parent
		seen[n] = &c
		if n.children != nil {
			c.children = make(map[string]*mnode, len(n.children))
			for name, ch := range n.children {
				c.children[name] = cp(ch, &c)
			}
		}
		return &c
	}
	return &model{root: cp(m.root, nil)}
}

// replayFrom ships newPri's journal from seq from on into the resynced fs.
func replayFrom(t *testing.T, ctx context.Context, from *FS, to *FS, seq uint64) {
	t.Helper()
	for seq < from.Replica().DurableSeq() {
		recs := must(from.Replica().ReadJournal(ctx, seq+1, 64, 1<<20))(t)
		seq = ship(t, ctx, from, to, recs)
	}
}

// ingestRanges is IngestRanges with missing blocks pushed from src.
func ingestRanges(t *testing.T, ctx context.Context, src, dst *FS, snap *Snapshot, ranges []SyncRange) {
	t.Helper()
	for range 3 {
		err := dst.Replica().IngestRanges(ctx, snap.Seq, snap.Epoch, snap.Time, ranges)
		var mb *MissingBlocksError
		if !errors.As(err, &mb) {
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		for _, id := range mb.IDs {
			if err := dst.Replica().PutBlock(ctx, id, must(src.Replica().getBlock(ctx, id))(t)); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Fatal("blocks still missing after pushing them")
}

// keySetRanges are the ranges a resync by key sets copies from snap of
// the new primary b: the keys touched after fork on the side being
// resynced (touched) and on b up to the snapshot, each once.
func keySetRanges(t *testing.T, ctx context.Context, b *FS, snap *Snapshot, fork uint64, touched [][]byte) []SyncRange {
	t.Helper()
	kb := must(b.Replica().KeysTouched(ctx, fork+1, snap.Seq))(t)
	seen := map[string]bool{}
	var keys [][]byte
	for _, k := range slices.Concat(touched, kb) {
		if !seen[string(k)] {
			seen[string(k)] = true
			keys = append(keys, k)
		}
	}
	return rangesOf(t, snap, keys)
}

func rangesOf(t *testing.T, snap *Snapshot, keys [][]byte) []SyncRange {
	t.Helper()
	var out []SyncRange
	for _, k := range keys {
		r := SyncRange{Lo: k, Hi: append(bytes.Clone(k), 0)}
		it := must(snap.Iter(r.Lo, r.Hi))(t)
		if it.First() {
			r.Pairs = []Mutation{{Key: bytes.Clone(it.Key()), Value: bytes.Clone(must(it.Value())(t))}}
		}
		it.Close()
		out = append(out, r)
	}
	return out
}

func TestResyncByKeySets(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t, modelOpts)
	a, b, fork := diverge(t, ctx, v, 11, 40, 60)
	ka := must(a.Replica().KeysTouched(ctx, fork+1, a.Replica().DurableSeq()))(t)
	kb := must(b.Replica().KeysTouched(ctx, fork+1, b.Replica().DurableSeq()))(t)
	if len(ka) == 0 || len(kb) == 0 {
		t.Fatalf("no divergence: %d and %d keys", len(ka), len(kb))
	}
	if err := a.Replica().BeginResync(ctx, ka); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetAttr(ctx, RootIno); !errors.Is(err, ErrNotReady) {
		t.Fatalf("resyncing file system readable: %v", err)
	}
	if _, err := a.Mkdir(ctx, RootCred, RootIno, "x", SetAttr{}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("resyncing file system writable: %v", err)
	}
	kept := must(a.Replica().ResyncKeys())(t)
	if len(kept) != len(ka) {
		t.Fatalf("kept %d keys of %d", len(kept), len(ka))
	}
	// A reopen in the middle keeps the resync.
	v.reopen()
	a, b = v.fs("a"), v.fs("b")
	snap := must(b.Replica().Snapshot(ctx))(t)
	// The new primary's keys up to the snapshot, as the replication's
	// resync takes them: its background work (releasing a removed file's
	// data in batches) may have committed since kb was read.
	ranges := keySetRanges(t, ctx, b, snap, fork, kept)
	ingestRanges(t, ctx, b, a, snap, ranges)
	if err := a.Replica().FinishResync(ctx, snap.Seq, snap.Seq, snap.Epoch, snap.Time); err != nil {
		t.Fatal(err)
	}
	snap.Close()
	must(b.Mkdir(ctx, RootCred, RootIno, "after-resync", SetAttr{}))(t)
	replayFrom(t, ctx, b, a, snap.Seq)
	assertSame(t, ctx, b, a)
	t.Logf("resync sent %d keys (%d from the old source's side)", len(ranges), len(ka))
}

func TestResyncByRangeChecksums(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t, modelOpts)
	a, b, _ := diverge(t, ctx, v, 12, 3, 3)
	if err := a.Replica().BeginResync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	snap := must(b.Replica().Snapshot(ctx))(t)
	defer snap.Close()
	// Ranges of 4 keys of the source; differing ones are replaced. The
	// last range runs to the end, so keys only the old side has go too.
	it := must(snap.Iter(nil, nil))(t)
	var bounds [][]byte
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n%4 == 0 {
			bounds = append(bounds, bytes.Clone(it.Key()))
		}
		n++
	}
	it.Close()
	bounds[0] = nil
	sent, total := 0, 0
	for i, lo := range bounds {
		var hi []byte
		if i+1 < len(bounds) {
			hi = bounds[i+1]
		}
		total++
		want := must(snap.Checksum(lo, hi))(t)
		if got := must(a.Replica().RangeChecksum(ctx, lo, hi))(t); got == want {
			continue
		}
		sent++
		r := SyncRange{Lo: lo, Hi: hi}
		rit := must(snap.Iter(lo, hi))(t)
		for ok := rit.First(); ok; ok = rit.Next() {
			r.Pairs = append(r.Pairs, Mutation{Key: bytes.Clone(rit.Key()), Value: bytes.Clone(must(rit.Value())(t))})
		}
		rit.Close()
		ingestRanges(t, ctx, b, a, snap, []SyncRange{r})
	}
	if sent == 0 || sent == total {
		t.Fatalf("%d of %d ranges differed", sent, total)
	}
	if err := a.Replica().FinishResync(ctx, snap.Seq, snap.Seq, snap.Epoch, snap.Time); err != nil {
		t.Fatal(err)
	}
	replayFrom(t, ctx, b, a, snap.Seq)
	assertSame(t, ctx, b, a)
	t.Logf("%d of %d ranges sent", sent, total)
}

// assertSame fails unless got, replayed from want, holds the same tree.
// want may commit on its own after the replay (maintenance releasing an
// unlinked file's data): a checksum of want at a later seq replays again,
// a few times, as caughtUpEqual does.
func assertSame(t *testing.T, ctx context.Context, want, got *FS) {
	t.Helper()
	for try := 0; ; try++ {
		s1, sum1 := must3(want.Replica().Checksum(ctx))(t)
		s2, sum2 := must3(got.Replica().Checksum(ctx))(t)
		if s1 == s2 && sum1 == sum2 {
			break
		}
		if s1 > s2 && try < 10 {
			replayFrom(t, ctx, want, got, s2)
			continue
		}
		t.Fatalf("resynced file system at %d differs from the source at %d", s2, s1)
	}
	if d := diffDumps(must(dumpFS(ctx, want))(t), must(dumpFS(ctx, got))(t)); d != "" {
		t.Fatalf("trees differ:\n%s", d)
	}
	if err := got.Replica().Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
	// A resynced replica can be promoted again (the second failover).
	if _, err := got.Replica().Promote(ctx); err != nil {
		t.Fatal(err)
	}
	must(got.Mkdir(ctx, RootCred, RootIno, "back-home", SetAttr{}))(t)
}

func TestResumeKeepsNewerEpochFence(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	fs := v.mkfs("a")
	_, epoch := fs.Mode()
	if err := fs.Replica().Stop(ctx, StopLease); err != nil { // a stop of its own (lease)
		t.Fatal(err)
	}
	if err := fs.Replica().Resume(ctx, StopLease); err != nil {
		t.Fatal(err)
	}
	if m, _ := fs.Mode(); m != ModePrimary {
		t.Fatalf("mode %s after Resume of a self-imposed stop", m)
	}
	if err := fs.Replica().Stop(ctx, StopLease); err != nil {
		t.Fatal(err)
	}
	if err := fs.Replica().Fence(ctx, epoch+1); err != nil { // a promotion elsewhere
		t.Fatal(err)
	}
	if err := fs.Replica().Resume(ctx, StopLease); err != nil {
		t.Fatal(err)
	}
	if m, _ := fs.Mode(); m != ModeFenced {
		t.Fatalf("Resume lifted a fence by a newer epoch: mode %s", m)
	}
	if err := fs.Replica().Unfence(ctx); err != nil { // the operator's decision
		t.Fatal(err)
	}
	if m, _ := fs.Mode(); m != ModePrimary {
		t.Fatalf("mode %s after Unfence", m)
	}
}

// TestStopReasons: each reason a primary stopped itself for is lifted on
// its own, and the reasons survive a restart (they are in the mode record,
// written with the stop): a lease's stop and a planned failover's, taken
// in either order, leave the file system stopped until both are lifted; a
// stop recorded without a reason (an older record) is lifted by any
// Resume.
func TestStopReasons(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	fs := v.mkfs("a")
	writable := func(want bool) {
		t.Helper()
		m, _ := fs.Mode()
		if (m == ModePrimary) != want {
			t.Fatalf("mode %s with stops %s, want writable %v", m, fs.Replica().Stops(), want)
		}
	}
	for _, order := range [][2]Stop{{StopLease, StopPlanned}, {StopPlanned, StopLease}} {
		for _, s := range order {
			if err := fs.Replica().Stop(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		v.crash() // kill -9: Stop returned, so its reason is durable
		fs = v.fs("a")
		if got := fs.Replica().Stops(); got != StopLease|StopPlanned {
			t.Fatalf("stops after a restart: %s", got)
		}
		writable(false)
		if err := fs.Replica().Resume(ctx, order[1]); err != nil {
			t.Fatal(err)
		}
		writable(false)
		v.reopen()
		fs = v.fs("a")
		if got := fs.Replica().Stops(); got != order[0] {
			t.Fatalf("stops after a restart: %s, want %s", got, order[0])
		}
		if err := fs.Replica().Resume(ctx, order[1]); err != nil { // again: nothing
			t.Fatal(err)
		}
		writable(false)
		if err := fs.Replica().Resume(ctx, order[0]); err != nil {
			t.Fatal(err)
		}
		writable(true)
	}
	_, epoch := fs.Mode()
	if err := fs.Replica().Fence(ctx, epoch); err != nil { // no reason recorded
		t.Fatal(err)
	}
	if err := fs.Replica().Resume(ctx, StopLease); err != nil {
		t.Fatal(err)
	}
	writable(true)
	if err := fs.Replica().MakeReplica(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fs.Replica().Stop(ctx, StopLease); !errors.Is(err, ErrInvalid) {
		t.Fatalf("stop of a replica: %v", err)
	}
}
