package fuse

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// nfsFile writes data to a new file name through m's NFS session, one
// IOSize write at a time, and returns its node and a handle of the
// writer, on which a test without FUSE calls the file system's methods.
func nfsFile(t *testing.T, m *testMount, name string, data []byte) (*node, *handle) {
	t.Helper()
	auth := client.Unix("t", 0, 0)
	cl := m.sess.Client(auth)
	res, err := cl.Create(t.Context(), m.f.o.Root, name, proto.Unchecked, proto.Sattr{})
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += m.f.o.IOSize {
		if _, err := cl.Write(t.Context(), res.FH, uint64(off), data[off:min(off+m.f.o.IOSize, len(data))], proto.FileSync); err != nil {
			t.Fatal(err)
		}
	}
	return &node{f: m.f, fh: res.FH}, &handle{auth: auth}
}

// TestReadaheadOutOfOrder: the kernel's reads of a sequential stream
// arrive a little out of order (go-fuse serves them concurrently; a cold
// 256 MiB dd through the mount had 8 to 14 reads one or two MiB behind
// the newest). Each chunk is still fetched from the server once: before,
// a read dropped every chunk behind it, so the late one was read again,
// synchronously, in the reader's path (268 to 277 READs for 256 MiB). A
// chunk leaves the readahead once it has been read whole. And no read
// but the first copies the data (counting bytes, not timed).
func TestReadaheadOutOfOrder(t *testing.T) {
	m := newMountSpace(t, nil, func(m *testMount) { m.noFUSE = true })
	ctx := t.Context()
	const chunks = 12
	io := m.f.o.IOSize
	data := make([]byte, chunks*io)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	n, h := nfsFile(t, m, "big", data)
	before, copied := m.sess.Calls()["READ"].N, m.f.readCopied.Load()
	dest := make([]byte, io)
	// The order of the kernel's reads in a traced dd: one and two behind.
	order := []int{0, 1, 2, 4, 3, 5, 7, 8, 6, 9, 10, 11}
	for _, i := range order {
		r, e := n.Read(ctx, h, dest, int64(i*io))
		if e != 0 {
			t.Fatalf("read of chunk %d: %v", i, e)
		}
		got, _ := r.Bytes(dest)
		if !bytes.Equal(got, data[i*io:(i+1)*io]) {
			t.Fatalf("read of chunk %d: %d bytes, not the file's", i, len(got))
		}
		r.Done()
	}
	// The readahead past the end of the file finishes (each a READ).
	n.mu.Lock()
	var ahead []int64
	var pending []*chunk
	for i, c := range n.ra.chunks {
		if !c.spent {
			ahead = append(ahead, i)
		}
		pending = append(pending, c)
	}
	n.mu.Unlock()
	for _, c := range pending {
		<-c.done
	}
	for _, i := range ahead {
		if i < chunks {
			t.Errorf("chunk %d, read whole, is still kept (readahead holds %v)", i, ahead)
		}
	}
	// Chunks 0 to 11 and the ReadAhead chunks past the end, once each.
	want := uint64(chunks + m.f.o.ReadAhead)
	if got := m.sess.Calls()["READ"].N - before; got != want {
		t.Fatalf("%d READs for %d chunks read out of order, want %d (each chunk once, and %d past the end)", got, chunks, want, m.f.o.ReadAhead)
	}
	// Bytes copied per read: only the first read, which no read came
	// before and which its own READ answers, is copied into the kernel's
	// buffer; every other chunk goes to the kernel as the reply brought
	// it (a copy per chunk was 12 MiB here).
	if got := m.f.readCopied.Load() - copied; got != int64(io) {
		t.Errorf("%d bytes of file data copied for %d chunks read, want %d (the first read's only)", got, chunks, io)
	}
	dropChunks(n)
}

// TestReadaheadStopsAtSize: while the file's attributes from the server
// answer GETATTRs (the kernel reads no further than their size), a
// sequential read fetches no chunk past the end of the file: each READ
// past it could only answer EOF (ReadAhead of them per read to the end,
// before). Counting READs, not timed.
func TestReadaheadStopsAtSize(t *testing.T) {
	m := newMountSpace(t, nil, func(m *testMount) { m.noFUSE = true })
	ctx := t.Context()
	auth := client.Unix("t", 0, 0)
	cl := m.sess.Client(auth)
	io := m.f.o.IOSize
	const chunks = 3
	size := chunks*io + io/2 // the last chunk half full
	res, err := cl.Create(ctx, m.f.o.Root, "f", proto.Unchecked, proto.Sattr{})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("regionfs"), size/8)
	for off := 0; off < size; off += io {
		if _, err := cl.Write(ctx, res.FH, uint64(off), data[off:min(off+io, size)], proto.FileSync); err != nil {
			t.Fatal(err)
		}
	}
	n := &node{f: m.f, fh: res.FH}
	h := &handle{auth: auth}
	gen, ok := n.attrGen()
	a, err := cl.GetAttr(ctx, res.FH)
	if err != nil {
		t.Fatal(err)
	}
	n.keepFileAttr(&a.Attr, gen, ok)
	before := m.sess.Calls()["READ"].N
	dest := make([]byte, io)
	var got []byte
	for off := 0; off < size; off += io {
		r, e := n.Read(ctx, h, dest, int64(off))
		if e != 0 {
			t.Fatalf("read at %d: %v", off, e)
		}
		b, _ := r.Bytes(dest)
		got = append(got, b...)
		r.Done()
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, not the file's %d", len(got), len(data))
	}
	waitChunks(n)
	if got, want := m.sess.Calls()["READ"].N-before, uint64(chunks+1); got != want {
		t.Errorf("%d READs for a file of %d chunks read in order, want %d (none past its end)", got, chunks+1, want)
	}
	dropChunks(n)
}

// TestReadaheadLateReadsKeepPosition: the kernel's reads of a sequential
// stream, in pieces smaller than a chunk, arrive out of order within a
// few pieces (go-fuse serves them concurrently). A late read behind the
// newest one used to move the readahead's position back (n.ra.next =
// its end), so that the next read, not at that position and in a chunk
// not fetched yet, was taken for a random one and read by itself, in the
// reader's path: READs beyond one per chunk. Counting READs per GiB, not
// timed.
func TestReadaheadLateReadsKeepPosition(t *testing.T) {
	m := newMountSpace(t, nil, func(m *testMount) { m.noFUSE = true })
	ctx := t.Context()
	const chunks, pieces = 24, 8 // pieces per chunk: the kernel's reads
	io := m.f.o.IOSize
	data := make([]byte, chunks*io)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	n, h := nfsFile(t, m, "big", data)
	// The kernel has two reads in flight; the second one is served
	// first: 1, 0, 3, 2, 5, 4, …
	piece := io / pieces
	var order []int
	for p := 0; p < chunks*pieces; p += 2 {
		order = append(order, p+1, p)
	}
	before := m.sess.Calls()["READ"].N
	dest := make([]byte, piece)
	for _, i := range order {
		r, e := n.Read(ctx, h, dest, int64(i*piece))
		if e != 0 {
			t.Fatalf("read of piece %d: %v", i, e)
		}
		got, _ := r.Bytes(dest)
		if !bytes.Equal(got, data[i*piece:(i+1)*piece]) {
			t.Fatalf("read of piece %d: %d bytes, not the file's", i, len(got))
		}
		r.Done()
	}
	waitChunks(n)
	// Every chunk once, and the ReadAhead chunks past the end (the size
	// is not known here); the first piece, before the stream is known to
	// be sequential, by itself.
	got := m.sess.Calls()["READ"].N - before
	want := uint64(chunks + m.f.o.ReadAhead + 1)
	perGiB := (float64(got) - float64(chunks+m.f.o.ReadAhead)) * float64(1<<30) / float64(len(data))
	t.Logf("%d READs for %d chunks read in %d pieces out of order: %.0f beyond one per chunk per GiB", got, chunks, len(order), perGiB)
	if got > want {
		t.Errorf("%d READs for %d chunks read in %d pieces out of order, want at most %d (each chunk once, %d past the end, and the first piece)", got, chunks, len(order), want, m.f.o.ReadAhead)
	}
	dropChunks(n)
}

// waitChunks waits for every chunk n's readahead holds to be answered
// (each a READ counted by the session).
func waitChunks(n *node) {
	n.mu.Lock()
	var pending []*chunk
	for _, c := range n.ra.chunks {
		pending = append(pending, c)
	}
	n.mu.Unlock()
	for _, c := range pending {
		<-c.done
	}
}

// dropChunks lets go of every chunk n's readahead holds.
func dropChunks(n *node) {
	n.mu.Lock()
	n.dropChunksLocked(-1)
	n.mu.Unlock()
}
