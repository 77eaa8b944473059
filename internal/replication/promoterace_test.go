package replication

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestPromoteAfterLeaseRanOutRefusesLateStream: a promotion with hard
// fencing whose source's lease has run out already (the source region was
// down for longer than 1.5 leases; the destination's clock says so) and a
// source that comes back just as the promotion has read its last contact:
// its stream is refused, no acknowledgement renews its lease, and it stays
// read-only beside the promoted replica. Before, the promotion marked
// itself (no streams, no acks) only when it had a lease to wait for, and
// after it read the last contact: the stream attached in between, its
// first acknowledgement renewed the source's lease, and the source took
// writes beside the promoted replica for up to a lease. The hook runs at
// the point of the race; no sleep decides the outcome.
func TestPromoteAfterLeaseRanOutRefusesLateStream(t *testing.T) {
	ctx := context.Background()
	const lease = time.Second
	var skew atomic.Int64 // added to b's clock
	withLease := func(o *Options) { o.Lease = lease }
	a := newRegion(t, "us-east-1", withLease)
	b := newRegion(t, "us-west-2", withLease, func(o *Options) {
		o.Clock = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	startPair(a, b)
	src := a.mkfs("fs-src")
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	a.stop()
	// The source has been down for ten leases, as far as b can tell.
	skew.Store(int64(10 * lease))
	var hookErr error
	b.n.promoteHook = func() {
		a.restart(outboundR1(b))
		// The restarted source waits for its destination's answer
		// (read-only) and asks for a stream now: it is either
		// attached and acknowledged, or refused.
		if !testkit.Until(30*time.Second, func() bool {
			st, _ := a.n.OutboundStatus("r1")
			return !st.LastContact.IsZero() || strings.Contains(st.LastError, "failover in progress")
		}) {
			hookErr = errors.New("the restarted source was neither acknowledged nor refused")
		}
	}
	if _, err := b.n.Promote(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if hookErr != nil {
		t.Fatal(hookErr)
	}
	st, _ := a.n.OutboundStatus("r1")
	if !st.LastContact.IsZero() {
		t.Errorf("the source heard its destination at %s, after the promotion read its last contact", st.LastContact)
	}
	if _, err := a.fs("fs-src").Mkdir(ctx, engine.RootCred, engine.RootIno, "beside", engine.SetAttr{}); !errors.Is(err, engine.ErrReadOnly) {
		t.Fatalf("a source write beside the promoted replica: %v, want read-only", err)
	}
}
