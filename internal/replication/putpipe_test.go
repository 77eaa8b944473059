package replication

import (
	"context"
	"math/rand/v2"
	"testing"
)

// Blocks pushed ahead of their records are stored, several at a time and
// across frames, before the records are applied: the destination never
// finds a streamed block missing, so none is pushed twice (a record
// applied too early would ask for its blocks again with a rewind).
func TestStreamedBlocksStoredBeforeRecords(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	src := a.mkfs("fs-src")
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	before, _ := a.n.OutboundStatus("r1")
	rng := rand.New(rand.NewPCG(5, 5))
	const files, perFile = 24, 12 // distinct blocks: files × perFile
	writeRandomFiles(t, ctx, src, rng, files, perFile)
	converged(t, src, b.fs("fs-dst"))
	after, _ := a.n.OutboundStatus("r1")
	if got := after.ShippedBlocks - before.ShippedBlocks; got != files*perFile {
		t.Fatalf("%d blocks pushed for %d distinct blocks written: the destination asked for some again", got, files*perFile)
	}
	if err := b.rep("fs-dst").Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
}
