package replication

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
)

// TestDrainEndsWithItsReplication: a Drain waiting for a destination that
// is gone returns once its replication is removed, or the node closes,
// instead of polling a status that no longer changes until its context
// ends (a planned failover's caller without a deadline waited forever; a
// test's left running past its end failed its package's leak check).
func TestDrainEndsWithItsReplication(t *testing.T) {
	for _, end := range []string{"remove", "close"} {
		t.Run(end, func(t *testing.T) {
			ctx := context.Background()
			a, b := newPair(t)
			src := a.mkfs("fs-src")
			link(t, a, b, "r1", "fs-src", "fs-dst")
			converged(t, src, b.fs("fs-dst"))
			b.stopNode()
			if _, err := src.Mkdir(ctx, engine.RootCred, engine.RootIno, "undrained", engine.SetAttr{}); err != nil {
				t.Fatal(err)
			}
			n := a.n
			done := make(chan error, 1)
			go func() {
				_, err := n.Drain(ctx, "r1")
				done <- err
			}()
			if end == "remove" {
				n.RemoveOutbound("r1")
			} else {
				a.stopNode()
			}
			select {
			case err := <-done:
				if err == nil || errors.Is(err, context.Canceled) {
					t.Fatalf("drain after the replication ended: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("drain still waiting 30 s after its replication ended")
			}
		})
	}
}
