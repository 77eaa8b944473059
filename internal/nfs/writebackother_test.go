package nfs

import (
	"bytes"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// TestWriteBackAfterOtherWriter: two mount targets of one file system
// (two Servers). A's UNSTABLE WRITE of block 3 is buffered by the first;
// B's FILE_SYNC WRITE of the same block lands through the second at
// once; B reads blocks 0-2, and its server reads block 3 ahead (B's
// data). A's COMMIT writes A's data back, last: the file holds A's data
// now, and its ctime must move past the one B's WRITE gave it. The
// write-back gave the file A's WRITE's time, which the engine never lets
// move a time back, so size, mtime and ctime stayed those after B's
// WRITE: B's server served its read-ahead of B's data as current, and a
// client revalidating its cache by those attributes (Linux, regionfs
// mount) would have kept B's data after A's close.
func TestWriteBackAfterOtherWriter(t *testing.T) {
	f := newFixture(t, envOpt{})
	fh := blocksFile(t, f, 8)
	h, err := parseHandle(fh)
	if err != nil {
		t.Fatal(err)
	}
	srvB, b := f.secondServer()
	dataA, dataB := bytes.Repeat([]byte{0xaa}, 1<<20), bytes.Repeat([]byte{0xbb}, 1<<20)

	if _, err := f.c.Write(f.ctx, fh, 3<<20, dataA, proto.Unstable); err != nil {
		t.Fatal(err)
	}
	if !f.srv.wb.has(f.fs, h.ino) {
		t.Fatal("A's UNSTABLE WRITE was not buffered: the test needs it buffered")
	}
	wb, err := b.Write(f.ctx, fh, 3<<20, dataB, proto.FileSync)
	if err != nil {
		t.Fatal(err)
	}
	afterB := wb.Wcc.After.Ctime
	for i := range 3 {
		if _, err := b.Read(f.ctx, fh, uint64(i)<<20, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	k := fileKey{f.fs, h.ino}
	for deadline := time.Now().Add(10 * time.Second); !srvB.ra.readyChunk(k, 3<<20, 1<<20); {
		if time.Now().After(deadline) {
			t.Fatal("B's server did not read block 3 ahead")
		}
		time.Sleep(time.Millisecond)
	}

	if _, err := f.c.Commit(f.ctx, fh, 0, 0); err != nil {
		t.Fatal(err)
	}
	rd, err := b.Read(f.ctx, fh, 3<<20, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rd.Data, dataA) {
		t.Errorf("READ of block 3 through B's server after A's COMMIT: B's data (%x...), want A's (%x...)", rd.Data[:4], dataA[:4])
	}
	if rd.Attr == nil || rd.Attr.Ctime == afterB {
		t.Errorf("ctime after A's write-back: %+v, the same as after B's WRITE (%+v)", rd.Attr, afterB)
	}
}

// TestWriteBackAfterLink: a LINK changes a file with buffered UNSTABLE
// data (its ctime) and leaves the data buffered; the COMMIT's write-back
// then changes the data after that ctime, so it gives the file a later
// one, which GETATTR shows before the COMMIT already: the writer's
// client sees no time change with the COMMIT, and what every other
// server and replica sees of the file (the engine's attributes) changes
// with the data.
func TestWriteBackAfterLink(t *testing.T) {
	f, fh, g := bufferedFile(t)
	if _, err := f.c.Link(f.ctx, fh, f.root, "hard"); err != nil {
		t.Fatal(err)
	}
	linked, err := f.fs.GetAttr(f.ctx, g.Attr.FileID)
	if err != nil {
		t.Fatal(err)
	}
	if !f.srv.wb.has(f.fs, g.Attr.FileID) || linked.Size != 0 {
		t.Fatal("LINK wrote the buffered data: the test needs it buffered")
	}
	shown, err := f.c.GetAttr(f.ctx, fh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Commit(f.ctx, fh, 0, 0); err != nil {
		t.Fatal(err)
	}
	after, err := f.c.GetAttr(f.ctx, fh)
	if err != nil {
		t.Fatal(err)
	}
	if after.Attr.Ctime != shown.Attr.Ctime || after.Attr.Mtime != shown.Attr.Mtime {
		t.Errorf("the COMMIT changed the times the writer was shown: ctime %+v -> %+v, mtime %+v -> %+v",
			shown.Attr.Ctime, after.Attr.Ctime, shown.Attr.Mtime, after.Attr.Mtime)
	}
	if after.Attr.Ctime == proto.TimeOf(linked.Ctime) {
		t.Errorf("the write-back left ctime at the LINK's (%+v): the data changed unseen", after.Attr.Ctime)
	}
}
