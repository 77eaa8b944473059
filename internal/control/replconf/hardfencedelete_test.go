package replconf_test

import (
	"context"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/replconf"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/replication"
)

// hardFencedPair is newPair with hard fencing in both regions, under a
// lease far longer than any call to a peer may wait (replication's
// callTimeout, 2 s).
func hardFencedPair(t *testing.T) (a, b *region) {
	t.Helper()
	a, b = newRegion(t, "us-east-1"), newRegion(t, "us-west-2")
	peers := map[string]replication.Peer{
		a.name: {URL: "http://" + a.addr, Secret: testSecret},
		b.name: {URL: "http://" + b.addr, Secret: testSecret},
	}
	for _, r := range []*region{a, b} {
		r.peers = peers
		r.nodeMods = append(r.nodeMods, func(o *replication.Options) { o.Lease = time.Hour })
	}
	a.start()
	b.start()
	return a, b
}

// TestSourceDeleteUnderHardFencing: with hard fencing (replicate.lease),
// DeleteReplicationConfiguration in the source region (ALL_CONFIGURATIONS)
// and a planned failover complete at once, as without it. The source
// asks for the promotion: it is not cut off, and the lease the
// destination's promotion waits out is there for a source that is. Before,
// the destination waited for the source's lease to run out (1.5 leases
// from the last acknowledgement, 15 s under a 10 s lease) while the
// source's call gave up after 2 s: every delete at the source failed with
// "Region us-west-2 does not answer." (DependencyTimeout) although it
// answered, CloudFormation could not delete or roll back a stack whose
// file system replicates, and a planned failover left the source
// read-only for good (each retry reconnected the stream, which renewed the
// lease the next promotion waited for).
func TestSourceDeleteUnderHardFencing(t *testing.T) {
	ctx := context.Background()
	t.Run("delete", func(t *testing.T) {
		a, b := hardFencedPair(t)
		srcID := a.createFS("src")
		fill(t, a.fs(srcID), "before", 2)
		d := replicate(t, a, b, srcID)
		if _, err := a.m.Delete(ctx, srcID, replconf.DeleteAll); err != nil {
			t.Fatalf("delete at the source under hard fencing: %v", err)
		}
		if got := b.protection(d.DestFileSystemID); got != control.ProtectionEnabled {
			t.Fatalf("the destination's protection after the delete: %s, want %s", got, control.ProtectionEnabled)
		}
		// AWS's semantics: both file systems take writes.
		for _, w := range []struct {
			r  *region
			id string
		}{{a, srcID}, {b, d.DestFileSystemID}} {
			if _, err := w.r.fs(w.id).Mkdir(ctx, engine.RootCred, engine.RootIno, "after", engine.SetAttr{}); err != nil {
				t.Fatalf("a write to %s in %s after the delete: %v", w.id, w.r.name, err)
			}
		}
	})
	t.Run("planned", func(t *testing.T) {
		a, b := hardFencedPair(t)
		srcID := a.createFS("src")
		fill(t, a.fs(srcID), "before", 2)
		d := replicate(t, a, b, srcID)
		if _, err := a.m.PlannedFailover(ctx, srcID); err != nil {
			t.Fatalf("planned failover under hard fencing: %v", err)
		}
		if _, err := b.fs(d.DestFileSystemID).Mkdir(ctx, engine.RootCred, engine.RootIno, "after", engine.SetAttr{}); err != nil {
			t.Fatalf("a write to the promoted destination: %v", err)
		}
		if _, err := a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, "after", engine.SetAttr{}); err == nil {
			t.Fatal("the source of a planned failover took a write after it")
		}
	})
}
