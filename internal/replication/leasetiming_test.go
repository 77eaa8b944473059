package replication

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/replication/faultproxy"
	"github.com/regionfs/regionfs/internal/serve"
	"github.com/regionfs/regionfs/internal/testkit"
)

// leaseUntil is where the source's lease of replication id runs to.
func leaseUntil(t *testing.T, n *Node, id string) time.Time {
	t.Helper()
	n.mu.Lock()
	o := n.outbound[id]
	n.mu.Unlock()
	if o == nil {
		t.Fatalf("no outbound replication %s", id)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.leaseUntil
}

// slowAcks links r1 through a proxy whose way back (destination →
// source) slows down step by step, as a congested path does (no gap
// between acknowledgements longer than a heartbeat and a step), until
// each acknowledgement takes 0.6 lease to arrive, and waits until the
// source has heard acknowledgements sent at that delay. older: the
// destination answers as a version before featureLeaseEcho (it does not
// see the source ask for it).
func slowAcks(t *testing.T, lease time.Duration, older bool) (a, b *region, src *engine.FS) {
	t.Helper()
	mod := func(o *Options) { o.Lease = lease }
	a = newRegion(t, "us-east-1", mod)
	b = newRegion(t, "us-west-2", mod)
	b.startNode(map[string]Peer{a.name: {URL: "http://" + a.addr, Secret: testSecret}})
	target := b.addr
	if older {
		// A front for b's endpoint that drops the source's feature list:
		// b then answers as one that does not know it.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		h := b.n.Handler()
		front := serve.NewHTTP(serve.HTTPOptions{HTTP2: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Del(hdrFeatures)
			h.ServeHTTP(w, r)
		})})
		ctx, cancel := context.WithCancel(context.Background())
		go front.Serve(ctx, ln)
		t.Cleanup(func() {
			sctx, done := context.WithTimeout(context.Background(), time.Second)
			defer done()
			front.Shutdown(sctx)
			cancel()
		})
		target = ln.Addr().String()
	}
	px, err := faultproxy.New("127.0.0.1:0", target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	a.startNode(map[string]Peer{b.name: {URL: "http://" + px.Addr(), Secret: testSecret}})
	src = a.mkfs("fs-src")
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	delay := 6 * lease / 10
	const step = 10 * time.Millisecond
	for d := step; d <= delay; d += step {
		px.SetReplyDelay(d)
		time.Sleep(2 * step)
	}
	px.SetReplyDelay(delay)
	slow := time.Now()
	testkit.WaitFor(t, "acknowledgements sent at the full delay to arrive", 10*lease, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		return st.LinkUp && st.LastContact.Sub(slow) > delay+lease/5
	})
	return a, b, src
}

// A lease granted by an acknowledgement runs from the source's time on
// what it answers, not from its arrival: with acknowledgements that take
// 0.6 lease to come back (steadily: the 2/5-lease silence check sees no
// gap), the source's lease, renewed on arrival, ran 1.6 leases past the
// destination's last contact, and a destination promoted meanwhile
// (its wait: 1.5 leases from that contact) was writable beside a source
// that still was. Here the delayed acknowledgements still arrive during
// the promotion's wait, and the lease must end before it does.
func TestDelayedAcksLeaseEndsBeforePromotion(t *testing.T) {
	t.Run("echo", func(t *testing.T) { delayedAcksThenPromote(t, false) })
	// A destination of a version before the echo: the lease runs from
	// the source time its acks say it has applied up to (Synced).
	t.Run("older-destination", func(t *testing.T) { delayedAcksThenPromote(t, true) })
}

func delayedAcksThenPromote(t *testing.T, older bool) {
	ctx := context.Background()
	const lease = time.Second
	a, b, src := slowAcks(t, lease, older)
	// A slow path back shortens the lease, it does not end it: the source
	// keeps taking writes (0.4 lease of each renewal is left).
	testkit.WaitFor(t, "a write on the source", 5*lease, func() bool {
		_, err := src.Mkdir(ctx, engine.RootCred, engine.RootIno, fmt.Sprint("w", time.Now().UnixNano()), engine.SetAttr{})
		return err == nil
	})
	p, err := b.n.Promote(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	waited := time.Now() // the promotion's wait ended before this
	// The acknowledgements held on the way back have all reached the
	// source once it sees its stream end (the destination's close comes
	// behind them).
	testkit.WaitFor(t, "the source to see its stream end", 10*lease, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		return !st.LinkUp
	})
	until := leaseUntil(t, a.n, "r1")
	heard := p.SourceHeard
	t.Logf("destination last heard the source at +0; source lease runs to %+v; promotion waited to %+v",
		until.Sub(heard).Round(time.Millisecond), waited.Sub(heard).Round(time.Millisecond))
	if limit := heard.Add(lease); until.After(limit) {
		t.Fatalf("the source's lease runs to %s after the destination last heard it: more than the %s lease; "+
			"the promotion waited until %s after it, the source was writable beside the promoted file system",
			until.Sub(heard).Round(time.Millisecond), lease, waited.Sub(heard).Round(time.Millisecond))
	}
	// And so the source stops its writes.
	testkit.WaitFor(t, "the source to refuse writes", 5*lease, func() bool {
		_, err := src.Mkdir(ctx, engine.RootCred, engine.RootIno, fmt.Sprint("x", time.Now().UnixNano()), engine.SetAttr{})
		return errors.Is(err, engine.ErrReadOnly)
	})
}

// The lease an acknowledgement grants runs from the source time of what it
// answers (Echo, or Synced from a destination that does not echo), never
// from its arrival, never backwards, never from a time past the source's
// now; a lease stop is lifted only by a lease that runs past now.
func TestLeaseRenewalRules(t *testing.T) {
	ctx := context.Background()
	const lease = 10 * time.Second
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	clock := t0
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	set := func(t time.Time) { mu.Lock(); clock = t; mu.Unlock() }
	a := newRegion(t, "us-east-1", func(o *Options) { o.Lease, o.Clock = lease, now })
	a.startNode(nil)
	src := a.mkfs("fs-src")
	o := &outbound{n: a.n, fs: src.Replica(), ctx: ctx, spec: OutboundSpec{ID: "r1", SourceFS: "fs-src", DestRegion: "us-west-2", DestFS: "fs-dst"}}
	echo, older := &stream{echo: true}, &stream{}
	check := func(what string, want time.Time) {
		t.Helper()
		o.mu.Lock()
		got := o.leaseUntil
		o.mu.Unlock()
		if !got.Equal(want) {
			t.Fatalf("%s: lease until %s, want %s", what, got.Format(time.StampMilli), want.Format(time.StampMilli))
		}
	}
	set(t0.Add(3 * time.Second))
	o.ackAt = now()
	if err := o.onAck(echo, &ack{Echo: t0.Add(time.Second), Synced: t0.Add(2 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	check("an echo sent at +1s, arriving at +3s", t0.Add(time.Second+lease))
	if err := o.onAck(echo, &ack{Synced: t0.Add(2 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	check("an ack without the echo it negotiated", t0.Add(time.Second+lease))
	if err := o.onAck(echo, &ack{Echo: t0}); err != nil {
		t.Fatal(err)
	}
	check("an older echo", t0.Add(time.Second+lease))
	if err := o.onAck(echo, &ack{Echo: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	check("an echo past now", t0.Add(time.Second+lease))
	if err := o.onAck(older, &ack{Echo: t0.Add(3 * time.Second), Synced: t0.Add(2 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	check("an older destination's Synced", t0.Add(2*time.Second+lease))
	if err := o.onAck(older, &ack{}); err != nil {
		t.Fatal(err)
	}
	check("an older destination's ack during an initial sync", t0.Add(2*time.Second+lease))

	// Stopped by the lease: an ack whose lease has run out already lifts
	// nothing; one that runs past now does.
	set(t0.Add(time.Minute))
	if err := src.Replica().Stop(ctx, engine.StopLease); err != nil {
		t.Fatal(err)
	}
	o.ackAt = now()
	if err := o.onAck(echo, &ack{Echo: t0.Add(time.Minute - lease - time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if src.Replica().Stops()&engine.StopLease == 0 {
		t.Fatal("an acknowledgement whose lease had run out lifted the lease's stop")
	}
	if err := o.onAck(echo, &ack{Echo: t0.Add(time.Minute - time.Second)}); err != nil {
		t.Fatal(err)
	}
	if src.Replica().Stops()&engine.StopLease != 0 {
		t.Fatal("an acknowledgement with a valid lease left the lease's stop")
	}
}
