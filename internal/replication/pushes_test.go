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

// writeBlockFiles creates n files named prefix%03d in fs, each of one
// MinBlockSize block of data from rng, and returns their contents.
func writeBlockFiles(t *testing.T, ctx context.Context, fs *engine.FS, rng *rand.Rand, prefix string, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range n {
		data := make([]byte, engine.MinBlockSize)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		writeFile(t, ctx, fs, fmt.Sprintf("%s%03d", prefix, i), data)
		out = append(out, data)
	}
	return out
}

// writeFile creates name in fs's root with data.
func writeFile(t *testing.T, ctx context.Context, fs *engine.FS, name string, data []byte) {
	t.Helper()
	c, err := fs.Create(ctx, engine.RootCred, engine.RootIno, name, engine.CreateGuarded, engine.SetAttr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := fs.Write(ctx, engine.RootCred, c.Attr.Ino, 0, data); err != nil {
		t.Fatal(err)
	}
}

// A stream remembers the blocks it pushed, not the replication: after a
// cut the next stream pushes the blocks its records reference again,
// unasked. The pushes the cut dropped (in the link when it broke) were
// remembered by the replication, so the next stream sent the records
// that reference them without them, and the destination asked for each
// (a round trip, and a rewind, per batch of records that needed one).
func TestCutStreamForgetsItsPushes(t *testing.T) {
	ctx := context.Background()
	a, b, px := proxiedPair(t)
	src := a.mkfs("fs-src")
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	px.Partition()
	const files = 6
	writeBlockFiles(t, ctx, src, rand.New(rand.NewPCG(22, 3)), "f", files)
	testkit.WaitFor(t, "the source to push blocks into the partitioned link", 10*time.Second, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		return st.ShippedBlocks >= files
	})
	px.Reset() // what the link held is dropped with the connection
	testkit.WaitFor(t, "the stream to end", 10*time.Second, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		return !st.LinkUp
	})
	st, _ := a.n.OutboundStatus("r1")
	lost, asks := st.ShippedBlocks, a.n.outbound["r1"].asks.Load()
	px.Heal()
	converged(t, src, b.fs("fs-dst"))
	st, _ = a.n.OutboundStatus("r1")
	asked := a.n.outbound["r1"].asks.Load() - asks
	t.Logf("%d blocks pushed into the cut; then %d blocks pushed, %d asks", lost, st.ShippedBlocks-lost, asked)
	if asked != 0 {
		t.Errorf("the destination asked %d times for blocks after the cut: the new stream took the cut one's pushes for delivered", asked)
	}
	if got := st.ShippedBlocks - lost; got != files {
		t.Errorf("the source pushed %d blocks after the cut, want %d (each once)", got, files)
	}
}
