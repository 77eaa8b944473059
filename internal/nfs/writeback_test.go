package nfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestDirtyModel checks the buffer's insert and take against a byte-array
// model with random writes.
func TestDirtyModel(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	const size = 1 << 16
	const bs = 4096
	for round := range 200 {
		model := make([]byte, size)
		have := make([]bool, size)
		var d dirty
		var taken []extent
		for range 1 + rng.IntN(40) {
			off := rng.IntN(size - 1)
			n := 1 + rng.IntN(min(size-off, 9000))
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			copy(model[off:], data)
			for i := off; i < off+n; i++ {
				have[i] = true
			}
			d.insert(extent{off: uint64(off), data: data})
			if rng.IntN(5) == 0 {
				taken = append(taken, d.take(rng.IntN(2) == 0, bs)...)
			}
		}
		// Invariants: sorted, not overlapping, buffered counted.
		var sum int64
		for i, x := range d.ext {
			sum += int64(len(x.data))
			if len(x.data) == 0 || i > 0 && d.ext[i-1].end() > x.off {
				t.Fatalf("round %d: extents %d and %d overlap or are empty", round, i-1, i)
			}
		}
		if sum != d.buffered {
			t.Fatalf("round %d: buffered %d, extents hold %d", round, d.buffered, sum)
		}
		// Taken (in order) then buffered reproduces the model.
		got := make([]byte, size)
		covered := make([]bool, size)
		for _, x := range append(taken, d.ext...) {
			copy(got[x.off:], x.data)
			for i := x.off; i < x.end(); i++ {
				covered[i] = true
			}
		}
		for i := range size {
			if covered[i] != have[i] || have[i] && got[i] != model[i] {
				t.Fatalf("round %d: byte %d: covered %v want %v, %d want %d", round, i, covered[i], have[i], got[i], model[i])
			}
		}
		// A partial take leaves no whole aligned block of a run behind.
		d.take(false, bs)
		for i := 0; i < len(d.ext); {
			j := i + 1
			for j < len(d.ext) && d.ext[j].off == d.ext[j-1].end() {
				j++
			}
			lo, hi := (d.ext[i].off+bs-1)/bs*bs, d.ext[j-1].end()/bs*bs
			if hi > lo {
				t.Fatalf("round %d: run [%d,%d) still holds whole blocks", round, d.ext[i].off, d.ext[j-1].end())
			}
			i = j
		}
	}
}

// TestUnstableModel: random UNSTABLE writes (with background flushes of
// whole blocks racing them) read back right before and after COMMIT, and
// land in the engine exactly.
func TestUnstableModel(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	f := newFixture(t, envOpt{fsOpts: engine.FSOptions{BlockSize: engine.MinBlockSize}, opts: Options{FlushDelay: 20 * time.Millisecond}})
	fh := f.create(t, f.root, "model", "")
	ino := f.lookup(t, f.root, "model").Attr.FileID
	const size = 1 << 20
	model := make([]byte, 0, size)
	for step := range 300 {
		off := rng.IntN(size - 1)
		if rng.IntN(3) == 0 && len(model) < size-1 { // sequential runs make whole blocks
			off = len(model)
		}
		n := 1 + rng.IntN(min(size-off, 100<<10))
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		stable := proto.Unstable
		if rng.IntN(10) == 0 {
			stable = proto.FileSync
		}
		if _, err := f.c.Write(f.ctx, fh, uint64(off), data, stable); err != nil {
			t.Fatal(err)
		}
		if off+n > len(model) {
			model = append(model, make([]byte, off+n-len(model))...)
		}
		copy(model[off:], data)
		if rng.IntN(8) == 0 {
			checkContent(t, f, fh, model, step)
		}
		if rng.IntN(30) == 0 {
			if _, err := f.c.Commit(f.ctx, fh, 0, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkContent(t, f, fh, model, -1)
	if _, err := f.c.Commit(f.ctx, fh, 0, 0); err != nil {
		t.Fatal(err)
	}
	got, _, at, err := f.fs.Read(f.ctx, engine.RootCred, ino, 0, size)
	if err != nil || at.Size != uint64(len(model)) || !bytes.Equal(got, model) {
		t.Fatalf("engine after commit: size %d want %d, equal %v, %v", at.Size, len(model), bytes.Equal(got, model), err)
	}
	if f.srv.wb.has(f.fs, ino) {
		t.Fatal("buffer state left after commit")
	}
}

func checkContent(t *testing.T, f *fixture, fh proto.FH, model []byte, step int) {
	t.Helper()
	g, err := f.c.GetAttr(f.ctx, fh)
	if err != nil || g.Attr.Size != uint64(len(model)) {
		t.Fatalf("step %d: size %d, want %d (%v)", step, g.Attr.Size, len(model), err)
	}
	var got []byte
	for off := 0; ; {
		rd, err := f.c.Read(f.ctx, fh, uint64(off), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rd.Data...)
		off += len(rd.Data)
		if rd.EOF || len(rd.Data) == 0 {
			break
		}
	}
	if !bytes.Equal(got, model) {
		for i := range min(len(got), len(model)) {
			if got[i] != model[i] {
				t.Fatalf("step %d: first difference at %d of %d (read %d bytes)", step, i, len(model), len(got))
			}
		}
		t.Fatalf("step %d: read %d bytes, want %d", step, len(got), len(model))
	}
}

// TestUnstableThenSetAttr: a truncation or an explicit mtime after
// UNSTABLE writes is not overtaken by the buffered data.
func TestUnstableThenSetAttr(t *testing.T) {
	f := newFixture(t, envOpt{})
	fh := f.create(t, f.root, "f", "")
	f.c.Write(f.ctx, fh, 0, bytes.Repeat([]byte("a"), 5000), proto.Unstable)
	r, err := f.c.SetAttr(f.ctx, fh, proto.Sattr{Size: ptr(uint64(10))}, nil)
	if err != nil || r.Wcc.After.Size != 10 {
		t.Fatalf("truncate %+v %v", r.Wcc.After, err)
	}
	mt := proto.Time{Sec: 1234567890}
	f.c.Write(f.ctx, fh, 100, []byte("b"), proto.Unstable)
	if _, err := f.c.SetAttr(f.ctx, fh, proto.Sattr{Mtime: proto.SetTime{How: proto.SetToClientTime, Time: mt}}, nil); err != nil {
		t.Fatal(err)
	}
	f.c.Commit(f.ctx, fh, 0, 0)
	g, _ := f.c.GetAttr(f.ctx, fh)
	if g.Attr.Size != 101 || g.Attr.Mtime != mt {
		t.Fatalf("after commit: size %d mtime %v", g.Attr.Size, g.Attr.Mtime)
	}
	// CREATE UNCHECKED with size 0 truncates buffered data too.
	f.c.Write(f.ctx, fh, 0, []byte("zzzz"), proto.Unstable)
	if _, err := f.c.Create(f.ctx, f.root, "f", proto.Unchecked, proto.Sattr{Size: ptr(uint64(0))}); err != nil {
		t.Fatal(err)
	}
	f.c.Commit(f.ctx, fh, 0, 0)
	if g, _ := f.c.GetAttr(f.ctx, fh); g.Attr.Size != 0 {
		t.Fatalf("size after unchecked create %d", g.Attr.Size)
	}
}

// bufferedFile makes a fixture whose file "f" holds 8 bytes of buffered
// UNSTABLE data, and returns it with the file's GETATTR. The data stays
// buffered for the test's length (the flusher would write it after
// FlushDelay, a second by default, which a loaded machine can take
// between two calls).
func bufferedFile(t *testing.T) (*fixture, proto.FH, *proto.GetAttrRes) {
	t.Helper()
	f := newFixture(t, envOpt{opts: Options{FlushDelay: time.Hour}})
	fh := f.create(t, f.root, "f", "")
	if _, err := f.c.Write(f.ctx, fh, 0, []byte("buffered"), proto.Unstable); err != nil {
		t.Fatal(err)
	}
	g, err := f.c.GetAttr(f.ctx, fh)
	if err != nil {
		t.Fatal(err)
	}
	return f, fh, g
}

// TestUnstableSetAttrGuard: a guarded SETATTR of a file with buffered
// UNSTABLE data holds when its guard is the ctime GETATTR showed (buffered
// writes included), and a guard that does not match answers
// NFS3ERR_NOT_SYNC without changing anything, the data left buffered.
// Both were wrong: the buffered data was written first, which gave the
// file a new ctime, so the guard the client had just read never matched,
// and the refused call had changed the file's times.
func TestUnstableSetAttrGuard(t *testing.T) {
	f, fh, g := bufferedFile(t)
	bad := g.Attr.Ctime
	bad.Nsec = (bad.Nsec + 1) % 1e9
	_, err := f.c.SetAttr(f.ctx, fh, proto.Sattr{Mode: ptr(uint32(0o600))}, &bad)
	wantStatus(t, err, proto.ErrNotSync)
	if !f.srv.wb.has(f.fs, g.Attr.FileID) {
		t.Fatal("a refused SETATTR wrote the buffered data")
	}
	g2, _ := f.c.GetAttr(f.ctx, fh)
	if g2.Attr != g.Attr {
		t.Fatalf("a refused SETATTR changed the attributes:\n%+v\n%+v", g.Attr, g2.Attr)
	}
	ct := g.Attr.Ctime
	r, err := f.c.SetAttr(f.ctx, fh, proto.Sattr{Mode: ptr(uint32(0o600))}, &ct)
	if err != nil {
		t.Fatalf("SETATTR guarded by the ctime GETATTR showed: %v", err)
	}
	if r.Wcc.After.Mode != 0o600 || r.Wcc.After.Size != 8 {
		t.Fatalf("after: %+v", r.Wcc.After)
	}
	rd, err := f.c.Read(f.ctx, fh, 0, 100)
	if err != nil || string(rd.Data) != "buffered" {
		t.Fatalf("read %q %v", rd.Data, err)
	}
}

// TestUnstableRefusedSetAttr: a SETATTR of a file with buffered UNSTABLE
// data that the caller may not make (chmod, truncate, set times by
// someone else; a size past the largest) is refused before the data is
// written, so the refusal
// changes nothing: the data was written first, which gave the file new
// times.
func TestUnstableRefusedSetAttr(t *testing.T) {
	f := newFixture(t, envOpt{opts: Options{FlushDelay: time.Hour}})
	fh := f.create(t, f.root, "f", "")
	stranger := f.dialAs(2000, 2000)
	for _, sa := range []proto.Sattr{
		{Mode: ptr(uint32(0o666))},
		{Size: ptr(uint64(1))},
		{Mtime: proto.SetTime{How: proto.SetToServerTime}},
		{Atime: proto.SetTime{How: proto.SetToClientTime, Time: proto.Time{Sec: 5}}},
		{Size: ptr(uint64(engine.MaxFileSize + 1))},
	} {
		if _, err := f.c.Write(f.ctx, fh, 0, []byte("buffered"), proto.Unstable); err != nil {
			t.Fatal(err)
		}
		g, err := f.c.GetAttr(f.ctx, fh)
		if err != nil {
			t.Fatal(err)
		}
		if sa.Size != nil && *sa.Size > engine.MaxFileSize {
			// The owner, past the largest size.
			_, err = f.c.SetAttr(f.ctx, fh, sa, nil)
			wantStatus(t, err, proto.ErrFBig)
		} else if _, err := stranger.SetAttr(f.ctx, fh, sa, nil); !errors.Is(err, proto.ErrPerm) && !errors.Is(err, proto.ErrAcces) {
			t.Fatalf("%+v by a stranger: %v", sa, err)
		}
		if !f.srv.wb.has(f.fs, g.Attr.FileID) {
			t.Fatalf("%+v: a refused SETATTR wrote the buffered data", sa)
		}
		if g2, _ := f.c.GetAttr(f.ctx, fh); g2.Attr != g.Attr {
			t.Fatalf("%+v: a refused SETATTR changed the attributes:\n%+v\n%+v", sa, g.Attr, g2.Attr)
		}
		if _, err := f.c.Commit(f.ctx, fh, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUnstableRefusedWriteAndCreate: a FILE_SYNC or DATA_SYNC WRITE, or a
// truncating UNCHECKED CREATE, of a file with buffered UNSTABLE data by a
// caller who may not write it is refused before the data is written; it
// wrote the data first, so the refusal gave the file new times.
func TestUnstableRefusedWriteAndCreate(t *testing.T) {
	f := newFixture(t, envOpt{opts: Options{FlushDelay: time.Hour}})
	d := f.mkdir(t, f.root, "d", 0o777)
	fh := f.create(t, d, "f", "")
	stranger := f.dialAs(2000, 2000)
	for _, c := range []struct {
		name string
		do   func() error
	}{
		{"FILE_SYNC write", func() error {
			_, err := stranger.Write(f.ctx, fh, 0, []byte("x"), proto.FileSync)
			return err
		}},
		{"DATA_SYNC write", func() error {
			_, err := stranger.Write(f.ctx, fh, 0, []byte("x"), proto.DataSync)
			return err
		}},
		{"UNCHECKED create with size 0", func() error {
			_, err := stranger.Create(f.ctx, d, "f", proto.Unchecked, proto.Sattr{Size: ptr(uint64(0))})
			return err
		}},
	} {
		if _, err := f.c.Write(f.ctx, fh, 0, []byte("buffered"), proto.Unstable); err != nil {
			t.Fatal(err)
		}
		g, err := f.c.GetAttr(f.ctx, fh)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, c.do(), proto.ErrAcces)
		if !f.srv.wb.has(f.fs, g.Attr.FileID) {
			t.Fatalf("%s: a refused call wrote the buffered data", c.name)
		}
		if g2, _ := f.c.GetAttr(f.ctx, fh); g2.Attr != g.Attr {
			t.Fatalf("%s: a refused call changed the attributes:\n%+v\n%+v", c.name, g.Attr, g2.Attr)
		}
		if _, err := f.c.Commit(f.ctx, fh, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUnstableReadKeepsSharedBlock: the engine's Read returns verified
// blocks shared by its cache, and by every file holding the same content
// (blocks are content-addressed). Buffered UNSTABLE data overlaid on a
// READ goes into a copy: another file with the same block reads its own
// data.
func TestUnstableReadKeepsSharedBlock(t *testing.T) {
	f := newFixture(t, envOpt{})
	bs := f.fs.BlockSize()
	data := bytes.Repeat([]byte("s"), bs)
	a := f.create(t, f.root, "a", "")
	b := f.create(t, f.root, "b", "")
	for _, fh := range []proto.FH{a, b} {
		if _, err := f.c.Write(f.ctx, fh, 0, data, proto.FileSync); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.c.Write(f.ctx, a, 10, []byte("xyz"), proto.Unstable); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		r, err := f.c.Read(f.ctx, a, 0, uint32(bs))
		if err != nil || len(r.Data) != bs || string(r.Data[10:13]) != "xyz" {
			t.Fatalf("read a: %d bytes %v", len(r.Data), err)
		}
		r, err = f.c.Read(f.ctx, b, 0, uint32(bs))
		if err != nil || !bytes.Equal(r.Data, data) {
			t.Fatalf("read b after reading a with buffered data: %q… %v", r.Data[8:15], err)
		}
	}
}

// TestUnstableFlushedByTimer: uncommitted data becomes durable after
// FlushDelay.
func TestUnstableFlushedByTimer(t *testing.T) {
	f := newFixture(t, envOpt{opts: Options{FlushDelay: 30 * time.Millisecond}})
	fh := f.create(t, f.root, "f", "")
	ino := f.lookup(t, f.root, "f").Attr.FileID
	f.c.Write(f.ctx, fh, 0, []byte("timer"), proto.Unstable)
	testkit.Eventually(t, 10*time.Second, func() error {
		a, err := f.fs.GetAttr(f.ctx, ino)
		if err == nil && a.Size == 5 && !f.srv.wb.has(f.fs, ino) {
			return nil
		}
		return fmt.Errorf("not flushed: size %d %v", a.Size, err)
	})
}

// TestUnstableMemoryBound: writers beyond MaxUnstableBytes wait for
// flushes instead of growing the buffer.
func TestUnstableMemoryBound(t *testing.T) {
	f := newFixture(t, envOpt{opts: Options{MaxUnstableBytes: 256 << 10, FlushDelay: time.Hour}})
	fh := f.create(t, f.root, "f", "")
	chunk := bytes.Repeat([]byte("m"), 64<<10)
	for i := range 64 {
		if _, err := f.c.Write(f.ctx, fh, uint64(i*len(chunk)), chunk, proto.Unstable); err != nil {
			t.Fatal(err)
		}
		f.srv.wb.mu.Lock()
		b := f.srv.wb.bytes
		f.srv.wb.mu.Unlock()
		if b > 256<<10 {
			t.Fatalf("buffered %d bytes, limit %d", b, 256<<10)
		}
	}
	if _, err := f.c.Commit(f.ctx, fh, 0, 0); err != nil {
		t.Fatal(err)
	}
	if g, _ := f.c.GetAttr(f.ctx, fh); g.Attr.Size != 64*64<<10 {
		t.Fatalf("size %d", g.Attr.Size)
	}
}

// TestUnstableWriteError: a failed background write is reported at the
// file's next COMMIT.
func TestUnstableWriteError(t *testing.T) {
	var faulty *disk.Faulty
	f := newFixture(t, envOpt{wrapDisk: func(d disk.FS) disk.FS { faulty = disk.NewFaulty(d); return faulty }})
	fh := f.create(t, f.root, "f", "")
	faulty.Inject(disk.Fault{Op: disk.OpWrite, Nth: 1, Err: syscall.ENOSPC, Sticky: true})
	big := bytes.Repeat([]byte("x"), 1<<20) // a whole block: a block file write
	w, err := f.c.Write(f.ctx, fh, 0, big, proto.Unstable)
	if err != nil || w.Committed != proto.Unstable {
		t.Fatalf("unstable write %v", err)
	}
	// A SETATTR in between waits for the failed write but leaves its
	// error to COMMIT.
	if _, err := f.c.SetAttr(f.ctx, fh, proto.Sattr{Mode: ptr(uint32(0o600))}, nil); err != nil {
		t.Fatalf("setattr after a failed background write: %v", err)
	}
	_, err = f.c.Commit(f.ctx, fh, 0, 0)
	wantStatus(t, err, proto.ErrNoSpc)
	faulty.Clear()
	// FILE_SYNC reports at once.
	faulty.Inject(disk.Fault{Op: disk.OpWrite, Nth: 1, Err: syscall.ENOSPC, Sticky: true})
	_, err = f.c.Write(f.ctx, fh, 0, bytes.Repeat([]byte("y"), 1<<20), proto.FileSync)
	wantStatus(t, err, proto.ErrNoSpc)
	faulty.Clear()
}

// TestCommitAfterFailedFlush is the regression test of issue 9 §1: after
// a write-back error, a COMMIT retried by the client (or a second fsync)
// must never report the lost data stable. The server changes its write
// verifier and keeps failing COMMIT over the lost range until the client
// writes it again (or truncates it).
func TestCommitAfterFailedFlush(t *testing.T) {
	var faulty *disk.Faulty
	f := newFixture(t, envOpt{
		wrapDisk: func(d disk.FS) disk.FS { faulty = disk.NewFaulty(d); return faulty },
		opts:     Options{FlushDelay: time.Hour},
	})
	fh := f.create(t, f.root, "f", "")
	other := f.create(t, f.root, "other", "")
	block := func(b byte) []byte { return bytes.Repeat([]byte{b}, 1<<20) }
	// Two whole blocks: written in the background as they arrive.
	var verf [8]byte
	faulty.Inject(disk.Fault{Op: disk.OpWrite, Nth: 1, Err: syscall.ENOSPC, Sticky: true})
	for i := range 2 {
		w, err := f.c.Write(f.ctx, fh, uint64(i)<<20, block('a'+byte(i)), proto.Unstable)
		if err != nil || w.Committed != proto.Unstable {
			t.Fatalf("unstable write %d: %v", i, err)
		}
		verf = w.Verf
	}
	if _, err := f.c.Commit(f.ctx, fh, 0, 0); !errors.Is(err, proto.ErrNoSpc) {
		t.Fatalf("first COMMIT: %v, want NFS3ERR_NOSPC", err)
	}
	faulty.Clear() // space is back, but the data is gone
	for try := range 3 {
		c, err := f.c.Commit(f.ctx, fh, 0, 0)
		if err == nil && c.Verf == verf {
			t.Fatalf("COMMIT retry %d: NFS3_OK with the verifier of the lost writes", try)
		}
		if !errors.Is(err, proto.ErrNoSpc) {
			t.Fatalf("COMMIT retry %d: %v, want NFS3ERR_NOSPC until the data is written again", try, err)
		}
	}
	// A range that lost nothing commits (COMMIT's offset and count).
	w, err := f.c.Write(f.ctx, fh, 2<<20, []byte("tail"), proto.Unstable)
	if err != nil {
		t.Fatal(err)
	}
	if w.Verf == verf {
		t.Fatal("the write verifier did not change after the failed write-back")
	}
	if c, err := f.c.Commit(f.ctx, fh, 2<<20, 4); err != nil || c.Verf != w.Verf {
		t.Fatalf("COMMIT of an intact range: %v (verifier %x, write had %x)", err, c.Verf, w.Verf)
	}
	if _, err := f.c.Commit(f.ctx, fh, 1<<20, 1); !errors.Is(err, proto.ErrNoSpc) {
		t.Fatalf("COMMIT of the second lost block: %v, want NFS3ERR_NOSPC", err)
	}
	// Other files are not affected.
	if _, err := f.c.Write(f.ctx, other, 0, []byte("fine"), proto.Unstable); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Commit(f.ctx, other, 0, 0); err != nil {
		t.Fatalf("COMMIT of another file: %v", err)
	}
	// The client resends the first block: still the second is lost.
	if _, err := f.c.Write(f.ctx, fh, 0, block('a'), proto.Unstable); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Commit(f.ctx, fh, 0, 0); !errors.Is(err, proto.ErrNoSpc) {
		t.Fatalf("COMMIT with one block resent: %v, want NFS3ERR_NOSPC", err)
	}
	if _, err := f.c.Commit(f.ctx, fh, 0, 1<<20); err != nil {
		t.Fatalf("COMMIT of the resent block: %v", err)
	}
	// FILE_SYNC of the second block: everything is held again.
	if _, err := f.c.Write(f.ctx, fh, 1<<20, block('b'), proto.FileSync); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Commit(f.ctx, fh, 0, 0); err != nil {
		t.Fatalf("COMMIT after every lost range was written again: %v", err)
	}
	checkContent(t, f, fh, append(append(block('a'), block('b')...), "tail"...), 0)

	// Truncating below a lost range forgets it too.
	faulty.Inject(disk.Fault{Op: disk.OpWrite, Nth: 1, Err: syscall.ENOSPC, Sticky: true})
	f.c.Write(f.ctx, fh, 4<<20, block('c'), proto.Unstable)
	if _, err := f.c.Commit(f.ctx, fh, 0, 0); !errors.Is(err, proto.ErrNoSpc) {
		t.Fatalf("COMMIT after another failure: %v", err)
	}
	faulty.Clear()
	if _, err := f.c.SetAttr(f.ctx, fh, proto.Sattr{Size: ptr(uint64(3 << 20))}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Commit(f.ctx, fh, 0, 0); err != nil {
		t.Fatalf("COMMIT after truncating the lost range away: %v", err)
	}
}

// TestUnstableWhileFull: once a write-back failed for lack of space,
// UNSTABLE writes are written through and fail with NFS3ERR_NOSPC at
// once instead of being buffered (and acknowledged) for nothing; the first
// one that succeeds when space is back ends that.
func TestUnstableWhileFull(t *testing.T) {
	var faulty *disk.Faulty
	f := newFixture(t, envOpt{
		wrapDisk: func(d disk.FS) disk.FS { faulty = disk.NewFaulty(d); return faulty },
		opts:     Options{FlushDelay: time.Hour},
	})
	fh := f.create(t, f.root, "f", "")
	block := bytes.Repeat([]byte("z"), 1<<20)
	faulty.Inject(disk.Fault{Op: disk.OpWrite, Nth: 1, Err: syscall.ENOSPC, Sticky: true})
	f.c.Write(f.ctx, fh, 0, block, proto.Unstable)
	if _, err := f.c.Commit(f.ctx, fh, 0, 0); !errors.Is(err, proto.ErrNoSpc) {
		t.Fatalf("COMMIT: %v", err)
	}
	for i := range 3 {
		_, err := f.c.Write(f.ctx, fh, uint64(i+1)<<20, block, proto.Unstable)
		if !errors.Is(err, proto.ErrNoSpc) {
			t.Fatalf("UNSTABLE write %d on a full disk: %v, want NFS3ERR_NOSPC", i, err)
		}
	}
	faulty.Clear()
	w, err := f.c.Write(f.ctx, fh, 0, block, proto.Unstable)
	if err != nil {
		t.Fatalf("write once space is back: %v", err)
	}
	if w.Committed != proto.FileSync {
		t.Fatalf("the probing write was not written through: committed %v", w.Committed)
	}
	w, err = f.c.Write(f.ctx, fh, 1<<20, block, proto.Unstable)
	if err != nil || w.Committed != proto.Unstable {
		t.Fatalf("UNSTABLE writes are not buffered again: %v %v", w, err)
	}
}

// TestUnstableRemoved: data buffered for a file removed meanwhile is
// dropped without an error.
func TestUnstableRemoved(t *testing.T) {
	f := newFixture(t, envOpt{})
	fh := f.create(t, f.root, "f", "")
	ino := f.lookup(t, f.root, "f").Attr.FileID
	f.c.Write(f.ctx, fh, 0, []byte("doomed"), proto.Unstable)
	if _, err := f.c.Remove(f.ctx, f.root, "f"); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Flush(f.ctx, f.fs); err != nil {
		t.Fatalf("flush after remove: %v", err)
	}
	if f.srv.wb.has(f.fs, ino) {
		t.Fatal("state left for a removed file")
	}
}

// TestFlushAndShutdown: Server.Flush and Shutdown make buffered data
// durable.
func TestFlushAndShutdown(t *testing.T) {
	f := newFixture(t, envOpt{opts: Options{FlushDelay: time.Hour}})
	a := f.create(t, f.root, "a", "")
	b := f.create(t, f.root, "b", "")
	aIno, bIno := f.lookup(t, f.root, "a").Attr.FileID, f.lookup(t, f.root, "b").Attr.FileID
	f.c.Write(f.ctx, a, 0, []byte("flushed"), proto.Unstable)
	if err := f.srv.Flush(context.Background(), f.fs); err != nil {
		t.Fatal(err)
	}
	if at, _ := f.fs.GetAttr(f.ctx, aIno); at.Size != 7 {
		t.Fatalf("size after Flush %d", at.Size)
	}
	f.c.Write(f.ctx, b, 0, []byte("at shutdown"), proto.Unstable)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-f.done
	f.srv = nil // closed
	defer f.e.Close()
	if bt, _ := f.fs.GetAttr(f.ctx, bIno); bt.Size != 11 {
		t.Fatalf("size after Shutdown %d", bt.Size)
	}
}

// TestSpans checks addSpan and subSpan against a bitmap.
func TestSpans(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	const size = 256
	for round := range 500 {
		var s []span
		var model [size]bool
		for range 1 + rng.IntN(30) {
			a := uint64(rng.IntN(size))
			b := a + uint64(rng.IntN(size-int(a)+1))
			add := rng.IntN(3) != 0
			if add {
				s = addSpan(s, span{a, b})
			} else {
				s = subSpan(s, span{a, b})
			}
			for i := a; i < b; i++ {
				model[i] = add
			}
		}
		var got [size]bool
		for i, x := range s {
			if x.end <= x.off || i > 0 && s[i-1].end >= x.off {
				t.Fatalf("round %d: spans not sorted, disjoint and apart: %v", round, s)
			}
			for j := x.off; j < x.end; j++ {
				got[j] = true
			}
		}
		if got != model {
			t.Fatalf("round %d: spans %v differ from the model", round, s)
		}
	}
}

// TestLostForgottenWhenRemoved: the lost ranges of a removed file are
// forgotten (memory does not grow with files removed after a failure).
func TestLostForgottenWhenRemoved(t *testing.T) {
	var faulty *disk.Faulty
	f := newFixture(t, envOpt{
		wrapDisk: func(d disk.FS) disk.FS { faulty = disk.NewFaulty(d); return faulty },
		opts:     Options{FlushDelay: time.Hour},
	})
	fh := f.create(t, f.root, "f", "")
	ino := f.lookup(t, f.root, "f").Attr.FileID
	faulty.Inject(disk.Fault{Op: disk.OpWrite, Nth: 1, Err: syscall.EIO, Sticky: true})
	f.c.Write(f.ctx, fh, 0, bytes.Repeat([]byte("x"), 1<<20), proto.Unstable)
	if _, err := f.c.Commit(f.ctx, fh, 0, 0); !errors.Is(err, proto.ErrIO) {
		t.Fatalf("COMMIT: %v, want NFS3ERR_IO", err)
	}
	faulty.Clear()
	f.srv.wb.pruneLost()
	if f.srv.wb.lostIn(f.fs, ino, 0, 1) == nil {
		t.Fatal("lost range of an existing file forgotten")
	}
	if _, err := f.c.Remove(f.ctx, f.root, "f"); err != nil {
		t.Fatal(err)
	}
	f.srv.wb.pruneLost()
	f.srv.wb.mu.Lock()
	n, files := len(f.srv.wb.files), f.srv.wb.lostFiles
	f.srv.wb.mu.Unlock()
	if n != 0 || files != 0 {
		t.Fatalf("%d entries, %d files with lost ranges left after the file was removed", n, files)
	}
	// An I/O error is not a lack of space: UNSTABLE writes stay buffered.
	g := f.create(t, f.root, "g", "")
	if w, err := f.c.Write(f.ctx, g, 0, []byte("x"), proto.Unstable); err != nil || w.Committed != proto.Unstable {
		t.Fatalf("write after an I/O error: %v %v", w, err)
	}
}

// fullDisk is an engine space guard that refuses every write while set.
type fullDisk struct{ full atomic.Bool }

func (f *fullDisk) Admit(int64) error { return f.Check(0) }
func (f *fullDisk) Check(int64) error {
	if f.full.Load() {
		return errors.New("test: disk full")
	}
	return nil
}

// TestWritesOnFullDisk: below the engine's free-space floor, UNSTABLE
// writes fail with NFS3ERR_NOSPC at once — nothing is acknowledged that
// could be lost later, so the verifier stays — as do creations, while
// removals and truncations work (issue 9 §1, §2).
func TestWritesOnFullDisk(t *testing.T) {
	sp := &fullDisk{}
	f := newFixture(t, envOpt{space: sp, opts: Options{FlushDelay: time.Hour}})
	fh := f.create(t, f.root, "f", "")
	keep := f.create(t, f.root, "keep", "data")
	w0, err := f.c.Write(f.ctx, fh, 0, []byte("before"), proto.Unstable)
	if err != nil || w0.Committed != proto.Unstable {
		t.Fatalf("write with room: %v %v", w0, err)
	}
	sp.full.Store(true)
	if _, err := f.c.Write(f.ctx, fh, 6, []byte("after"), proto.Unstable); !errors.Is(err, proto.ErrNoSpc) {
		t.Fatalf("UNSTABLE write on a full disk: %v, want NFS3ERR_NOSPC", err)
	}
	if _, err := f.c.Create(f.ctx, f.root, "new", proto.Guarded, proto.Sattr{}); !errors.Is(err, proto.ErrNoSpc) {
		t.Fatalf("CREATE on a full disk: %v, want NFS3ERR_NOSPC", err)
	}
	if _, err := f.c.Mkdir(f.ctx, f.root, "dir", proto.Sattr{}); !errors.Is(err, proto.ErrNoSpc) {
		t.Fatalf("MKDIR on a full disk: %v, want NFS3ERR_NOSPC", err)
	}
	// The data buffered before the disk filled is lost now: COMMIT says
	// so and the verifier changes.
	c, err := f.c.Commit(f.ctx, fh, 0, 0)
	if !errors.Is(err, proto.ErrNoSpc) {
		t.Fatalf("COMMIT of data buffered before the disk filled: %v", err)
	}
	if c.Verf == w0.Verf {
		t.Fatal("verifier unchanged after buffered data was lost")
	}
	if _, err := f.c.SetAttr(f.ctx, keep, proto.Sattr{Size: ptr(uint64(0))}, nil); err != nil {
		t.Fatalf("truncate on a full disk: %v", err)
	}
	if _, err := f.c.Remove(f.ctx, f.root, "keep"); err != nil {
		t.Fatalf("REMOVE on a full disk: %v", err)
	}
	sp.full.Store(false)
	w, err := f.c.Write(f.ctx, fh, 0, []byte("before"), proto.Unstable)
	if err != nil {
		t.Fatalf("write once space is back: %v", err)
	}
	if _, err := f.c.Commit(f.ctx, fh, 0, 0); err != nil {
		t.Fatalf("COMMIT once the lost range was written again: %v (%v)", err, f.srv.wb.lostIn(f.fs, f.lookup(t, f.root, "f").Attr.FileID, 0, 1<<40))
	}
	if w.Committed != proto.FileSync {
		// The first write after a lack of space is written through.
		t.Fatalf("first write after the disk was full: committed %v", w.Committed)
	}
}

// TestUnstableAttrCtimeAfterLink: a file with buffered UNSTABLE data
// shows the ctime of a change made after those writes (a LINK changes
// the file's link count and ctime, and leaves the data buffered), and a
// SETATTR guarded by the ctime shown before that change answers
// NFS3ERR_NOT_SYNC and changes nothing. The buffered writes' time hid
// the engine's later ctime (it replaced the ctime whenever it was after
// the file's mtime), so the stale guard held.
func TestUnstableAttrCtimeAfterLink(t *testing.T) {
	f, fh, g := bufferedFile(t)
	if _, err := f.c.Link(f.ctx, fh, f.root, "hard"); err != nil {
		t.Fatal(err)
	}
	if !f.srv.wb.has(f.fs, g.Attr.FileID) {
		t.Fatal("LINK wrote the buffered data: the test needs it buffered")
	}
	g2, err := f.c.GetAttr(f.ctx, fh)
	if err != nil {
		t.Fatal(err)
	}
	if g2.Attr.Nlink != 2 || g2.Attr.Ctime == g.Attr.Ctime {
		t.Fatalf("after LINK: nlink %d, ctime %+v (before %+v): the change is not shown", g2.Attr.Nlink, g2.Attr.Ctime, g.Attr.Ctime)
	}
	ct := g.Attr.Ctime
	_, err = f.c.SetAttr(f.ctx, fh, proto.Sattr{Mode: ptr(uint32(0o600))}, &ct)
	wantStatus(t, err, proto.ErrNotSync)
	g3, err := f.c.GetAttr(f.ctx, fh)
	if err != nil {
		t.Fatal(err)
	}
	if g3.Attr.Mode&0o777 != 0o644 {
		t.Fatalf("a refused SETATTR changed the mode to %o", g3.Attr.Mode)
	}
	ct = g3.Attr.Ctime
	if _, err := f.c.SetAttr(f.ctx, fh, proto.Sattr{Mode: ptr(uint32(0o600))}, &ct); err != nil {
		t.Fatalf("SETATTR guarded by the ctime GETATTR showed: %v", err)
	}
}

// createGate is a disk whose next Create, once armed, waits until it is
// released (a block of buffered data being written).
type createGate struct {
	disk.FS
	armed   atomic.Bool
	hit     chan struct{}
	release chan struct{}
}

func (g *createGate) Create(name string) (disk.File, error) {
	if g.armed.CompareAndSwap(true, false) {
		close(g.hit)
		<-g.release
	}
	return g.FS.Create(name)
}

// TestUnstableGuardedSetAttrRacingChange: a guarded SETATTR of a file
// with buffered UNSTABLE data writes the data first; a change made
// meanwhile (acknowledged before the SETATTR changes anything) means the
// guard no longer holds: NFS3ERR_NOT_SYNC. The guard was checked before
// the data was written and replaced by the ctime read after it, which
// took in the other change (a LINK from another client; a change of times
// only, which bf000db's comparison of the other attributes missed).
func TestUnstableGuardedSetAttrRacingChange(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(f *fixture, fh proto.FH, ino uint64) error
		nlink  uint32
	}{
		{"link", func(f *fixture, fh proto.FH, _ uint64) error {
			_, err := f.c.Link(f.ctx, fh, f.root, "hard")
			return err
		}, 2},
		{"atime", func(f *fixture, _ proto.FH, ino uint64) error {
			_, _, err := f.fs.SetAttr(f.ctx, engine.RootCred, ino, engine.SetAttr{Atime: &engine.TimeSet{Time: time.Unix(1_000_000_000, 0)}}, nil)
			return err
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gate := &createGate{hit: make(chan struct{}), release: make(chan struct{})}
			f := newFixture(t, envOpt{
				fsOpts:   engine.FSOptions{BlockSize: engine.MinBlockSize},
				opts:     Options{FlushDelay: time.Hour},
				wrapDisk: func(d disk.FS) disk.FS { gate.FS = d; return gate },
			})
			fh := f.create(t, f.root, "f", "")
			if _, err := f.c.Write(f.ctx, fh, 0, bytes.Repeat([]byte("b"), engine.MinBlockSize), proto.Unstable); err != nil {
				t.Fatal(err)
			}
			g, err := f.c.GetAttr(f.ctx, fh)
			if err != nil {
				t.Fatal(err)
			}
			gate.armed.Store(true)
			released := false
			defer func() {
				if !released {
					close(gate.release)
				}
			}()
			done := make(chan error, 1)
			go func() {
				ct := g.Attr.Ctime
				_, err := f.c.SetAttr(f.ctx, fh, proto.Sattr{Mode: ptr(uint32(0o600))}, &ct)
				done <- err
			}()
			select {
			case <-gate.hit:
			case err := <-done:
				t.Fatalf("the SETATTR returned (%v) without writing the buffered data", err)
			case <-time.After(30 * time.Second):
				t.Fatal("the SETATTR did not write the buffered data")
			}
			if err := tc.change(f, fh, g.Attr.FileID); err != nil {
				t.Fatal(err)
			}
			close(gate.release)
			released = true
			wantStatus(t, <-done, proto.ErrNotSync)
			a, err := f.c.GetAttr(f.ctx, fh)
			if err != nil {
				t.Fatal(err)
			}
			if a.Attr.Mode&0o777 != 0o644 || a.Attr.Nlink != tc.nlink {
				t.Fatalf("mode %o, %d links: want the other change only", a.Attr.Mode&0o777, a.Attr.Nlink)
			}
		})
	}
}
