package engine

import (
	"bytes"
	"context"
	"runtime"
	"testing"
)

// TestReadWithinBlock: reads within one block return the block's content,
// holes and short blocks as zeros, and a whole block that has no pending
// extents comes straight from the cache of verified blocks: reading it
// again allocates nothing of its size (no copy per read; callers must not
// modify what Read returns). This is the copies-per-read regression guard:
// it fails when a change adds a copy of the block to the read path.
func TestReadWithinBlock(t *testing.T) {
	v := newEnv(t)
	fs := v.mkfs("a")
	ctx := context.Background()
	bs := fs.BlockSize()
	ino := must(fs.Create(ctx, RootCred, RootIno, "f", CreateGuarded, SetAttr{}, 0))(t).Attr.Ino
	data := bytes.Repeat([]byte{7}, bs)
	if _, _, err := fs.Write(ctx, RootCred, ino, 0, data); err != nil {
		t.Fatal(err)
	}
	// A short last block after a hole.
	if _, _, err := fs.Write(ctx, RootCred, ino, uint64(2*bs), []byte("tail")); err != nil {
		t.Fatal(err)
	}
	// Read twice: a block read from its file is cached on its second
	// read (blockCache.putRead).
	for range 2 {
		got, _, _, err := fs.Read(ctx, RootCred, ino, 0, bs)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
	}
	const reads = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range reads {
		got, _, _, err := fs.Read(ctx, RootCred, ino, 0, bs)
		if err != nil || len(got) != bs || got[0] != 7 || got[bs-1] != 7 {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / reads; per >= uint64(bs)/4 {
		t.Errorf("a cached whole-block read allocates %d bytes (block %d): the block is copied per read", per, bs)
	}
	hole, _, _, err := fs.Read(ctx, RootCred, ino, uint64(bs), bs)
	if err != nil || len(hole) != bs || !bytes.Equal(hole, make([]byte, bs)) {
		t.Fatalf("hole: %d bytes %v", len(hole), err)
	}
	tail, eof, _, err := fs.Read(ctx, RootCred, ino, uint64(2*bs), bs)
	if err != nil || string(tail) != "tail" || !eof {
		t.Fatalf("tail %q eof %v %v", tail, eof, err)
	}
	part, _, _, err := fs.Read(ctx, RootCred, ino, 0, 100)
	if err != nil || !bytes.Equal(part, data[:100]) {
		t.Fatalf("partial block read %v", err)
	}
	// Pending extents (a small write into the block) are applied to a
	// copy, never to the shared block.
	if _, _, err := fs.Write(ctx, RootCred, ino, 10, []byte("xyz")); err != nil {
		t.Fatal(err)
	}
	got, _, _, err := fs.Read(ctx, RootCred, ino, 0, bs)
	if err != nil || string(got[10:13]) != "xyz" || got[9] != 7 || got[13] != 7 {
		t.Fatalf("read with extent: %q %v", got[8:15], err)
	}
	ino2 := must(fs.Create(ctx, RootCred, RootIno, "g", CreateGuarded, SetAttr{}, 0))(t).Attr.Ino
	if _, _, err := fs.Write(ctx, RootCred, ino2, 0, data); err != nil {
		t.Fatal(err)
	}
	if got, _, _, err := fs.Read(ctx, RootCred, ino2, 0, bs); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("a file sharing the block reads %q…, %v", got[8:15], err)
	}
}
