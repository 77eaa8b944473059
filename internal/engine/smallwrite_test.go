package engine

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// TestSmallFileWriteReads is a guard of the create probe of issue 16
// (counted, not timed): the first write of a new small file (its data
// inline in the metadata) reads the store only for what it needs — the
// inode — and not the inline key, which an empty file cannot have valid
// bytes in (perf14: a point read of a missing key, ~1.3 % of the server's
// CPU per probe file). It fails when the write looks the key up again,
// and checks the data and a later write's read-modify-write.
func TestSmallFileWriteReads(t *testing.T) {
	v := newEnv(t)
	fs := v.mkfs("fs")
	ctx := context.Background()
	dir := must(fs.Mkdir(ctx, RootCred, RootIno, "d", SetAttr{}))(t).Attr.Ino
	data := bytes.Repeat([]byte("s"), 4096)
	const files = 20
	var gets uint64
	var inos []uint64
	for i := range files {
		ent := must(fs.Create(ctx, RootCred, dir, fmt.Sprint("f", i), CreateGuarded, SetAttr{}, 0))(t)
		g := v.kv.Gets()
		if _, _, err := fs.Write(ctx, RootCred, ent.Attr.Ino, 0, data); err != nil {
			t.Fatal(err)
		}
		gets += v.kv.Gets() - g
		inos = append(inos, ent.Attr.Ino)
	}
	t.Logf("%d first writes of 4 KiB: %d store reads", files, gets)
	if gets > files {
		t.Errorf("%d first writes of 4 KiB to new files: %d store reads, want at most %d (the inode each)", files, gets, files)
	}
	for i, ino := range inos {
		if _, _, err := fs.Write(ctx, RootCred, ino, 4090, []byte("tail")); err != nil {
			t.Fatal(err)
		}
		got, _, _, err := fs.Read(ctx, RootCred, ino, 0, 8192)
		if err != nil {
			t.Fatal(err)
		}
		if want := append(bytes.Repeat([]byte("s"), 4090), "tailss"...); !bytes.Equal(got, want) {
			t.Fatalf("file %d: %d bytes read back, not the data written", i, len(got))
		}
	}
}
