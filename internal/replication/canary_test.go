package replication

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
)

// A canary asked for by the destination is committed on the source and
// reaches the replica in order (it holds every change before it); a
// fenced source refuses it, an unreachable source region is reported as
// such, and a canary for a replication the other region does not ship is
// refused.
func TestCanary(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	src := a.mkfs("fs-src")
	w := newWorkload(t, 11, func() *engine.FS { return src })
	w.run(ctx, 20)
	link(t, a, b, "r1", "fs-src", "fs-dst")
	dst := b.fs("fs-dst")
	converged(t, src, dst)

	w.run(ctx, 5) // changes the canary must come after
	before := src.Replica().DurableSeq()
	seq, at, err := b.n.Canary(ctx, "r1", "token-a")
	if err != nil {
		t.Fatal(err)
	}
	if seq <= before || at.IsZero() {
		t.Fatalf("canary at seq %d (source durable before: %d), time %v", seq, before, at)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	got, err := b.n.WaitCanary(wctx, "r1", seq, "token-a")
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if _, applied, _ := dst.Replica().Applied(); applied < seq || got.IsZero() {
		t.Fatalf("replica applied %d when the canary at %d was seen", applied, seq)
	}
	last := w.files[len(w.files)-1]
	if _, err := dst.Lookup(ctx, engine.RootCred, engine.RootIno, last); err != nil {
		t.Fatalf("the replica holds the canary but not %s, written before it: %v", last, err)
	}
	if m, _ := dst.Mode(); m != engine.ModeReplica {
		t.Fatalf("replica mode %v after a canary", m)
	}

	// Unknown replication ids, in either region.
	if _, _, err := b.n.Canary(ctx, "nope", "t"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("canary of an unknown replication: %v", err)
	}
	var resp canaryResp
	err = a.n.Call(ctx, b.name, callCanary, canaryReq{ID: "r1", Token: "t"}, &resp)
	var ce *CallError
	if !errors.As(err, &ce) || ce.Code != "NotFound" {
		t.Fatalf("canary asked of the destination's region: %v", err)
	}
	err = b.n.Call(ctx, a.name, callCanary, canaryReq{ID: "r1"}, &resp)
	if !errors.As(err, &ce) || ce.Code != "BadRequest" {
		t.Fatalf("canary without a token: %v", err)
	}

	// A fenced source takes no canary.
	_, epoch := src.Mode()
	if err := src.Replica().Fence(ctx, epoch); err != nil {
		t.Fatal(err)
	}
	_, _, err = b.n.Canary(ctx, "r1", "token-b")
	if !errors.As(err, &ce) || ce.Code != "ReadOnly" {
		t.Fatalf("canary on a fenced source: %v", err)
	}
	if err := src.Replica().Unfence(ctx); err != nil {
		t.Fatal(err)
	}

	// The source region goes away: unreachable, within the call timeout.
	a.stop()
	_, _, err = b.n.Canary(ctx, "r1", "token-c")
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("canary with the source region down: %v", err)
	}
}
