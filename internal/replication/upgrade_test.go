package replication

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/serve"
	"github.com/regionfs/regionfs/internal/testkit"
)

// rawConns is how many upgraded stream connections n holds.
func rawConns(n *Node) int {
	n.srvMu.Lock()
	defer n.srvMu.Unlock()
	return len(n.raw)
}

// serveBehind starts b's node (its peers: peers) loaded behind an HTTP
// server of the test's own, whose requests go to front with the node's
// Handler; both shut down with the test.
func serveBehind(t *testing.T, b *region, peers map[string]Peer, front func(h http.Handler, w http.ResponseWriter, r *http.Request)) {
	t.Helper()
	b.peers = peers
	b.n = New(Options{Region: b.name, Engine: b.e, Peers: peers, Hooks: b.hooks, ChunkBytes: 4096, Logger: b.log})
	b.n.Start()
	h := b.n.Handler()
	srv := serve.NewHTTP(serve.HTTPOptions{HTTP2: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		front(h, w, r)
	})})
	go srv.Serve(context.Background(), b.ln)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		b.n.Shutdown(sctx)
		srv.Shutdown(sctx)
	})
	b.n.Loaded()
}

// A stream to a destination of this version runs on its own connection,
// upgraded from HTTP/1.1 (no HTTP/2 request carries it); what it carries
// applies as before. The destination's Shutdown closes that connection
// (the server it was taken from no longer knows it), and the source sees
// its link go down.
func TestStreamUpgraded(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	src := a.mkfs("fs-src")
	w := newWorkload(t, 29, func() *engine.FS { return src })
	w.run(ctx, 40)
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	w.run(ctx, 40)
	converged(t, src, b.fs("fs-dst"))
	if up, h2 := a.n.upgrades.Load(), a.n.fallbacks.Load(); up == 0 || h2 != 0 {
		t.Fatalf("streams opened: %d upgraded, %d over HTTP/2; want them upgraded", up, h2)
	}
	if got := rawConns(b.n); got != 1 {
		t.Fatalf("the destination holds %d upgraded connections, want 1", got)
	}
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	b.n.Shutdown(sctx)
	if got := rawConns(b.n); got != 0 {
		t.Fatalf("after Shutdown the destination holds %d upgraded connections", got)
	}
	testkit.WaitFor(t, "the source to see the link down", 10*time.Second, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		return !st.LinkUp
	})
}

// A destination that does not upgrade streams (an older version: its
// endpoint has no GET route for them and answers 405) gets them over
// HTTP/2 as before; the source does not ask it again for noUpgradeFor.
func TestStreamFallsBackToHTTP2(t *testing.T) {
	ctx := context.Background()
	a, b, peers := sourceStarted(t)
	var asked atomic.Int64
	serveBehind(t, b, peers, func(h http.Handler, w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/replication/v1/stream" {
			asked.Add(1)
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})

	src := a.mkfs("fs-src")
	w := newWorkload(t, 31, func() *engine.FS { return src })
	w.run(ctx, 40)
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	w.run(ctx, 40)
	converged(t, src, b.fs("fs-dst"))
	if up, h2 := a.n.upgrades.Load(), a.n.fallbacks.Load(); up != 0 || h2 == 0 {
		t.Fatalf("streams opened: %d upgraded, %d over HTTP/2; want them over HTTP/2", up, h2)
	}
	if n := asked.Load(); n != 1 {
		t.Fatalf("the source asked %d times for an upgrade, want once", n)
	}
	// A new session (the stream cut: the destination's replica detached)
	// goes straight to HTTP/2.
	in := b.n.inbound["r1"]
	in.detach()
	testkit.WaitFor(t, "a second stream", 10*time.Second, func() bool { return a.n.fallbacks.Load() >= 2 })
	w.run(ctx, 10)
	converged(t, src, b.fs("fs-dst"))
	if n := asked.Load(); n != 1 {
		t.Fatalf("the source asked %d times for an upgrade, want once", n)
	}
}

// A node's Handler mounted on a server other than Serve's (a test's
// wrapper, an embedding server) upgrades streams as Serve's does, and
// Shutdown closes them. Before, the upgrade was allowed only between
// Serve and Shutdown: such a server answered each stream's upgrade and
// closed its connection at once, and the source, which cannot tell that
// from a network failure, asked again forever (the replconf harness's
// regions restarted behind region.wrap never took a stream).
func TestStreamUpgradedThroughHandler(t *testing.T) {
	ctx := context.Background()
	a, b, peers := sourceStarted(t)
	var streams atomic.Int64
	serveBehind(t, b, peers, func(h http.Handler, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/replication/v1/stream" {
			streams.Add(1)
		}
		h.ServeHTTP(w, r)
	})

	src := a.mkfs("fs-src")
	w := newWorkload(t, 37, func() *engine.FS { return src })
	w.run(ctx, 20)
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	if up, h2 := a.n.upgrades.Load(), a.n.fallbacks.Load(); up == 0 || h2 != 0 {
		t.Fatalf("streams opened: %d upgraded, %d over HTTP/2; want them upgraded", up, h2)
	}
	if n := streams.Load(); n != 1 {
		t.Fatalf("the source asked for %d streams, want 1", n)
	}
	if got := rawConns(b.n); got != 1 {
		t.Fatalf("the destination holds %d upgraded connections, want 1", got)
	}
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	b.n.Shutdown(sctx)
	if got := rawConns(b.n); got != 0 {
		t.Fatalf("after Shutdown the destination holds %d upgraded connections", got)
	}
	testkit.WaitFor(t, "the source to see the link down", 10*time.Second, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		return !st.LinkUp
	})
}

// A source ships nothing to a destination whose store is of a format
// older than the records it ships (engine.ReplicaFormat: inode records
// of version 2), which would take them for corrupt ones and answer EIO
// once promoted: the replication is in ERROR and says to upgrade the
// destination region first.
func TestOlderStoreFormatRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format int
		want   string
	}{
		{"format-3", 3, "store format 3) is older than the source's (4): upgrade the destination region first"},
		{"unsaid", -1, "is older than the source's (store format 4): upgrade the destination region first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			a := newRegion(t, "us-east-1")
			b := newRegion(t, "us-west-2", func(o *Options) { o.storeFormat = tc.format })
			startPair(a, b)
			src := a.mkfs("fs-src")
			w := newWorkload(t, 31, func() *engine.FS { return src })
			w.run(ctx, 20)
			link(t, a, b, "r1", "fs-src", "fs-dst")
			var st Status
			testkit.WaitFor(t, "the replication in ERROR", 10*time.Second, func() bool {
				st, _ = a.n.OutboundStatus("r1")
				return st.State == StateError
			})
			if !strings.Contains(st.Message, tc.want) {
				t.Errorf("status message %q, want it to say %q", st.Message, tc.want)
			}
			if st.LinkUp || st.Applied != 0 {
				t.Errorf("link up %v, applied %d: want nothing shipped", st.LinkUp, st.Applied)
			}
			if seq := b.fs("fs-dst").Replica().DurableSeq(); seq != 0 {
				t.Errorf("the destination applied up to %d", seq)
			}
		})
	}
}
