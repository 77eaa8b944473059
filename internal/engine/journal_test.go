package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// ship applies recs to the replica, pushing whatever blocks it lacks from
// the source first (a shipper in miniature).
func ship(t testing.TB, ctx context.Context, src, dst *FS, recs []*Record) uint64 {
	t.Helper()
	for range 2 * len(recs) {
		seq, err := dst.Apply(ctx, recs)
		var mb *MissingBlocksError
		if errors.As(err, &mb) {
			for _, id := range mb.IDs {
				data, err := src.GetBlock(ctx, id)
				if err != nil {
					t.Fatalf("get block %s: %v", id, err)
				}
				if err := dst.PutBlock(ctx, id, data); err != nil {
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
			if err := src.SetPin("dst", 1); err != nil {
				t.Fatal(err)
			}
			seed := uint64(len(tc.name))
			t.Logf("seed %d", seed)
			r := &runner{t: t, rng: rand.New(rand.NewPCG(seed, 1)), fs: func() *FS { return src }, m: newModel(), bs: MinBlockSize}
			sums := map[uint64][32]byte{}
			seq, sum, err := src.Checksum(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sums[seq] = sum
			for range 150 {
				r.do(ctx)
				seq, sum, err := src.Checksum(ctx)
				if err != nil {
					t.Fatal(err)
				}
				sums[seq] = sum
			}
			if err := src.MergeExtents(ctx); err != nil {
				t.Fatal(err)
			}
			seq, sum, err = src.Checksum(ctx)
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
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var readerErr error
			reads := 0
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					s, sum, err := dst.Checksum(ctx)
					if err != nil {
						readerErr = err
						return
					}
					if want, ok := sums[s]; ok && want != sum && s > 0 {
						readerErr = fmt.Errorf("replica at seq %d differs from the source there", s)
						return
					}
					reads++
				}
			}()
			for from := uint64(1); from <= last; {
				n := 1
				if !tc.onePerOp {
					n = 1 + int(from%7)
				}
				recs, err := src.ReadJournal(ctx, from, n, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) == 0 {
					t.Fatalf("no record at %d (durable %d)", from, src.DurableSeq())
				}
				got := ship(t, ctx, src, dst, recs)
				if tc.twice {
					if again := ship(t, ctx, src, dst, recs); again != got {
						t.Fatalf("re-applying moved the applied point from %d to %d", got, again)
					}
				}
				from = got + 1
				if want, ok := sums[got]; ok {
					s, sum, err := dst.Checksum(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if s != got || sum != want {
						t.Fatalf("after applying up to %d: replica checksum at %d differs", got, s)
					}
				}
			}
			close(stop)
			wg.Wait()
			if readerErr != nil {
				t.Fatal(readerErr)
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
			if err := dst.Verify(ctx, true); err != nil {
				t.Fatal(err)
			}
			// Writes are refused on the replica.
			_, err = dst.Mkdir(ctx, RootCred, RootIno, "nope", SetAttr{})
			wantErr(t, err, ErrReadOnly)
		})
	}
}

func TestApplyRules(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	src := v.mkfs("src")
	for i := range 5 {
		must(src.Mkdir(ctx, RootCred, RootIno, fmt.Sprint("d", i), SetAttr{}))(t)
	}
	recs, err := src.ReadJournal(ctx, 1, 100, 1<<20)
	if err != nil || len(recs) != 6 {
		t.Fatalf("journal: %d records, %v", len(recs), err)
	}
	dst, err := v.e.CreateReplica(ctx, "dst", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = dst.Apply(ctx, recs[1:])
	wantErr(t, err, ErrGap)
	if _, err := dst.Apply(ctx, recs[:3]); err != nil {
		t.Fatal(err)
	}
	old := *recs[3]
	old.Epoch = 0
	_, err = dst.Apply(ctx, []*Record{&old})
	wantErr(t, err, ErrEpoch)
	dst.StopApplyAt(4)
	seq, err := dst.Apply(ctx, recs)
	if err != nil || seq != 4 {
		t.Fatalf("apply with stop at 4: %d %v", seq, err)
	}
	_, err = dst.Apply(ctx, recs[4:])
	wantErr(t, err, ErrPaused)
	dst.StopApplyAt(0)
	if seq, err := dst.Apply(ctx, recs); err != nil || seq != 6 {
		t.Fatalf("resume: %d %v", seq, err)
	}
	// Primary refuses Apply; replica refuses client writes.
	_, err = src.Apply(ctx, recs)
	wantErr(t, err, ErrNotReplica)
	// Truncation keeps pinned records and the newest one.
	if err := src.SetPin("dest", 3); err != nil {
		t.Fatal(err)
	}
	if b, err := src.Truncate(ctx, 100); err != nil || b != 3 {
		t.Fatalf("truncate with pin 3: bound %d %v", b, err)
	}
	_, err = src.ReadJournal(ctx, 2, 10, 1<<20)
	wantErr(t, err, ErrTruncated)
	if recs, err := src.ReadJournal(ctx, 3, 10, 1<<20); err != nil || len(recs) != 4 {
		t.Fatalf("read from pin: %d %v", len(recs), err)
	}
	v.reopen()
	src = v.fs("src")
	if p := src.Pins()["dest"]; p != 3 {
		t.Fatalf("pin after reopen: %d", p)
	}
	must(src.Truncate(ctx, 100))(t)
	if err := src.ClearPin("dest"); err != nil {
		t.Fatal(err)
	}
	if b, err := src.Truncate(ctx, 100); err != nil || b != 6 {
		t.Fatalf("truncate unpinned: %d %v", b, err)
	}
}

func TestPromoteFenceFailback(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	src := v.mkfs("src")
	if err := src.SetPin("dst", 1); err != nil {
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
	recs := must(src.ReadJournal(ctx, 1, 100, 1<<20))(t)
	ship(t, ctx, src, dst, recs)
	h := must(src.Mkdir(ctx, RootCred, RootIno, "after", SetAttr{}))(t) // not shipped: lost at failover
	_ = h
	rp, err := dst.Promote(ctx)
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
	hist := must(dst.EpochHistory())(t)
	if len(hist) != 2 || hist[1] != (EpochStart{Epoch: 2, StartSeq: rp.Seq + 1}) {
		t.Fatalf("epoch history %+v", hist)
	}
	// The old source learns and is fenced, durably.
	if err := src.Fence(ctx, 2); err != nil {
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
	if err := src.Unfence(ctx); err != nil {
		t.Fatal(err)
	}
	must(src.Mkdir(ctx, RootCred, RootIno, "x", SetAttr{}))(t)
}
