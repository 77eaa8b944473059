package nfs

import (
	"bytes"
	"fmt"
	"sync"
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

// TestWriteBackRacesOtherWriter: a WRITE through a second mount target
// that lands between the moment a write-back chooses its time and its
// engine write (the hook injects it there, each round). The write-back
// chose its time from the file's ctime read before, outside its write's
// transaction: it gave the file its WRITE's time, older than the other
// WRITE's ctime, and the engine never moves a time back, so the ctime
// stayed the other WRITE's: a change of the data that no client could
// see by ctime. The time is now chosen from the ctime the write's
// transaction finds. Every change must move the ctime: the other
// WRITEs' and the write-backs', in their order.
func TestWriteBackRacesOtherWriter(t *testing.T) {
	const rounds = 5
	f := newFixture(t, envOpt{opts: Options{FlushDelay: time.Hour}})
	fh := f.create(t, f.root, "f", "")
	_, b := f.secondServer()
	type change struct {
		what  string
		ctime proto.Time
	}
	var (
		mu      sync.Mutex // guards changes, hookErr
		changes []change
		hookErr error
	)
	round := 0
	f.srv.wb.beforeWrite = func() {
		r, err := b.Write(f.ctx, fh, 4096, []byte(fmt.Sprintf("B%d", round)), proto.FileSync)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			hookErr = err
			return
		}
		changes = append(changes, change{fmt.Sprintf("round %d: the other mount target's WRITE", round), r.Wcc.After.Ctime})
	}
	for round = range rounds {
		if _, err := f.c.Write(f.ctx, fh, 0, []byte(fmt.Sprintf("A%d", round)), proto.Unstable); err != nil {
			t.Fatal(err)
		}
		if _, err := f.c.Commit(f.ctx, fh, 0, 0); err != nil {
			t.Fatal(err)
		}
		g, err := b.GetAttr(f.ctx, fh)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		changes = append(changes, change{fmt.Sprintf("round %d: the write-back", round), g.Attr.Ctime})
		mu.Unlock()
	}
	mu.Lock()
	defer mu.Unlock()
	if hookErr != nil {
		t.Fatal(hookErr)
	}
	if len(changes) != 2*rounds {
		t.Fatalf("%d changes, want %d: the hook did not run once per write-back", len(changes), 2*rounds)
	}
	unmoved := 0
	for i := 1; i < len(changes); i++ {
		p, c := changes[i-1].ctime, changes[i].ctime
		if c.Sec < p.Sec || c.Sec == p.Sec && c.Nsec <= p.Nsec {
			unmoved++
			t.Logf("%s left the ctime at %+v (after %s: %+v)", changes[i].what, c, changes[i-1].what, p)
		}
	}
	if unmoved > 0 {
		t.Errorf("%d of %d changes did not move the ctime", unmoved, len(changes)-1)
	}
}
