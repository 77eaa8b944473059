package replication

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

// TestUnknownReplicationBeforeLoaded: a destination that has not loaded
// its configurations yet (a restart, between its listener's start and
// its control plane's open) answers a stream it does not know "try
// again", so the source keeps its configuration; once loaded, the same
// unknown stream is Gone and the source is told.
func TestUnknownReplicationBeforeLoaded(t *testing.T) {
	ctx := context.Background()
	a, b, peers := sourceStarted(t)
	// b starts as cmd/regionfs does, before its configurations are in.
	b.peers = peers
	b.n = New(Options{Region: b.name, Engine: b.e, Peers: peers, Hooks: b.hooks, ChunkBytes: 4096})
	b.n.Start()
	go b.n.Serve(ctx, b.ln)

	a.mkfs("fs-src")
	if err := a.n.AddOutbound(OutboundSpec{ID: "r1", SourceFS: "fs-src", DestRegion: b.name, DestFS: "fs-dst"}); err != nil {
		t.Fatal(err)
	}
	// Long enough for several attempts (the first retries come fast).
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if g := a.hooks.sourceGone(); len(g) != 0 {
			t.Fatalf("source told its replication is gone by a destination still starting: %v", g)
		}
		if st, _ := a.n.OutboundStatus("r1"); st.State == StateError {
			t.Fatalf("source in %s while the destination is starting", st.State)
		}
		time.Sleep(50 * time.Millisecond) // watched for a time, not waited for
	}
	// Control-plane calls wait too: "no such configuration" from a
	// region that has not loaded its configurations would be believed.
	var ce *CallError
	if err := a.n.Call(ctx, b.name, "delete", map[string]string{"ID": "r1"}, nil); !errors.As(err, &ce) || ce.Status != http.StatusServiceUnavailable {
		t.Fatalf("peer call to a region still loading its configurations: %v", err)
	}
	b.n.Loaded()
	if err := a.n.Call(ctx, b.name, "delete", map[string]string{"ID": "r1"}, nil); err != nil {
		t.Fatalf("peer call once loaded: %v", err)
	}
	testkit.WaitFor(t, "source to learn its replication is unknown at the destination", 20*time.Second, func() bool {
		g := a.hooks.sourceGone()
		return len(g) == 1 && g[0] == "r1 promoted=false epoch=0 recovery=0"
	})
}

// sourceStarted makes us-east-1 and us-west-2 and starts us-east-1's node
// with both as peers; the test starts us-west-2's node its own way.
func sourceStarted(t *testing.T) (a, b *region, peers map[string]Peer) {
	t.Helper()
	a = newRegion(t, "us-east-1")
	b = newRegion(t, "us-west-2")
	peers = map[string]Peer{
		a.name: {URL: "http://" + a.addr, Secret: testSecret},
		b.name: {URL: "http://" + b.addr, Secret: testSecret},
	}
	a.startNode(peers)
	return a, b, peers
}
