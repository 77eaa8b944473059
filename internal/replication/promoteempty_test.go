package replication

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestFailoverDuringInitialSync: a failover while the initial sync runs
// (past the superblock, some blocks in), with the source reachable or
// stopped, succeeds: the replica becomes a new, empty writable file system
// (nothing of the partial copy shows), the recovery point says so, the
// stream of the replication ends, and a source that calls again learns of
// the promotion. The same source then replicates to a new destination.
func TestFailoverDuringInitialSync(t *testing.T) {
	for _, sourceUp := range []bool{true, false} {
		t.Run(fmt.Sprintf("source-up=%v", sourceUp), func(t *testing.T) {
			ctx := context.Background()
			a, b, px, w := slowSyncPair(t, 11)
			src := func() *engine.FS { return a.fs("fs-src") }
			link(t, a, b, "r1", "fs-src", "fs-dst")
			testkit.WaitFor(t, "the initial sync to pass the superblock", 60*time.Second, func() bool {
				ss := b.rep("fs-dst").SyncState()
				return ss.Active && len(ss.Cursor) > 0 && ss.Cursor[0] > 'M'
			})
			_, srcEpoch := src().Mode()
			if !sourceUp {
				a.stop()
			}
			t0 := time.Now()
			p, err := b.n.Promote(ctx, "r1")
			if err != nil {
				t.Fatalf("failover during the initial sync: %v", err)
			}
			t.Logf("promoted in %s: %+v", time.Since(t0), p)
			if !p.Empty || p.Seq != 0 || p.NewEpoch <= srcEpoch {
				t.Fatalf("promotion %+v, want an empty one above the source's epoch", p)
			}
			dst := b.fs("fs-dst")
			if mode, epoch := dst.Mode(); mode != engine.ModePrimary || epoch != p.NewEpoch {
				t.Fatalf("destination mode %v epoch %d", mode, epoch)
			}
			ents, eof, _, err := dst.ReadDir(ctx, engine.RootCred, engine.RootIno, 0, 100, false)
			if err != nil || !eof || len(ents) != 0 {
				t.Fatalf("the promoted destination lists %d entries (%v): want an empty root", len(ents), err)
			}
			if _, err := dst.Mkdir(ctx, engine.RootCred, engine.RootIno, "after-failover", engine.SetAttr{}); err != nil {
				t.Fatalf("promoted destination refuses writes: %v", err)
			}
			if err := dst.Replica().Verify(ctx, true); err != nil {
				t.Fatal(err)
			}
			if _, ok := b.n.InboundStatus("r1"); ok {
				t.Fatal("the replication is still received after the failover")
			}
			if _, err := b.n.Promote(ctx, "r1"); err == nil {
				t.Fatal("a second promotion succeeded")
			}
			// The source learns of it at its next contact.
			b.hooks.mu.Lock()
			b.hooks.gone["r1"] = Gone{Promoted: true, Epoch: p.NewEpoch, Empty: true, Reason: "promoted during the initial sync"}
			b.hooks.mu.Unlock()
			px.SetDelay(0)
			px.SetBandwidth(0)
			px.SetPieceBytes(0)
			if !sourceUp {
				a.restart(outboundR1(b))
			}
			testkit.WaitFor(t, "the source to learn of the promotion", 10*time.Second, func() bool {
				g := a.hooks.sourceGone()
				return len(g) == 1 && g[0] == fmt.Sprintf("r1 promoted=true epoch=%d recovery=0", p.NewEpoch)
			})
			// Nothing more reaches the promoted file system.
			ents, _, _, err = dst.ReadDir(ctx, engine.RootCred, engine.RootIno, 0, 100, false)
			if err != nil || len(ents) != 1 || ents[0].Name != "after-failover" {
				t.Fatalf("promoted destination lists %+v (%v)", ents, err)
			}
			// The source replicates again, to a new destination.
			a.n.RemoveOutbound("r1")
			link(t, a, b, "r2", "fs-src", "fs-dst2")
			w.run(ctx, 20)
			converged(t, src(), b.fs("fs-dst2"))
		})
	}
}

// TestPromotedTakesNoFrames: a stream's frames that reach a promoted file
// system (its stream is detached before the promotion and a new one
// refused; this is the receiver's own guard) are refused with
// engine.ErrNotReplica and change nothing. Before, a resync's start
// turned the promoted file system back into a replica being resynced
// (engine.Replica.BeginResync takes any file system), and records ended
// in a replication ERROR state without naming the promotion.
func TestPromotedTakesNoFrames(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	src := a.mkfs("fs-src")
	w := newWorkload(t, 7, func() *engine.FS { return src })
	w.run(ctx, 20)
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	a.n.RemoveOutbound("r1")
	p, err := b.n.Promote(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	w.run(ctx, 5) // source records after the recovery point
	dst := b.fs("fs-dst")
	if _, err := dst.Mkdir(ctx, engine.RootCred, engine.RootIno, "written-after-promotion", engine.SetAttr{}); err != nil {
		t.Fatal(err)
	}
	recs, err := src.Replica().ReadJournal(ctx, p.Seq+1, 100, 1<<20)
	if err != nil || len(recs) == 0 {
		t.Fatalf("source records after the recovery point: %d, %v", len(recs), err)
	}
	in := &inbound{n: b.n, fs: dst.Replica(), spec: InboundSpec{ID: "r1", SourceRegion: a.name, SourceFS: "fs-src", DestFS: "fs-dst"}}
	for _, f := range []frame{
		{typ: msgResyncBegin},
		{typ: msgRecords, p: (&recordsMsg{recs: recs}).encode()},
	} {
		rx := &receiver{in: in, ctx: ctx, log: b.n.log, bufs: newFramePool(ctx, nil)}
		err := rx.handle(f)
		if err == nil {
			err = rx.flushRecords()
		}
		if !errors.Is(err, engine.ErrNotReplica) {
			t.Errorf("frame %d into a promoted file system: %v, want %v", f.typ, err, engine.ErrNotReplica)
		}
		if mode, epoch := dst.Mode(); mode != engine.ModePrimary || epoch != p.NewEpoch {
			t.Fatalf("after frame %d the promoted file system is %v at epoch %d, want primary at %d", f.typ, mode, epoch, p.NewEpoch)
		}
	}
	if _, err := dst.Lookup(ctx, engine.RootCred, engine.RootIno, "written-after-promotion"); err != nil {
		t.Fatalf("the promoted file system lost its own write: %v", err)
	}
}

// TestPromotedGoneHasRecoveryPoint: a source's stream into a replica that
// was promoted while its registration stayed (outside Node.Promote) is
// answered Gone with the promotion's epoch and recovery point (the
// engine's record of it), so that the source, which fences itself,
// reports as lost exactly what it committed after that point. Before,
// the answer had RecoverySeq 0: the source's loss report listed every
// change it had ever made.
func TestPromotedGoneHasRecoveryPoint(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	src := a.mkfs("fs-src")
	w := newWorkload(t, 11, func() *engine.FS { return src })
	w.run(ctx, 20)
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	a.n.RemoveOutbound("r1")
	rp, err := b.rep("fs-dst").Promote(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rp.Seq == 0 {
		t.Fatalf("promoted at seq 0 after 20 steps")
	}
	w.run(ctx, 5) // the source's changes after the recovery point
	if err := a.n.AddOutbound(OutboundSpec{ID: "r1", SourceFS: "fs-src", DestRegion: b.name, DestFS: "fs-dst"}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the source to learn of the promotion", 10*time.Second, func() bool { return len(a.hooks.sourceGone()) > 0 })
	want := fmt.Sprintf("r1 promoted=true epoch=%d recovery=%d", rp.NewEpoch, rp.Seq)
	if got := a.hooks.sourceGone()[0]; got != want {
		t.Fatalf("the source learned %q, want %q", got, want)
	}
}
