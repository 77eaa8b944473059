package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/testkit"
)

// ship applies recs to the replica, pushing whatever blocks it lacks from
// the source first (a shipper in miniature).
func ship(t testing.TB, ctx context.Context, src, dst *FS, recs []*Record) uint64 {
	t.Helper()
	for range 2 * len(recs) {
		seq, err := dst.Replica().Apply(ctx, recs)
		var mb *MissingBlocksError
		if errors.As(err, &mb) {
			for _, id := range mb.IDs {
				data, err := src.Replica().getBlock(ctx, id)
				if err != nil {
					t.Fatalf("get block %s: %v", id, err)
				}
				if err := dst.Replica().PutBlock(ctx, id, data); err != nil {
					t.Fatalf("put block %s: %v", id, err)
				}
			}
			continue
		}
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		return seq
	}
	t.Fatal("blocks still missing after pushing them")
	return 0
}

func TestJournalReplay(t *testing.T) {
	for _, tc := range []struct {
		name     string
		srcKey   string
		dstKey   string
		twice    bool
		onePerOp bool
	}{
		{name: "plain", onePerOp: true},
		{name: "plain-twice", twice: true, onePerOp: true},
		{name: "encrypted-source", srcKey: "test-key", onePerOp: true},
		{name: "encrypted-replica-batched", dstKey: "alias/aws/elasticfilesystem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			v := newEnv(t, modelOpts)
			src, err := v.e.CreateFS(ctx, "src", FSOptions{BlockSize: MinBlockSize, KMSKeyID: tc.srcKey})
			if err != nil {
				t.Fatal(err)
			}
			// A destination registered from the start pins the journal
			// and every block the records reference.
			if err := src.Replica().SetPin("dst", 1); err != nil {
				t.Fatal(err)
			}
			seed := uint64(len(tc.name))
			t.Logf("seed %d", seed)
			r := &runner{t: t, rng: rand.New(rand.NewPCG(seed, 1)), fs: func() *FS { return src }, m: newModel(), bs: MinBlockSize}
			sums := map[uint64][32]byte{}
			seq, sum, err := src.Replica().Checksum(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sums[seq] = sum
			for range 150 {
				r.do(ctx)
				seq, sum, err := src.Replica().Checksum(ctx)
				if err != nil {
					t.Fatal(err)
				}
				sums[seq] = sum
			}
			if err := src.mergeExtents(ctx); err != nil {
				t.Fatal(err)
			}
			seq, sum, err = src.Replica().Checksum(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sums[seq] = sum
			last := seq

			dst, err := v.e.CreateReplica(ctx, "dst", tc.dstKey)
			if err != nil {
				t.Fatal(err)
			}
			// A concurrent reader must only ever see a prefix.
			reads := 0
			stopReader := testkit.Repeat(func() error {
				s, sum, err := dst.Replica().Checksum(ctx)
				if err != nil {
					return err
				}
				if want, ok := sums[s]; ok && want != sum && s > 0 {
					return fmt.Errorf("replica at seq %d differs from the source there", s)
				}
				reads++
				return nil
			})
			for from := uint64(1); from <= last; {
				n := 1
				if !tc.onePerOp {
					n = 1 + int(from%7)
				}
				recs, err := src.Replica().ReadJournal(ctx, from, n, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) == 0 {
					t.Fatalf("no record at %d (durable %d)", from, src.Replica().DurableSeq())
				}
				got := ship(t, ctx, src, dst, recs)
				if tc.twice {
					if again := ship(t, ctx, src, dst, recs); again != got {
						t.Fatalf("re-applying moved the applied point from %d to %d", got, again)
					}
				}
				from = got + 1
				if want, ok := sums[got]; ok {
					s, sum, err := dst.Replica().Checksum(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if s != got || sum != want {
						t.Fatalf("after applying up to %d: replica checksum at %d differs", got, s)
					}
				}
			}
			if err := stopReader(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d concurrent consistent reads", reads)
			// Byte-identical replicated ranges at the end, and the same tree.
			want, err := dumpFS(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := dumpFS(ctx, dst)
			if err != nil {
				t.Fatal(err)
			}
			if d := diffDumps(want, got); d != "" {
				t.Fatalf("replica tree differs:\n%s", d)
			}
			if err := dst.Replica().Verify(ctx, true); err != nil {
				t.Fatal(err)
			}
			// Writes are refused on the replica.
			_, err = dst.Mkdir(ctx, RootCred, RootIno, "nope", SetAttr{})
			wantErr(t, err, ErrReadOnly)
		})
	}
}

// releasedThenReused builds a replica that has applied every record of a
// source but its last two: a block X was written, released (its file
// removed), and the last record writes a file of X and a new block Y. The
// replica still has X's block file, released and not collected yet.
func releasedThenReused(t *testing.T) (v *env, src, dst *FS, tail []*Record, x, y blocks.ID) {
	t.Helper()
	ctx := context.Background()
	v = newEnv(t)
	src = v.mkfs("src")
	if err := src.Replica().SetPin("dst", 1); err != nil {
		t.Fatal(err)
	}
	bx := bytes.Repeat([]byte("X"), MinBlockSize)
	by := bytes.Repeat([]byte("Y"), MinBlockSize)
	a := must(src.Create(ctx, RootCred, RootIno, "a", CreateGuarded, SetAttr{}, 0))(t).Attr.Ino
	must3(src.Write(ctx, RootCred, a, 0, bx))(t)
	must(src.Remove(ctx, RootCred, RootIno, "a"))(t)
	b := must(src.Create(ctx, RootCred, RootIno, "b", CreateGuarded, SetAttr{}, 0))(t).Attr.Ino
	must3(src.Write(ctx, RootCred, b, 0, append(bytes.Clone(bx), by...)))(t)
	recs, err := src.Replica().ReadJournal(ctx, 1, 100, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	last := recs[len(recs)-1]
	if len(last.AddedRefs) != 2 {
		t.Fatalf("the last record adds %d references, want 2 (X and Y)", len(last.AddedRefs))
	}
	x, y = last.AddedRefs[0], last.AddedRefs[1]
	if data, err := src.Replica().getBlock(ctx, x); err != nil {
		t.Fatal(err)
	} else if data[0] != 'X' {
		x, y = y, x
	}
	if dst, err = v.e.CreateReplica(ctx, "dst", ""); err != nil {
		t.Fatal(err)
	}
	ship(t, ctx, src, dst, recs[:len(recs)-2])
	if missing, err := dst.Replica().missingBlocks(ctx, []blocks.ID{x, y}); err != nil || len(missing) != 1 || missing[0] != y {
		t.Fatalf("before the last records the replica lacks %v (%v), want only Y", missing, err)
	}
	return v, src, dst, recs[len(recs)-2:], x, y
}

// TestApplyRetryKeepsPresentBlocks is the regression test of a flaky
// TestJournalReplay: an apply that stops at a record for a missing block
// must keep that record's present blocks until the retry. X has no holder
// on the replica (released by an earlier record, not collected yet); before
// the fix the collector could delete it while Y was being pushed, and the
// retry found X missing in turn.
func TestApplyRetryKeepsPresentBlocks(t *testing.T) {
	ctx := context.Background()
	v, src, dst, tail, x, y := releasedThenReused(t)
	_, err := dst.Replica().Apply(ctx, tail)
	var mb *MissingBlocksError
	if !errors.As(err, &mb) || len(mb.IDs) != 1 || mb.IDs[0] != y {
		t.Fatalf("apply: %v, want Y missing", err)
	}
	if _, err := v.e.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	if missing, err := dst.Replica().missingBlocks(ctx, []blocks.ID{x}); err != nil || len(missing) != 0 {
		t.Fatalf("the collector deleted X while the apply waited for Y (%v)", err)
	}
	data, err := src.Replica().getBlock(ctx, y)
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.Replica().PutBlock(ctx, y, data); err != nil {
		t.Fatal(err)
	}
	if seq, err := dst.Replica().Apply(ctx, tail); err != nil || seq != tail[len(tail)-1].Seq {
		t.Fatalf("retry: applied %d, %v", seq, err)
	}
	// Held by the file now; the retry mark is gone, and nothing leaks:
	// removing the file lets the collector take both blocks.
	if n, err := v.e.CollectGarbage(ctx); err != nil || n != 0 {
		t.Fatalf("collected %d blocks of a live file (%v)", n, err)
	}
	must(src.Remove(ctx, RootCred, RootIno, "b"))(t)
	recs, err := src.Replica().ReadJournal(ctx, tail[len(tail)-1].Seq+1, 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ship(t, ctx, src, dst, recs)
	if n, err := v.e.CollectGarbage(ctx); err != nil || n != 2 {
		t.Fatalf("collected %d blocks after the removal, want 2 (%v)", n, err)
	}
}

// TestApplyFailureKeepsPushedBlocks: a block pushed ahead of its record is
// not the failed apply's to collect (it wrote nothing): before the fix an
// apply refused for a gap queued the blocks it had looked at as orphans of
// a failed write, and the collector deleted the pushed block.
func TestApplyFailureKeepsPushedBlocks(t *testing.T) {
	ctx := context.Background()
	v, src, dst, tail, x, y := releasedThenReused(t)
	ship(t, ctx, src, dst, tail[:1])
	if n, err := v.e.CollectGarbage(ctx); err != nil || n != 1 { // X, released
		t.Fatalf("collected %d blocks, want 1 (%v)", n, err)
	}
	for _, id := range []blocks.ID{x, y} { // pushed ahead of the record
		data, err := src.Replica().getBlock(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.Replica().PutBlock(ctx, id, data); err != nil {
			t.Fatal(err)
		}
	}
	gap := *tail[1]
	gap.Seq += 2
	_, err := dst.Replica().Apply(ctx, []*Record{tail[1], &gap})
	wantErr(t, err, ErrGap)
	if _, err := v.e.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	if seq, err := dst.Replica().Apply(ctx, tail[1:]); err != nil || seq != tail[1].Seq {
		t.Fatalf("apply after the refused one: applied %d, %v (a pushed block was collected)", seq, err)
	}
}

// mkdirReplica makes a file system src with directories d0 … dn-1 in
// its root and an empty replica dst of it, and returns them with src's
// journal (the mkfs's record, then one per mkdir).
func mkdirReplica(t *testing.T, v *env, n int) (src, dst *FS, recs []*Record) {
	t.Helper()
	ctx := context.Background()
	src = v.mkfs("src")
	for i := range n {
		must(src.Mkdir(ctx, RootCred, RootIno, fmt.Sprint("d", i), SetAttr{}))(t)
	}
	recs, err := src.Replica().ReadJournal(ctx, 1, 100, 1<<20)
	if err != nil || len(recs) != n+1 {
		t.Fatalf("journal: %d records, %v", len(recs), err)
	}
	if dst, err = v.e.CreateReplica(ctx, "dst", ""); err != nil {
		t.Fatal(err)
	}
	return src, dst, recs
}

func TestApplyRules(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	src, dst, recs := mkdirReplica(t, v, 5)
	_, err := dst.Replica().Apply(ctx, recs[1:])
	wantErr(t, err, ErrGap)
	if _, err := dst.Replica().Apply(ctx, recs[:3]); err != nil {
		t.Fatal(err)
	}
	old := *recs[3]
	old.Epoch = 0
	_, err = dst.Replica().Apply(ctx, []*Record{&old})
	wantErr(t, err, ErrEpoch)
	dst.Replica().stopApplyAt(4)
	seq, err := dst.Replica().Apply(ctx, recs)
	if err != nil || seq != 4 {
		t.Fatalf("apply with stop at 4: %d %v", seq, err)
	}
	_, err = dst.Replica().Apply(ctx, recs[4:])
	wantErr(t, err, ErrPaused)
	dst.Replica().stopApplyAt(0)
	if seq, err := dst.Replica().Apply(ctx, recs); err != nil || seq != 6 {
		t.Fatalf("resume: %d %v", seq, err)
	}
	// Primary refuses Apply; replica refuses client writes.
	_, err = src.Replica().Apply(ctx, recs)
	wantErr(t, err, ErrNotReplica)
	// Truncation keeps pinned records and the newest one.
	if err := src.Replica().SetPin("dest", 3); err != nil {
		t.Fatal(err)
	}
	if b, err := src.Replica().Truncate(ctx, 100); err != nil || b != 3 {
		t.Fatalf("truncate with pin 3: bound %d %v", b, err)
	}
	_, err = src.Replica().ReadJournal(ctx, 2, 10, 1<<20)
	wantErr(t, err, ErrTruncated)
	if recs, err := src.Replica().ReadJournal(ctx, 3, 10, 1<<20); err != nil || len(recs) != 4 {
		t.Fatalf("read from pin: %d %v", len(recs), err)
	}
	v.reopen()
	src = v.fs("src")
	if p := src.Replica().Pins()["dest"]; p != 3 {
		t.Fatalf("pin after reopen: %d", p)
	}
	must(src.Replica().Truncate(ctx, 100))(t)
	if err := src.Replica().ClearPin("dest"); err != nil {
		t.Fatal(err)
	}
	if b, err := src.Replica().Truncate(ctx, 100); err != nil || b != 6 {
		t.Fatalf("truncate unpinned: %d %v", b, err)
	}
}

func TestPromoteFenceFailback(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	src := v.mkfs("src")
	if err := src.Replica().SetPin("dst", 1); err != nil {
		t.Fatal(err)
	}
	f := must(src.Create(ctx, RootCred, RootIno, "f", CreateGuarded, SetAttr{}, 0))(t).Attr
	data := make([]byte, 3*MinBlockSize)
	for i := range data {
		data[i] = byte(i)
	}
	if _, _, err := src.Write(ctx, RootCred, f.Ino, 0, data); err != nil {
		t.Fatal(err)
	}
	dst, err := v.e.CreateReplica(ctx, "dst", "")
	if err != nil {
		t.Fatal(err)
	}
	recs := must(src.Replica().ReadJournal(ctx, 1, 100, 1<<20))(t)
	ship(t, ctx, src, dst, recs)
	h := must(src.Mkdir(ctx, RootCred, RootIno, "after", SetAttr{}))(t) // not shipped: lost at failover
	_ = h
	rp, err := dst.Replica().Promote(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rp.Seq != recs[len(recs)-1].Seq || rp.NewEpoch != 2 || rp.OldEpoch != 1 {
		t.Fatalf("recovery point %+v", rp)
	}
	if m, e := dst.Mode(); m != ModePrimary || e != 2 {
		t.Fatalf("promoted mode %v epoch %d", m, e)
	}
	// Handles (inode + generation) survive promotion.
	a := must(dst.GetAttr(ctx, f.Ino))(t)
	if a.Gen != f.Gen {
		t.Fatalf("generation changed across promotion")
	}
	g := must(dst.Create(ctx, RootCred, RootIno, "g", CreateGuarded, SetAttr{}, 0))(t).Attr
	if g.Gen>>48 != 2 {
		t.Fatalf("new generation %x not in epoch 2", g.Gen)
	}
	hist := must(dst.Replica().EpochHistory())(t)
	if len(hist) != 2 || hist[1] != (EpochStart{Epoch: 2, StartSeq: rp.Seq + 1}) {
		t.Fatalf("epoch history %+v", hist)
	}
	// The old source learns and is fenced, durably.
	if err := src.Replica().Fence(ctx, 2); err != nil {
		t.Fatal(err)
	}
	_, err = src.Mkdir(ctx, RootCred, RootIno, "x", SetAttr{})
	wantErr(t, err, ErrReadOnly)
	v.reopen()
	src, dst = v.fs("src"), v.fs("dst")
	if m, _ := src.Mode(); m != ModeFenced {
		t.Fatalf("fence lost on restart: %v", m)
	}
	if m, e := dst.Mode(); m != ModePrimary || e != 2 {
		t.Fatalf("promotion lost on restart: %v epoch %d", m, e)
	}
	// UpdateFileSystemProtection ENABLED un-fences.
	if err := src.Replica().Unfence(ctx); err != nil {
		t.Fatal(err)
	}
	must(src.Mkdir(ctx, RootCred, RootIno, "x", SetAttr{}))(t)
}

// TestRecordAppendEncode: a record appended after other bytes (the
// committer's reused buffer) encodes as Encode does, its checksum over
// its own bytes only.
func TestRecordAppendEncode(t *testing.T) {
	rec := &Record{Epoch: 2, Seq: 9, Time: time.Unix(5, 6), Op: OpSummary{Op: "write", Inos: []uint64{7}, Names: []string{"f"}},
		Mutations: []Mutation{{Key: []byte("a"), Value: bytes.Repeat([]byte("x"), 4096)}, {Key: []byte("b"), Delete: true}}}
	prefix := []byte("earlier record")
	got := rec.AppendEncode(prefix)
	if !bytes.Equal(got[len(prefix):], rec.Encode()) || string(got[:len(prefix)]) != "earlier record" {
		t.Fatal("AppendEncode after other bytes differs from Encode")
	}
	back, err := DecodeRecord(got[len(prefix):])
	if err != nil || back.Seq != 9 || len(back.Mutations) != 2 || !bytes.Equal(back.Mutations[0].Value, rec.Mutations[0].Value) {
		t.Fatalf("decoded %+v, %v", back, err)
	}
}
