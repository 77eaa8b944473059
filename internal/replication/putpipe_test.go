package replication

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/regionfs/regionfs/internal/engine"
)

// Blocks pushed ahead of their records are stored, several at a time and
// across frames, before the records are applied: the destination never
// finds a streamed block missing, so none is pushed twice (a record
// applied too early would ask for its blocks again with a rewind).
func TestStreamedBlocksStoredBeforeRecords(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	src, err := a.e.CreateFS(ctx, "fs-src", engine.FSOptions{BlockSize: engine.MinBlockSize})
	if err != nil {
		t.Fatal(err)
	}
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	before, _ := a.n.OutboundStatus("r1")
	rng := rand.New(rand.NewPCG(5, 5))
	const files, perFile = 24, 12 // distinct blocks: files × perFile
	buf := make([]byte, perFile*engine.MinBlockSize)
	for i := range files {
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		c, err := src.Create(ctx, engine.RootCred, engine.RootIno, fmt.Sprintf("f%02d", i), engine.CreateGuarded, engine.SetAttr{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := src.Write(ctx, engine.RootCred, c.Attr.Ino, 0, buf); err != nil {
			t.Fatal(err)
		}
	}
	converged(t, src, b.fs("fs-dst"))
	after, _ := a.n.OutboundStatus("r1")
	if got := after.ShippedBlocks - before.ShippedBlocks; got != files*perFile {
		t.Fatalf("%d blocks pushed for %d distinct blocks written: the destination asked for some again", got, files*perFile)
	}
	if err := b.rep("fs-dst").Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
}
