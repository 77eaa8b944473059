package replication

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

// An initial sync over a slow link asks for each block once. The
// destination asks for the blocks a chunk references and lacks (a
// rewind); the chunks already on their way arrive meanwhile, and so does
// a resend the destination asked for again (a gap after 500 ms). A
// destination that asked again for blocks it had asked for and not yet
// received made the source send them again: about twice the data on a
// link slower than the window (ShippedBlocks counts every block the
// source pushed; each of the files' blocks is distinct).
func TestSlowLinkAsksEachBlockOnce(t *testing.T) {
	ctx := context.Background()
	a, b, px := proxiedPair(t, func(o *Options) { o.ChunkBytes = 1024 })
	px.SetBandwidth(2 << 20)
	px.SetPieceBytes(16 << 10)
	src := a.mkfs("fs-src")
	const files, perFile = 24, 2
	writeRandomFiles(t, ctx, src, rand.New(rand.NewPCG(21, 1)), files, perFile)
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	st, _ := a.n.OutboundStatus("r1")
	t.Logf("shipped %d blocks, %d bytes for %d distinct blocks", st.ShippedBlocks, st.ShippedBytes, files*perFile)
	if st.ShippedBlocks != files*perFile {
		t.Fatalf("the source pushed %d blocks for %d distinct ones: blocks asked for while on their way were asked for again",
			st.ShippedBlocks, files*perFile)
	}
}

// Blocks whose push a cut stream lost reach the destination once each on
// the next stream, however slow the link, and the records once. The
// link was cut with all of them still in the proxy, and the next stream
// replays the records that reference them, among many that reference
// none. Until each stream remembered its own pushes (pushed), the next
// stream took them for delivered and the destination asked for them; on
// a slow link the records already on their way kept arriving, behind the
// point it asked to resend from, long after it asked; a destination that
// asked again (a gap 500 ms after its ask) forgot what it had asked for
// and asked again for blocks that were on their way, and each of its asks
// made the source send the records again (1 199-1 286 records sent for
// 600 with one ask; 600 now).
func TestCutPushesAskedOnceOnSlowLink(t *testing.T) {
	ctx := context.Background()
	a, b, px := proxiedPair(t)
	src := a.mkfs("fs-src")
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	px.Partition()
	rng := rand.New(rand.NewPCG(21, 2))
	const files, every = 300, 25 // every 25th file has a block; the others inline data
	small := make([]byte, 1<<10)
	big := make([]byte, engine.MinBlockSize)
	for i := range files {
		data := small
		if i%every == 0 {
			data = big
		}
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		c, err := src.Create(ctx, engine.RootCred, engine.RootIno, fmt.Sprintf("f%03d", i), engine.CreateGuarded, engine.SetAttr{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := src.Write(ctx, engine.RootCred, c.Attr.Ino, 0, data); err != nil {
			t.Fatal(err)
		}
	}
	const blocks = files / every
	testkit.WaitFor(t, "the source to push blocks into the partitioned link", 10*time.Second, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		return st.ShippedBlocks > 0
	})
	// What the source pushed is in the proxy (or the sockets' buffers):
	// dropped with the connection.
	px.Reset()
	testkit.WaitFor(t, "the stream to end", 10*time.Second, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		return !st.LinkUp
	})
	st, _ := a.n.OutboundStatus("r1")
	lost, recs := st.ShippedBlocks, st.ShippedRecords
	px.SetBandwidth(256 << 10)
	px.SetPieceBytes(8 << 10)
	px.Heal()
	converged(t, src, b.fs("fs-dst"))
	st, _ = a.n.OutboundStatus("r1")
	replay := st.SourceDurable - 1 // records after the initial sync
	t.Logf("%d blocks pushed into the cut; then %d blocks, %d records for %d (%d before the cut), %d bytes shipped",
		lost, st.ShippedBlocks-lost, st.ShippedRecords-recs, replay, recs, st.ShippedBytes)
	if st.ShippedBlocks != lost+blocks {
		t.Fatalf("the source pushed %d blocks after the cut for %d (%d lost in it): blocks asked for while on their way were asked for again",
			st.ShippedBlocks-lost, blocks, lost)
	}
	// The new stream pushes the blocks with the records that need them:
	// no ask, no rewind, each record sent once (a fifth more allowed).
	if sent := st.ShippedRecords - recs; 5*sent > 6*replay {
		t.Fatalf("the source sent %d records after the cut for %d: rewinds asked for while the resend was on its way", sent, replay)
	}
}
