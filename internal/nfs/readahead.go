package nfs

import (
	"container/list"
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/regionfs/regionfs/internal/engine"
)

// Read-ahead. Clients such as nfs-cp read a file with one READ at a time;
// the engine's READ of a block (read the block file, check it,
// copy) would then add its latency to every round trip. When a file is
// read sequentially the server reads the next chunks in the background,
// so the engine's work overlaps the network and the client. A prefetched
// chunk is served only if it is certainly current: its attributes (read
// in the same snapshot as its data) still equal the file's (mtime and
// ctime change with every data change, on replicas too), no UNSTABLE data
// of the file is buffered, and the reader has the same credential as the
// one the chunk was read with (the engine checked its permission).
type readahead struct {
	s *Server

	mu    sync.Mutex // guards the fields below
	files map[fileKey]*list.Element
	lru   list.List // of *raFile, most recent first
	bytes int64

	// workers run the prefetches no connection's goroutine runs
	// (runPrefetches); closing quit (wait) ends them.
	workers  workers
	quit     chan struct{}
	quitOnce sync.Once

	// Counters for tests: READs served from a prefetched chunk, and
	// prefetches handed to workers.
	taken, handedOff atomic.Uint64
}

// Tuning.
const (
	raMaxDepth = 4        // chunks read ahead of a sequential reader, at most
	raShrink   = 16       // READs in a row that find their chunks read make the depth one less
	raMaxBytes = 64 << 20 // prefetched data held server-wide
	raMaxFiles = 64
	raMaxAsked = 16 // chunks a client's READs may be ahead of its reader (raFile.asked)
)

// raFile is a sequential reader's file. depth is how many chunks are
// read ahead of it: one to start with, one more (up to raMaxDepth) each
// time a READ finds its chunk not read yet (the reads ahead do not keep
// up: a block read that waits for the disk, a client faster than the
// prefetch), one less after raShrink READs in a row found theirs read
// (hits counts them). A reader whose blocks come from memory (the page
// cache or the block cache) stays at one, so each chunk is sent right
// after it was read, while its bytes are still in the CPU's cache: with four
// chunks ahead a chunk was read four replies before it was sent, and its
// 1 MiB had left the cache by then, so the reply's copy into the socket
// and the next block read's copy into the recycled buffer each read and
// wrote memory instead of cache (read16 in bench/nfs/README.md: the
// reply's kernel copy cost ~62-72 µs per MiB against ganesha's ~33-37,
// whose pread precedes its sendmsg directly).
type raFile struct {
	key  fileKey
	next uint64 // offset a sequential reader asks for next
	// asked is the end of the furthest READ of the file that came (take),
	// served from a chunk or not. A client that sends several READs at
	// once (regionfs mount's read-ahead, the kernel's) has READs of the
	// chunks after next on their way, or being read by the engine, when
	// an earlier READ schedules its prefetches: those start after asked,
	// so no block is read twice (once by its READ, once by a prefetch
	// nobody takes), as long as asked is at most raMaxAsked chunks
	// ahead (further, it is a reader that moved back: next alone counts);
	// a READ from offset 0 starts it anew (a file read again).
	asked  uint64
	depth  int
	hits   int
	chunks []*raChunk
}

type raChunk struct {
	off   uint64
	count int
	cred  engine.Cred
	done  chan struct{}
	// Set before done is closed.
	data []byte
	eof  bool
	attr engine.Attr
	hold engine.Hold // on data's buffer: the taker's, released with its reply
	err  error
	// Guarded by readahead.mu: the read began (started, see claim), is
	// done (finished) or the chunk was dropped untaken (dropped), and the
	// reader releases its hold.
	started, finished, dropped bool
}

func newReadahead(s *Server) *readahead {
	ra := &readahead{s: s, files: map[fileKey]*list.Element{}, quit: make(chan struct{})}
	ra.workers.init(ra.quit)
	return ra
}

// read serves a READ from a prefetched chunk when one is current, or
// from the engine, and schedules read-ahead for sequential readers. cur
// are the file's attributes just read. The caller releases the returned
// hold once it no longer uses the data (engine.FS.ReadHeld), and runs the
// prefetches it finds in *after once the reply is written (or hands them
// to runPrefetches): the goroutine that answered the READ (the
// connection's reader or a worker, conn.answer) reads the next chunks itself
// after its writev, while the client takes in the reply, instead of
// waking another goroutine per READ that competes with the writev.
func (ra *readahead) read(ctx context.Context, t *target, cur engine.Attr, off uint64, count int, after *[]prefetch) ([]byte, bool, engine.Attr, engine.Hold, error) {
	k := fileKey{t.fs, t.h.ino}
	c := ra.take(k, off, count, t.cred)
	if c != nil {
		if ra.claim(c) {
			ra.fill(t, c, false) // its prefetch has not started
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			ra.mu.Lock()
			ra.discardLocked(c)
			ra.mu.Unlock()
			return nil, false, engine.Attr{}, engine.Hold{}, ctx.Err()
		}
		if c.err == nil && sameAttrs(&c.attr, &cur) && !ra.s.wb.has(t.fs, t.h.ino) {
			ra.taken.Add(1)
			ra.schedule(t, off, count, len(c.data), cur.Size, after)
			return c.data, c.eof, c.attr, c.hold, nil
		}
		c.hold.Release()
	}
	data, eof, attr, h, err := t.fs.ReadHeld(ctx, t.cred, t.h.ino, off, count)
	if err == nil {
		ra.schedule(t, off, count, len(data), attr.Size, after)
	}
	return data, eof, attr, h, err
}

// ready says whether a READ of count bytes at off of the file fh names
// would be served from a chunk already read, without waiting: a hint
// for where to run the READ (conn.answerHere), so fh is not
// authenticated here (the READ resolves it as any other).
func (ra *readahead) ready(set *exportSet, fh []byte, off uint64, count int) bool {
	h, err := parseHandle(fh)
	if err != nil || set == nil {
		return false
	}
	for _, x := range set.byKey[exportKey{h.lineage, h.tag}] {
		if ra.readyChunk(fileKey{x.FS, h.ino}, off, count) && !ra.s.wb.has(x.FS, h.ino) {
			return true
		}
	}
	return false
}

func (ra *readahead) readyChunk(k fileKey, off uint64, count int) bool {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	el := ra.files[k]
	if el == nil {
		return false
	}
	for _, c := range el.Value.(*raFile).chunks {
		if c.off == off && c.count == count {
			return c.finished
		}
	}
	return false
}

// runPrefetches runs prefetches that read returned and their READ's
// goroutine will not run (a reply dropped, a caller other than a
// connection's goroutine) on the read-ahead's workers: a reader waits for
// every chunk scheduled.
func (ra *readahead) runPrefetches(fns []prefetch) {
	ra.handedOff.Add(uint64(len(fns)))
	for _, f := range fns {
		ra.workers.run(func() { f(false) })
	}
}

// discardLocked lets go of a chunk nobody will take: its hold is
// released now if its read is done, else by the read when it is.
func (ra *readahead) discardLocked(c *raChunk) {
	if c.finished {
		c.hold.Release()
		c.hold = engine.Hold{}
		return
	}
	c.dropped = true
}

func sameAttrs(a, b *engine.Attr) bool {
	return a.Size == b.Size && a.Mtime.Equal(b.Mtime) && a.Ctime.Equal(b.Ctime) && a.Gen == b.Gen
}

// take removes and returns the chunk for exactly this read, if any.
func (ra *readahead) take(k fileKey, off uint64, count int, cred engine.Cred) *raChunk {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	el := ra.files[k]
	if el == nil {
		if off != 0 {
			return nil
		}
		// A read from the start: the file's entry is made now, not when
		// this READ schedules its prefetches, so that the READs the
		// client sent behind it are noted (asked) before then.
		el = ra.addFileLocked(k)
	}
	f := el.Value.(*raFile)
	if off == 0 {
		// A reader starting (again) from the beginning: the READs of
		// an earlier pass are not ahead of it.
		f.asked = 0
	}
	f.asked = max(f.asked, off+uint64(count))
	for i, c := range f.chunks {
		if c.off == off && c.count == count && sameCred(c.cred, cred) {
			f.chunks = slices.Delete(f.chunks, i, i+1)
			ra.bytes -= int64(c.count)
			switch {
			case !c.finished:
				// The reader caught up with the reads ahead.
				f.depth, f.hits = min(f.depth+1, raMaxDepth), 0
			case f.depth > 1:
				if f.hits++; f.hits == raShrink {
					f.depth, f.hits = f.depth-1, 0
				}
			}
			return c
		}
	}
	return nil
}

// schedule notes a read of n bytes at off and, when it continues the
// previous one, adds the prefetches of the following chunks (below size)
// to *after.
func (ra *readahead) schedule(t *target, off uint64, count, n int, size uint64, after *[]prefetch) {
	k := fileKey{t.fs, t.h.ino}
	ra.mu.Lock()
	defer ra.mu.Unlock()
	el := ra.files[k]
	if el == nil {
		if off != 0 {
			// Only a read from the start, or one continuing an earlier
			// read, counts as sequential.
			return
		}
		el = ra.addFileLocked(k)
	}
	ra.lru.MoveToFront(el)
	f := el.Value.(*raFile)
	sequential := off == f.next
	if !f.late(off, n, count) {
		f.next = off + uint64(n)
	}
	if !sequential || n < count {
		return
	}
	// Drop chunks the reader has passed, but for the last raMaxDepth
	// behind it: a READ the client sent before the ones answered already
	// may still come for its chunk.
	f.chunks = slices.DeleteFunc(f.chunks, func(c *raChunk) bool {
		if c.off+uint64(raMaxDepth*count) < f.next {
			ra.bytes -= int64(c.count)
			ra.discardLocked(c)
			return true
		}
		return false
	})
	// Chunks the client has asked for already are its READs' to read.
	from := f.next
	if f.asked > from && f.asked-from <= uint64(raMaxAsked*count) {
		from = f.asked
	}
	for i := range f.depth {
		at := from + uint64(i*count)
		if at >= size || ra.bytes+int64(count) > raMaxBytes {
			break
		}
		if slices.ContainsFunc(f.chunks, func(c *raChunk) bool { return c.off == at }) {
			continue
		}
		c := &raChunk{off: at, count: count, cred: t.cred, done: make(chan struct{})}
		f.chunks = append(f.chunks, c)
		ra.bytes += int64(count)
		*after = append(*after, func(alone bool) {
			if ra.claim(c) {
				ra.fill(t, c, alone)
			}
		})
	}
}

// late says whether a READ of n bytes at off is one of the reader's
// stream answered after READs beyond it (a client with several READs
// out, as regionfs mount and the kernel have, gets them answered a
// little out of order): it ends at or before next, at most raMaxAsked
// chunks of count behind, and next is no further than the furthest READ
// that came (asked), which a reader starting again from the beginning
// reset. Such a READ leaves next where it is: set back to the late
// READ's end, it made the stream's next READs non-sequential (no
// prefetch for them, the reads ahead lost) until one happened to follow
// it again.
func (f *raFile) late(off uint64, n, count int) bool {
	end := off + uint64(n)
	return end <= f.next && f.next <= f.asked && f.next-off <= uint64(raMaxAsked*count)
}

// addFileLocked starts following the reads of file k.
func (ra *readahead) addFileLocked(k fileKey) *list.Element {
	el := ra.lru.PushFront(&raFile{key: k, depth: 1})
	ra.files[k] = el
	for ra.lru.Len() > raMaxFiles {
		ra.dropLocked(ra.lru.Back().Value.(*raFile).key)
	}
	return el
}

// claim says whether the caller is the one to read chunk c: its
// scheduling READ's goroutine once the reply is written, or a READ that
// takes it before then (which does not wait for that goroutine: its writev
// may wait up to WriteTimeout for a slow client).
func (ra *readahead) claim(c *raChunk) bool {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if c.started {
		return false
	}
	c.started = true
	return true
}

// prefetch reads a chunk ahead (readahead.schedule). alone: no other
// request is being processed, so the block files may be read with raw
// system calls (engine.WithRawReads), which keep the P for the copy.
type prefetch func(alone bool)

// fill reads chunk c (claimed) and marks it done; alone as prefetch's.
func (ra *readahead) fill(t *target, c *raChunk, alone bool) {
	ctx := ra.s.ctx
	if alone {
		ctx = engine.WithRawReads(ctx)
	}
	data, eof, attr, h, err := t.fs.ReadHeld(ctx, t.cred, t.h.ino, c.off, c.count)
	ra.mu.Lock()
	c.data, c.eof, c.attr, c.hold, c.err = data, eof, attr, h, err
	c.finished = true
	if c.dropped {
		c.hold.Release()
		c.hold = engine.Hold{}
	}
	ra.mu.Unlock()
	close(c.done)
}

// drop forgets a file's read-ahead (its data changed through us).
func (ra *readahead) drop(fs *engine.FS, ino uint64) {
	k := fileKey{fs, ino}
	ra.mu.Lock()
	if _, ok := ra.files[k]; ok {
		ra.dropLocked(k)
	}
	ra.mu.Unlock()
}

func (ra *readahead) dropLocked(k fileKey) {
	el := ra.files[k]
	f := el.Value.(*raFile)
	for _, c := range f.chunks {
		ra.bytes -= int64(c.count)
		ra.discardLocked(c)
	}
	ra.lru.Remove(el)
	delete(ra.files, k)
}

// wait waits for the prefetches in flight and ends the workers
// (Shutdown).
func (ra *readahead) wait() {
	ra.quitOnce.Do(func() { close(ra.quit) })
	ra.workers.wait()
}
