package engine

import (
	"bytes"
	"context"
	"testing"
)

// TestReadResultIsPrivate: the slice Read returns for a whole block (the
// block's own copy, since the NFS read path no longer copies it again) may
// be modified by the caller without changing what later reads return, and
// reads within one block see holes and short blocks as zeros.
func TestReadResultIsPrivate(t *testing.T) {
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
	for range 2 {
		got, _, _, err := fs.Read(ctx, RootCred, ino, 0, bs)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
		for i := range got {
			got[i] = 0
		}
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
}
