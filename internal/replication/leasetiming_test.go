package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
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

// The lease an acknowledgement grants runs from when the source sent what
// it answers (the time the destination echoes, or Synced from one that
// does not echo, looked up among the times this stream sent), never from
// its arrival, never backwards; a time the stream did not send renews
// nothing; a lease stop is lifted only by a lease that runs past now.
func TestLeaseRenewalRules(t *testing.T) {
	ctx := context.Background()
	const lease = 10 * time.Second
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := t0
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	at := func(d time.Duration) time.Time { mu.Lock(); defer mu.Unlock(); clock = t0.Add(d); return clock }
	a := newRegion(t, "us-east-1", func(o *Options) { o.Lease, o.Clock = lease, now })
	a.startNode(nil)
	src := a.mkfs("fs-src")
	o := &outbound{n: a.n, fs: src.Replica(), ctx: ctx, leased: make(chan struct{}), spec: OutboundSpec{ID: "r1", SourceFS: "fs-src", DestRegion: "us-west-2", DestFS: "fs-dst"}}
	newStream := func(echo bool) *stream {
		return &stream{echo: echo, out: framer{key: []byte("k"), dir: dirToDest}, w: io.Discard, flush: func() error { return nil }}
	}
	hb := func(s *stream, d time.Duration) time.Time {
		t.Helper()
		sent := at(d)
		if err := o.heartbeat(s); err != nil {
			t.Fatal(err)
		}
		return sent.UTC()
	}
	ackAt := func(s *stream, d time.Duration, a *ack) {
		t.Helper()
		at(d)
		o.mu.Lock()
		o.ackAt = now()
		o.mu.Unlock()
		if err := o.received(s, a); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, want time.Time) {
		t.Helper()
		if got := leaseUntil(t, a.n, "r1"); !got.Equal(want) {
			t.Fatalf("%s: lease until %s, want %s", what, got.Format(time.StampMilli), want.Format(time.StampMilli))
		}
	}
	a.n.mu.Lock()
	a.n.outbound["r1"] = o // for leaseUntil; no loop runs
	a.n.mu.Unlock()
	defer func() {
		a.n.mu.Lock()
		delete(a.n.outbound, "r1")
		a.n.mu.Unlock()
	}()

	s := newStream(true)
	h1, h2 := hb(s, time.Second), hb(s, 2*time.Second)
	ackAt(s, 3*time.Second, &ack{Echo: h1, Synced: h2})
	check("an echo of a heartbeat sent at +1s, arriving at +3s", h1.Add(lease))
	ackAt(s, 3*time.Second, &ack{Synced: h2})
	check("an ack without the echo it negotiated", h1.Add(lease))
	ackAt(s, 3*time.Second, &ack{Echo: t0.Add(1500 * time.Millisecond)})
	check("an echo of a time never sent", h1.Add(lease))
	ackAt(s, 3*time.Second, &ack{Echo: h2})
	check("an echo of the next heartbeat", h2.Add(lease))
	ackAt(s, 3*time.Second, &ack{Echo: h1})
	check("an older echo", h2.Add(lease))

	old := newStream(false)
	h4 := hb(old, 4*time.Second)
	ackAt(old, 5*time.Second, &ack{Echo: h4.Add(time.Second), Synced: h4})
	check("an older destination's Synced", h4.Add(lease))
	ackAt(old, 5*time.Second, &ack{})
	check("an older destination's ack during an initial sync", h4.Add(lease))
	ackAt(old, 5*time.Second, &ack{Synced: h2})
	check("a Synced this stream did not send", h4.Add(lease))

	// Stopped by the lease: an ack whose lease has run out already lifts
	// nothing; one that runs past now does.
	if err := src.Replica().Stop(ctx, engine.StopLease); err != nil {
		t.Fatal(err)
	}
	s = newStream(true)
	expired, valid := hb(s, time.Minute-lease-time.Millisecond), hb(s, time.Minute-time.Second)
	ackAt(s, time.Minute, &ack{Echo: expired})
	if src.Replica().Stops()&engine.StopLease == 0 {
		t.Fatal("an acknowledgement whose lease had run out lifted the lease's stop")
	}
	ackAt(s, time.Minute, &ack{Echo: valid})
	if src.Replica().Stops()&engine.StopLease != 0 {
		t.Fatal("an acknowledgement with a valid lease left the lease's stop")
	}
}

// The lease runs on the source's own clock readings, as taken when it sent
// what the destination echoes (with Go's monotonic reading), not on the
// wall-clock time that came back on the wire: a backwards step of the
// source's wall clock (NTP, a resumed VM) after a renewal must not keep the
// source writable that much longer. Go cannot make a time whose wall clock
// steps without its monotonic reading, so this checks that the lease's end
// is that very reading plus the lease.
func TestLeaseRunsOnTheSourcesOwnClock(t *testing.T) {
	ctx := context.Background()
	const lease = 10 * time.Second
	a := newRegion(t, "us-east-1", func(o *Options) { o.Lease = lease })
	a.startNode(nil)
	src := a.mkfs("fs-src")
	o := &outbound{n: a.n, fs: src.Replica(), ctx: ctx, leased: make(chan struct{}), spec: OutboundSpec{ID: "r1", SourceFS: "fs-src", DestRegion: "us-west-2", DestFS: "fs-dst"}}
	s := &stream{echo: true, out: framer{key: []byte("k"), dir: dirToDest}, w: io.Discard, flush: func() error { return nil }}
	if err := o.heartbeat(s); err != nil {
		t.Fatal(err)
	}
	sent := s.sent[len(s.sent)-1].at
	wire := time.Unix(0, sent.UnixNano()).UTC() // as the destination echoes it
	o.ackAt = a.n.now()
	if err := o.received(s, &ack{Echo: wire}); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	until := o.leaseUntil
	o.mu.Unlock()
	if until != sent.Add(lease) || !strings.Contains(until.String(), "m=") {
		t.Fatalf("lease until %s; want the heartbeat's own clock reading plus the lease, %s", until, sent.Add(lease))
	}
}

// A destination restarted while cut off from its source has no contact
// with it in this process, but acknowledged it before: the lease its
// acknowledgements renewed still runs. A promotion right after the
// restart waits the lease and half again from the start. Before, its
// wait counted from no contact at all (none) and the source stayed
// writable beside the promoted destination for the rest of its lease.
func TestRestartedDestinationWaitsForTheLease(t *testing.T) {
	ctx := context.Background()
	const lease = 3 * time.Second
	a, b, px := proxiedPair(t, func(o *Options) { o.Lease = lease })
	src := a.mkfs("fs-src")
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	px.Partition()
	b.crash()
	b.restart(inboundR1(a))
	if _, err := b.n.Promote(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()
	if until := leaseUntil(t, a.n, "r1"); until.After(promoted) {
		t.Fatalf("the destination was promoted %s before the source's lease ran out: two writable regions",
			until.Sub(promoted).Round(time.Millisecond))
	}
}
