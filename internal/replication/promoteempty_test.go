package replication

import (
	"context"
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
