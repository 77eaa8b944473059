package replication

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/replication/faultproxy"
	"github.com/regionfs/regionfs/internal/testkit"
)

// askedBlocks makes the destination ask for blocks for real, on a live
// stream, and returns the records the source sent and those it had to
// send (made durable) in that phase, and the asks. Blocks pushed on the
// stream are released on the replica (their files removed) and collected
// there; files written with the same data again reference the same
// blocks, which the stream remembers as pushed (stream.pushed) and does
// not push again unasked: their records reach a replica without them.
// Around each such file are many small ones (inline data), so that the
// records in flight behind an ask are many (a slow link). mid, when set,
// runs once everything is written, before the replica has caught up,
// with the first seq written.
func askedBlocks(t *testing.T, a, b *region, mid func(from uint64)) (sent, needed, asks uint64) {
	t.Helper()
	ctx := context.Background()
	src := a.mkfs("fs-src")
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	const files = 6
	data := writeBlockFiles(t, ctx, src, rand.New(rand.NewPCG(23, 1)), "f", files)
	converged(t, src, b.fs("fs-dst"))
	dst := b.fs("fs-dst")
	deletes := dst.Stats().Blocks.Deletes
	for i := range files {
		if _, err := src.Remove(ctx, engine.RootCred, engine.RootIno, fmt.Sprintf("f%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	converged(t, src, dst)
	// The replica's collector (every 50 ms here) deletes them once the
	// removals are durable.
	testkit.WaitFor(t, "the replica to collect the released blocks", 10*time.Second, func() bool {
		return dst.Stats().Blocks.Deletes-deletes >= files
	})
	o := a.n.outbound["r1"]
	st, _ := a.n.OutboundStatus("r1")
	recs, asked, durable := st.ShippedRecords, o.asks.Load(), a.rep("fs-src").DurableSeq()
	// The same stream: it remembers the blocks as pushed.
	rng := rand.New(rand.NewPCG(23, 2))
	small := make([]byte, 1<<10)
	const each = 50
	for i, d := range data {
		writeFile(t, ctx, src, fmt.Sprintf("g%03d", i), d)
		for j := range each {
			for k := range small {
				small[k] = byte(rng.Uint32())
			}
			writeFile(t, ctx, src, fmt.Sprintf("s%03d-%03d", i, j), small)
		}
	}
	if mid != nil {
		mid(durable + 1)
	}
	converged(t, src, b.fs("fs-dst"))
	st, _ = a.n.OutboundStatus("r1")
	sent, needed, asks = st.ShippedRecords-recs, a.rep("fs-src").DurableSeq()-durable, o.asks.Load()-asked
	t.Logf("%d records sent for %d, %d asks for blocks, %d blocks pushed in all", sent, needed, asks, st.ShippedBlocks)
	if asks == 0 {
		t.Fatalf("the destination never asked for a block: the test did not reach an ask")
	}
	return sent, needed, asks
}

// An ask for blocks is not a rewind: the destination asks for the blocks
// a record lacks (here: collected on the replica since the stream pushed
// them, see askedBlocks), keeps the records it could not apply, and the
// source pushes only those blocks and goes on from where it was
// (featureBlockAsks). Before, every ask made the source send again all
// the records from the replica's applied point: 1 605 records sent for
// 612 with 3 asks (a link of 256 KiB/s); 612 now. With a peer of an
// older version on either side every ask is a rewind, as before, and the
// replica converges all the same.
func TestAskedBlocksNoRewind(t *testing.T) {
	slow := func(px *faultproxy.Proxy) {
		px.SetBandwidth(256 << 10)
		px.SetPieceBytes(8 << 10)
	}
	t.Run("both", func(t *testing.T) {
		a, b, px := proxiedPair(t)
		slow(px)
		sent, needed, _ := askedBlocks(t, a, b, nil)
		if 5*sent > 6*needed {
			t.Fatalf("the source sent %d records for %d: an ask for blocks rewound the stream", sent, needed)
		}
		if err := b.rep("fs-dst").Verify(context.Background(), true); err != nil {
			t.Fatal(err)
		}
	})
	// The records kept for a block apply only once it is durable on the
	// replica: a crash right after they apply loses neither (a kept
	// record durable without its block would fail the full check).
	t.Run("crash", func(t *testing.T) {
		a, b, px := proxiedPair(t)
		slow(px)
		askedBlocks(t, a, b, func(start uint64) {
			// The first record that references a collected block (the
			// first of the second phase that adds one).
			recs, err := a.rep("fs-src").ReadJournal(context.Background(), start, 1<<20, 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			first := uint64(0)
			for _, r := range recs {
				if len(r.AddedRefs) > 0 {
					first = r.Seq
					break
				}
			}
			if first == 0 {
				t.Fatalf("no record from %d on adds a block", start)
			}
			testkit.WaitFor(t, "the records kept for a block asked for to apply", 20*time.Second, func() bool {
				_, applied, _ := b.rep("fs-dst").Applied()
				return applied >= first
			})
			if a.n.outbound["r1"].asks.Load() == 0 {
				t.Fatalf("record %d applied without an ask", first)
			}
			b.crash()
			b.restart(inboundR1(a))
		})
		if err := b.rep("fs-dst").Verify(context.Background(), true); err != nil {
			t.Fatal(err)
		}
	})
	// Past the bound on kept records the frames that follow are dropped,
	// and the rewind asked for once the kept ones apply brings them back:
	// the replica converges, every block in place.
	t.Run("bound", func(t *testing.T) {
		a, b, px := proxiedPair(t, func(o *Options) { o.maxKept = 8 })
		slow(px)
		sent, needed, _ := askedBlocks(t, a, b, nil)
		if sent <= needed {
			t.Fatalf("the source sent %d records for %d: the frames dropped past the bound were not sent again", sent, needed)
		}
		if err := b.rep("fs-dst").Verify(context.Background(), true); err != nil {
			t.Fatal(err)
		}
	})
	old := func(o *Options) { o.withheld = []string{featureBlockAsks} }
	for _, tc := range []struct {
		name     string
		src, dst []func(*Options)
	}{
		{"older-source", []func(*Options){old}, nil},
		{"older-destination", nil, []func(*Options){old}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newRegion(t, "us-east-1", tc.src...)
			b := newRegion(t, "us-west-2", tc.dst...)
			px, err := faultproxy.New("127.0.0.1:0", b.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { px.Close() })
			a.startNode(map[string]Peer{b.name: {URL: "http://" + px.Addr(), Secret: testSecret}})
			b.startNode(map[string]Peer{a.name: {URL: "http://" + a.addr, Secret: testSecret}})
			slow(px)
			// Every ask rewinds: at least the record that lacked a block
			// is sent again.
			if sent, needed, _ := askedBlocks(t, a, b, nil); sent <= needed {
				t.Fatalf("the source sent %d records for %d: with a peer of an older version an ask must rewind", sent, needed)
			}
			if err := b.rep("fs-dst").Verify(context.Background(), true); err != nil {
				t.Fatal(err)
			}
		})
	}
}
