package nfs

import (
	"bytes"
	"context"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/nfs/proto"
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

// TestUnstableFlushedByTimer: uncommitted data becomes durable after
// FlushDelay.
func TestUnstableFlushedByTimer(t *testing.T) {
	f := newFixture(t, envOpt{opts: Options{FlushDelay: 30 * time.Millisecond}})
	fh := f.create(t, f.root, "f", "")
	ino := f.lookup(t, f.root, "f").Attr.FileID
	f.c.Write(f.ctx, fh, 0, []byte("timer"), proto.Unstable)
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, err := f.fs.GetAttr(f.ctx, ino)
		if err == nil && a.Size == 5 && !f.srv.wb.has(f.fs, ino) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not flushed: size %d %v", a.Size, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
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
	// Reported once; the data is lost, as the error said.
	if _, err := f.c.Commit(f.ctx, fh, 0, 0); err != nil {
		t.Fatalf("second commit %v", err)
	}
	// FILE_SYNC reports at once.
	faulty.Inject(disk.Fault{Op: disk.OpWrite, Nth: 1, Err: syscall.ENOSPC, Sticky: true})
	_, err = f.c.Write(f.ctx, fh, 0, bytes.Repeat([]byte("y"), 1<<20), proto.FileSync)
	wantStatus(t, err, proto.ErrNoSpc)
	faulty.Clear()
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
