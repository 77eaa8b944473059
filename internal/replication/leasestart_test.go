package replication

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/replication/faultproxy"
)

// A replication's destination begins its promotion's wait when it adds
// the replication (AddInbound), and its source may start later: the
// answer to the creation came late, or the creation was retried, or the
// source was restarted before its first pin. Before, the source granted
// itself a lease at its start (its writes went on for a lease with no
// answer from its destination), so a source started more than half a
// lease after its destination took writes beside a destination promoted
// meanwhile. Now it takes none until an answer grants it a lease.
func TestSourceStartedLateHasNoLease(t *testing.T) {
	ctx := context.Background()
	const lease = 2 * time.Second
	a, b, px := proxiedPair(t, func(o *Options) { o.Lease = lease })
	src := a.mkfs("fs-src")
	if _, err := b.e.CreateReplica(ctx, "fs-dst", ""); err != nil {
		t.Fatal(err)
	}
	px.Partition() // the source's stream never reaches its destination
	if err := b.n.AddInbound(InboundSpec{ID: "r1", SourceRegion: a.name, SourceFS: "fs-src", DestFS: "fs-dst"}); err != nil {
		t.Fatal(err)
	}
	promoted := make(chan error, 1)
	go func() {
		_, err := b.n.Promote(ctx, "r1") // waits 1.5 leases from AddInbound
		promoted <- err
	}()
	time.Sleep(9 * lease / 10) // the source starts 0.9 lease after its destination (setup, not a check)
	if err := a.n.AddOutbound(OutboundSpec{ID: "r1", SourceFS: "fs-src", DestRegion: b.name, DestFS: "fs-dst"}); err != nil {
		t.Fatal(err)
	}
	if err := <-promoted; err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	_, werr := src.Mkdir(ctx, engine.RootCred, engine.RootIno, "after-promotion", engine.SetAttr{})
	if until := leaseUntil(t, a.n, "r1"); until.After(at) || werr == nil {
		t.Fatalf("the destination is promoted and the source, started after it and never answered, took a write (%v) under a lease running %s more: two writable regions",
			werr, until.Sub(at).Round(time.Millisecond))
	}
	if !errors.Is(werr, engine.ErrReadOnly) {
		t.Fatalf("write on the unanswered source: %v, want read-only", werr)
	}
}

// A new replication's source takes writes once its destination's first
// answer grants a lease (AwaitLease), not before.
func TestNewSourceLeaseFromFirstAnswer(t *testing.T) {
	ctx := context.Background()
	a, b, px, src := unansweredSource(t)
	if _, err := src.Mkdir(ctx, engine.RootCred, engine.RootIno, "unanswered", engine.SetAttr{}); !errors.Is(err, engine.ErrReadOnly) {
		t.Fatalf("write on a new source before any answer: %v, want read-only", err)
	}
	px.Heal()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.n.AwaitLease(wctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Mkdir(ctx, engine.RootCred, engine.RootIno, "answered", engine.SetAttr{}); err != nil {
		t.Fatalf("write once the destination answered: %v", err)
	}
	converged(t, src, b.fs("fs-dst"))
}

// The lease's stop is the file system's: removing a replication of it
// lifts the stop only if no other replication of the same file system
// runs (one added since, not answered yet, keeps it). Before, a removal
// that came after a new configuration of the same file system was
// started lifted the new one's stop.
func TestRemovedReplicationKeepsAnotherOnesStop(t *testing.T) {
	ctx := context.Background()
	a, b, _, src := unansweredSource(t)
	link(t, a, b, "r2", "fs-src", "fs-dst2")
	a.n.RemoveOutbound("r1")
	if _, err := src.Mkdir(ctx, engine.RootCred, engine.RootIno, "unanswered", engine.SetAttr{}); !errors.Is(err, engine.ErrReadOnly) {
		t.Fatalf("write on a source whose replication r2 has no answer yet, after r1 was removed: %v, want read-only", err)
	}
	a.n.RemoveOutbound("r2")
	if _, err := src.Mkdir(ctx, engine.RootCred, engine.RootIno, "unreplicated", engine.SetAttr{}); err != nil {
		t.Fatalf("write on a file system no longer replicated: %v", err)
	}
}

// unansweredSource is a source file system fs-src of a, with a lease of
// 2s, replicated (r1) to fs-dst of b through px, which was cut before
// the replication began: no answer of the destination has reached it.
func unansweredSource(t *testing.T) (a, b *region, px *faultproxy.Proxy, src *engine.FS) {
	t.Helper()
	a, b, px = proxiedPair(t, func(o *Options) { o.Lease = 2 * time.Second })
	src = a.mkfs("fs-src")
	px.Partition()
	link(t, a, b, "r1", "fs-src", "fs-dst")
	return a, b, px, src
}
