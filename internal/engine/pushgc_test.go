package engine

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/blocks"
)

// TestPushedBlockCollectedBeforeItsRecord: a block pushed to a replica
// ahead of the record that references it is not in flight until that
// record's apply looks at it (needBlocks), so a collection in between
// may delete it — here X, which an earlier record released on the replica
// and the next one references again. That costs a round trip (the apply
// names it missing and the source pushes it again, as it holds it: the
// journal pin keeps its release from the source's collector), never the
// block: no record is applied while a block it references is absent, and
// the replica ends with the file's data.
func TestPushedBlockCollectedBeforeItsRecord(t *testing.T) {
	ctx := context.Background()
	v, src, dst, tail, x, y := releasedThenReused(t)
	pushBlocks(t, src, dst, x, y)
	// The collection between the push and the apply.
	if _, err := v.e.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	missing, err := dst.Replica().missingBlocks(ctx, []blocks.ID{x, y})
	if err != nil {
		t.Fatal(err)
	}
	_, applied, _ := dst.Replica().Applied()
	seq, err := dst.Replica().Apply(ctx, tail)
	var mb *MissingBlocksError
	switch {
	case len(missing) == 0:
		if err != nil {
			t.Fatalf("apply with every block present: %v", err)
		}
	case !errors.As(err, &mb) || len(mb.IDs) != len(missing) || mb.IDs[0] != missing[0]:
		t.Fatalf("apply with %v collected: %d, %v; want those named missing", missing, seq, err)
	case seq >= tail[len(tail)-1].Seq || seq < applied:
		t.Fatalf("apply with %v collected reached %d (from %d): it applied the record that needs them", missing, seq, applied)
	}
	t.Logf("collected between push and apply: %v", missing)
	ship(t, ctx, src, dst, tail)
	b, err := dst.Lookup(ctx, RootCred, RootIno, "b")
	if err != nil {
		t.Fatal(err)
	}
	data, _, _, err := dst.Read(ctx, RootCred, b.Ino, 0, 2*MinBlockSize)
	if err != nil {
		t.Fatal(err)
	}
	want := append(bytes.Repeat([]byte("X"), MinBlockSize), bytes.Repeat([]byte("Y"), MinBlockSize)...)
	if !bytes.Equal(data, want) {
		t.Fatal("the replica's file differs from the source's after the pushed block was collected")
	}
}

// TestPushedBlocksSurviveCrashWithTheirApply: blocks pushed to a replica
// ahead of their records (PutBlock: their names are made durable by the
// next commit), one of them collected before the apply and pushed again,
// are on disk after a crash right after the apply returned: the applied
// point survives, and so does every block its records reference (the
// commit syncs the block directories before the batch). A record applied
// while a block it references was missing or collected would read back
// damaged here, or fail Verify.
func TestPushedBlocksSurviveCrashWithTheirApply(t *testing.T) {
	ctx := context.Background()
	v, src, dst, tail, x, y := releasedThenReused(t)
	pushBlocks(t, src, dst, x, y)
	if _, err := v.e.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	want := ship(t, ctx, src, dst, tail)
	v.crash()
	dst = v.fs("dst")
	if _, applied, _ := dst.Replica().Applied(); applied != want {
		t.Fatalf("applied point %d after the crash, want %d (Apply returned it durable)", applied, want)
	}
	b, err := dst.Lookup(ctx, RootCred, RootIno, "b")
	if err != nil {
		t.Fatal(err)
	}
	data, _, _, err := dst.Read(ctx, RootCred, b.Ino, 0, 2*MinBlockSize)
	if err != nil {
		t.Fatalf("read after the crash: %v", err)
	}
	if !bytes.Equal(data, append(bytes.Repeat([]byte("X"), MinBlockSize), bytes.Repeat([]byte("Y"), MinBlockSize)...)) {
		t.Fatal("the replica's file differs from the source's after the crash")
	}
	if err := dst.Replica().Verify(ctx, true); err != nil {
		t.Fatalf("verify after the crash: %v", err)
	}
}

// pushBlocks puts the blocks ids of src on dst, as the source's pushes
// ahead of their records do.
func pushBlocks(t *testing.T, src, dst *FS, ids ...blocks.ID) {
	t.Helper()
	ctx := t.Context()
	for _, id := range ids {
		data, err := src.Replica().getBlock(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.Replica().PutBlock(ctx, id, data); err != nil {
			t.Fatal(err)
		}
	}
}
