package nfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
)

// UNSTABLE writes. The engine's Write is durable when it returns (it
// group-commits), so WRITE with stable_how UNSTABLE does not call it: the
// data is copied into a per-file buffer and the reply says UNSTABLE with
// the server's write verifier. Buffered data becomes durable
//
//   - at COMMIT of the file (the client's request; it waits),
//   - when a file has buffered a few blocks' worth (the whole blocks are
//     written in the background, in parallel, while the client keeps
//     sending),
//   - after FlushDelay, by the background flusher,
//   - before SETATTR of the file, a FILE_SYNC write to it, Flush and
//     Shutdown.
//
// Data handed to the engine is "in flight" until its Write returns; a
// flight waits for earlier flights of overlapping ranges so the newest data
// always lands last. READ and GETATTR see buffered and in-flight data (the
// buffer is overlaid on what the engine returns), so clients read their
// own writes. A file removed meanwhile drops its data silently. Memory is
// bounded server-wide by MaxUnstableBytes: a writer beyond it flushes and
// waits. If the process dies, data not yet COMMITted is lost, and the
// client, seeing a new write verifier after the restart, sends it again.
//
// A failed write-back (no space, an I/O error) loses data the client was
// told was written (UNSTABLE), so, like Linux's nfsd:
//
//   - the server's write verifier changes at once: a client comparing the
//     verifier of its COMMIT with that of its WRITEs sends again
//     everything written since its last successful COMMIT;
//   - the byte ranges whose data was dropped are remembered per file, and
//     every COMMIT (or FILE_SYNC write) overlapping them fails with the
//     error (NFS3ERR_NOSPC, NFS3ERR_IO) until the client has written them
//     again successfully, truncated them away or removed the file — a
//     retried COMMIT or a second fsync never reports lost data stable;
//   - after a failure for lack of space, UNSTABLE writes to that file
//     system are written through (like FILE_SYNC) instead of buffered, so
//     they fail with NFS3ERR_NOSPC at once; the first one that succeeds
//     (space is back) turns buffering on again. The engine's own free-space
//     floor (engine.ErrNoSpace before the disk is full) does the same
//     without waiting for a failure.
type writeback struct {
	s *Server

	mu      sync.Mutex // guards the fields below
	files   map[fileKey]*dirty
	bytes   int64         // buffered + in flight
	changed chan struct{} // closed and replaced when a flight ends

	flushSem chan struct{} // bounds concurrent engine writes
	flightWG sync.WaitGroup
	lastAdd  time.Time // of the last buffered write (trimming record buffers)

	// full: file systems on which a write failed for lack of space since
	// the last write that succeeded; UNSTABLE writes are written through.
	full map[*engine.FS]bool
	// lostFiles counts files with lost ranges (bounded by maxLostFiles).
	lostFiles int

	// beforeWrite, when not nil (tests), runs in each write-back once its
	// time is chosen, before the engine write.
	beforeWrite func()

	runMu   sync.Mutex // guards started, stopCh, doneCh
	started bool
	stopCh  chan struct{}
	doneCh  chan struct{}
}

type fileKey struct {
	fs  *engine.FS
	ino uint64
}

// dirty is the buffered state of one file (guarded by writeback.mu).
type dirty struct {
	ext      []extent  // buffered: sorted by offset, not overlapping
	buffered int64     // bytes in ext
	flights  []*flight // in flight, oldest first
	cred     engine.Cred
	end      uint64    // highest end offset of buffered or in-flight data
	mtime    time.Time // time of the last buffered write
	since    time.Time // arrival of the oldest buffered extent
	// last is the latest time a write-back of the file was given
	// (backTime).
	last time.Time
	// lost are the ranges whose buffered data a failed write-back dropped
	// (sorted, disjoint); lostErr is the first such failure, which COMMITs
	// over them report; lostAt when it happened.
	lost    []span
	lostErr error
	lostAt  time.Time
}

// bytes is what the file has buffered or in flight.
func (d *dirty) bytes() int64 {
	n := d.buffered
	for _, f := range d.flights {
		n += f.bytes
	}
	return n
}

// busy reports whether the file has data buffered or in flight.
func (d *dirty) busy() bool { return len(d.ext) > 0 || len(d.flights) > 0 }

// idle reports whether the entry holds nothing at all (it can go).
func (d *dirty) idle() bool { return !d.busy() && len(d.lost) == 0 }

type extent struct {
	off  uint64
	data []byte // never modified once buffered (readers keep references)
	// buf, when not nil, is the server's record buffer data lies in:
	// every extent (and overlay) holding a piece of it holds one of its
	// references, and the last one gives it back for the next record.
	buf *wbuf
}

func (e extent) end() uint64 { return e.off + uint64(len(e.data)) }

// sub returns the piece [lo, hi) of e, which takes a reference of its
// buffer.
func (e extent) sub(lo, hi uint64) extent {
	e.buf.ref()
	return extent{off: lo, data: e.data[lo-e.off : hi-e.off], buf: e.buf}
}

// wbuf is a record buffer kept by buffered WRITE data (request.takeRecord):
// given back to the server when its last reference is dropped.
type wbuf struct {
	b    []byte
	refs atomic.Int32
	s    *Server
}

func newWbuf(s *Server, b []byte) *wbuf {
	w := &wbuf{b: b, s: s}
	w.refs.Store(1)
	return w
}

func (w *wbuf) ref() {
	if w != nil {
		w.refs.Add(1)
	}
}

func (w *wbuf) unref() {
	if w == nil {
		return
	}
	switch n := w.refs.Add(-1); {
	case n == 0:
		w.s.putRecordBuf(w.b)
		w.b = nil
	case n < 0:
		panic("nfs: write buffer released more often than referenced")
	}
}

// unrefAll drops the buffer references of ext.
func unrefAll(ext []extent) {
	for _, x := range ext {
		x.buf.unref()
	}
}

type flight struct {
	ext    []extent
	bytes  int64
	before []*flight // earlier flights of overlapping ranges
	cred   engine.Cred
	// at is the time of the file's last buffered write when the flight
	// was taken (the mtime GETATTR showed): the write-back gives the file
	// that time, not its own (engine.FS.WriteBuffered).
	at   time.Time
	done chan struct{}
	err  error // outcome, set before done is closed
}

// Tuning of background flushes.
const (
	// flushBlocks: a file with this many blocks' worth buffered writes
	// its whole blocks in the background.
	flushBlocks = 4
	// maxExtents: a file with more buffered extents than this is flushed.
	maxExtents = 1024
	// flushParallel bounds concurrent engine writes of buffered data.
	flushParallel = 16
	// fileBacklogBlocks bounds, in blocks, what one file has buffered and
	// in flight: a writer beyond it waits for its flights (the server-wide
	// bound is MaxUnstableBytes).
	fileBacklogBlocks = 2 * flushParallel
	// maxLostSpans bounds the lost ranges kept per file (more are merged
	// into one covering range: COMMIT then fails over a little more).
	maxLostSpans = 64
	// maxLostFiles bounds the files with lost ranges; past it the oldest
	// is forgotten (with a log line: the verifier has changed since, so a
	// client comparing verifiers still resends).
	maxLostFiles = 16384
	// pruneEvery: how often files with lost ranges are checked for having
	// been removed.
	pruneEvery = 10 * time.Second
)

func newWriteback(s *Server) *writeback {
	return &writeback{
		s: s, files: map[fileKey]*dirty{}, changed: make(chan struct{}), full: map[*engine.FS]bool{},
		flushSem: make(chan struct{}, flushParallel),
	}
}

// start runs the background flusher (once).
func (w *writeback) start() {
	w.runMu.Lock()
	defer w.runMu.Unlock()
	if w.started {
		return
	}
	w.started = true
	w.stopCh, w.doneCh = make(chan struct{}), make(chan struct{})
	go w.loop(w.stopCh, w.doneCh)
}

// stop ends the background flusher and waits for every flight.
func (w *writeback) stop() {
	w.runMu.Lock()
	if w.started {
		close(w.stopCh)
		<-w.doneCh
		w.started = false
	}
	w.runMu.Unlock()
	w.flightWG.Wait()
}

func (w *writeback) loop(stop, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(max(w.s.o.FlushDelay/4, 10*time.Millisecond))
	defer tick.Stop()
	lastPrune := time.Now()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		now := w.s.o.Clock()
		w.mu.Lock()
		for k, d := range w.files {
			if len(d.ext) > 0 && now.Sub(d.since) >= w.s.o.FlushDelay {
				w.launchLocked(k, d, true)
			}
		}
		// Record buffers come back from writes and from any large
		// record (a flood of partial ones too): trimmed whenever writes
		// are idle, whatever filled the list.
		trim := w.bytes == 0 && time.Since(w.lastAdd) >= trimAfter && len(w.s.recBufs) > recordBuffers
		w.mu.Unlock()
		if trim {
			w.s.trimRecordBufs()
		}
		if time.Since(lastPrune) >= pruneEvery {
			lastPrune = time.Now()
			w.pruneLost()
		}
	}
}

// pruneLost forgets the lost ranges of files that no longer exist.
func (w *writeback) pruneLost() {
	w.mu.Lock()
	var keys []fileKey
	for k, d := range w.files {
		if len(d.lost) > 0 && !d.busy() {
			keys = append(keys, k)
		}
	}
	w.mu.Unlock()
	for _, k := range keys {
		_, err := k.fs.GetAttr(w.s.ctx, k.ino)
		if !errors.Is(err, engine.ErrNotFound) && !errors.Is(err, engine.ErrStale) && !errors.Is(err, engine.ErrFSNotFound) {
			continue
		}
		w.mu.Lock()
		if d := w.files[k]; d != nil && !d.busy() {
			w.forgetLostLocked(k, d)
		}
		w.mu.Unlock()
	}
}

func sameCred(a, b engine.Cred) bool {
	return a.UID == b.UID && a.GID == b.GID && slices.Equal(a.Groups, b.Groups)
}

// add buffers an UNSTABLE write (data is the caller's to give away, and
// so is the reference to buf when not nil). It waits while the server's
// buffers are full.
func (w *writeback) add(ctx context.Context, fs *engine.FS, ino uint64, cred engine.Cred, off uint64, data []byte, buf *wbuf) error {
	k := fileKey{fs, ino}
	n := int64(len(data))
	w.mu.Lock()
	w.lastAdd = time.Now()
	// It waits while the server's buffers are full (their data is
	// flushed), and while the file's own data waiting for the engine is
	// beyond what the engine writes at once (flushParallel blocks): more
	// does not make the disk faster, it only takes memory, which on a
	// fresh server is new memory (fileBacklogBlocks).
	fileMax := fileBacklogBlocks * int64(fs.Geometry().BlockSize)
wait:
	for {
		d := w.files[k]
		switch {
		case w.bytes > 0 && w.bytes+n > w.s.o.MaxUnstableBytes:
			for fk, d := range w.files {
				if len(d.ext) > 0 {
					w.launchLocked(fk, d, true)
				}
			}
		case d != nil && d.bytes() > 0 && d.bytes()+n > fileMax:
			if len(d.flights) == 0 {
				w.launchLocked(k, d, true)
			}
		default:
			break wait
		}
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			buf.unref()
			return ctx.Err()
		}
		w.mu.Lock()
	}
	d := w.files[k]
	if d == nil {
		d = &dirty{cred: cred}
		w.files[k] = d
	}
	if len(d.ext) > 0 && !sameCred(d.cred, cred) {
		// Buffered data is written with the credential of its writers.
		w.launchLocked(k, d, true)
	}
	if len(d.ext) == 0 {
		d.since = w.s.o.Clock()
	}
	d.cred = cred
	d.insert(extent{off: off, data: data, buf: buf})
	d.end = max(d.end, off+uint64(n))
	d.mtime = w.s.o.Clock()
	w.bytes += n
	w.s.met.unstable.Set(float64(w.bytes))
	if d.buffered >= int64(flushBlocks*fs.Geometry().BlockSize) {
		w.launchLocked(k, d, false)
	}
	if len(d.ext) > maxExtents {
		w.launchLocked(k, d, true)
	}
	w.mu.Unlock()
	return nil
}

// insert adds e, replacing the bytes it overlaps.
func (d *dirty) insert(e extent) {
	// First extent ending after e starts.
	i, _ := slices.BinarySearchFunc(d.ext, e.off, func(x extent, off uint64) int {
		if x.end() <= off {
			return -1
		}
		return 1
	})
	j := i
	var keep []extent
	for ; j < len(d.ext) && d.ext[j].off < e.end(); j++ {
		x := d.ext[j]
		d.buffered -= int64(len(x.data))
		if x.off < e.off {
			keep = append(keep, x.sub(x.off, e.off))
		}
		if x.end() > e.end() {
			keep = append(keep, x.sub(e.end(), x.end()))
		}
	}
	// The replaced extents' references (their kept pieces took their own).
	unrefAll(d.ext[i:j])
	repl := make([]extent, 0, len(keep)+1)
	for _, x := range keep {
		if x.off < e.off {
			repl = append(repl, x)
		}
	}
	repl = append(repl, e)
	for _, x := range keep {
		if x.off > e.off {
			repl = append(repl, x)
		}
	}
	for _, x := range repl {
		d.buffered += int64(len(x.data))
	}
	d.ext = slices.Replace(d.ext, i, j, repl...)
}

// take removes buffered data for a flush: everything, or only the whole
// blocks of each contiguous run.
func (d *dirty) take(all bool, bs uint64) []extent {
	if all {
		out := d.ext
		d.ext, d.buffered = nil, 0
		return out
	}
	var out, rest []extent
	for i := 0; i < len(d.ext); {
		// One contiguous run: ext[i:j].
		j := i + 1
		for j < len(d.ext) && d.ext[j].off == d.ext[j-1].end() {
			j++
		}
		first, last := engine.Geometry{BlockSize: bs}.Whole(d.ext[i].off, d.ext[j-1].end())
		lo, hi := first*bs, last*bs
		for _, x := range d.ext[i:j] {
			if hi <= lo || x.end() <= lo || x.off >= hi {
				rest = append(rest, x)
				continue
			}
			if x.off >= lo && x.end() <= hi {
				out = append(out, x)
				continue
			}
			// Cut at lo and hi: each piece takes a reference of the
			// buffer, then x's own is dropped.
			if x.off < lo {
				rest = append(rest, x.sub(x.off, lo))
			}
			out = append(out, x.sub(max(x.off, lo), min(x.end(), hi)))
			if x.end() > hi {
				rest = append(rest, x.sub(hi, x.end()))
			}
			x.buf.unref()
		}
		i = j
	}
	d.ext = rest
	d.buffered = 0
	for _, x := range rest {
		d.buffered += int64(len(x.data))
	}
	return out
}

// launchLocked starts writing buffered data of a file in the background.
func (w *writeback) launchLocked(k fileKey, d *dirty, all bool) {
	if f := w.prepareLocked(k, d, all); f != nil {
		go w.run(k, f)
	}
}

// prepareLocked moves buffered data of a file into a new flight, which
// the caller runs (w.run) in the background or in its own goroutine.
func (w *writeback) prepareLocked(k fileKey, d *dirty, all bool) *flight {
	ext := d.take(all, k.fs.Geometry().BlockSize)
	if len(ext) == 0 {
		return nil
	}
	f := &flight{ext: ext, cred: d.cred, at: d.mtime, done: make(chan struct{})}
	for _, x := range ext {
		f.bytes += int64(len(x.data))
	}
	for _, g := range d.flights {
		if overlaps(g.ext, ext) {
			f.before = append(f.before, g)
		}
	}
	d.flights = append(d.flights, f)
	w.flightWG.Add(1)
	return f
}

func overlaps(a, b []extent) bool {
	for _, x := range a {
		for _, y := range b {
			if x.off < y.end() && y.off < x.end() {
				return true
			}
		}
	}
	return false
}

// run writes a flight after the earlier flights it overlaps.
func (w *writeback) run(k fileKey, f *flight) {
	defer w.flightWG.Done()
	for _, g := range f.before {
		<-g.done
	}
	w.finish(k, f, w.write(k, f))
}

// finish records the outcome of a flight's write.
func (w *writeback) finish(k fileKey, f *flight, err error) {
	if errors.Is(err, engine.ErrStale) || errors.Is(err, engine.ErrNotFound) {
		err = nil // the file is gone: its data with it
	}
	w.mu.Lock()
	d := w.files[k]
	if err != nil {
		w.loseLocked(k, d, f.ext, err)
	} else {
		for _, x := range f.ext {
			w.rewrittenLocked(k, d, x.off, x.end())
		}
		delete(w.full, k.fs)
	}
	f.err = err
	unrefAll(f.ext)
	d.flights = slices.DeleteFunc(d.flights, func(g *flight) bool { return g == f })
	w.bytes -= f.bytes
	w.s.met.unstable.Set(float64(w.bytes))
	if d.idle() {
		delete(w.files, k)
	}
	close(f.done)
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// write hands extents to the engine: contiguous runs cut at block
// boundaries into pieces of at most one block, written in parallel (they
// do not overlap, so their order does not matter); a single piece is
// written by the calling goroutine.
func (w *writeback) write(k fileKey, f *flight) error {
	ext := f.ext
	type piece struct {
		off  uint64
		data []byte
		// kept: data lies in a record buffer that goes back to the
		// server after the write (the engine must copy what it keeps).
		kept bool
	}
	g := k.fs.Geometry()
	var pieces []piece
	for i := 0; i < len(ext); {
		j := i + 1
		for j < len(ext) && ext[j].off == ext[j-1].end() {
			j++
		}
		run := ext[i:j]
		i = j
		off, end := run[0].off, run[len(run)-1].end()
		for off < end {
			pe := min(end, g.BlockEnd(off))
			data, kept := gather(run, off, pe)
			pieces = append(pieces, piece{off, data, kept})
			off = pe
		}
	}
	ctx := w.s.ctx
	at := w.backTime(k, f)
	if w.beforeWrite != nil {
		w.beforeWrite()
	}
	writeOne := func(p piece) error {
		// Buffered data is never modified once added (overlays copy out
		// of it). A copy of the writeback's own (buffer) the engine may
		// cache as it is; a record buffer is reused after the write, so
		// the engine copies what it caches of it.
		if _, _, err := k.fs.WriteBuffered(ctx, f.cred, k.ino, p.off, p.data, !p.kept, at); err != nil {
			return fmt.Errorf("write %d bytes at %d: %w", len(p.data), p.off, err)
		}
		return nil
	}
	if len(pieces) == 1 {
		return writeOne(pieces[0])
	}
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for _, p := range pieces {
		w.flushSem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-w.flushSem; wg.Done() }()
			if err := writeOne(p); err != nil {
				errMu.Lock()
				if first == nil {
					first = err
				}
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// gather returns the bytes [lo, hi) of a contiguous run, without copying
// when one extent holds them; kept reports that they lie in a record
// buffer (reused once the run is written).
func gather(run []extent, lo, hi uint64) (data []byte, kept bool) {
	var out []byte
	for _, x := range run {
		if x.end() <= lo || x.off >= hi {
			continue
		}
		a, b := max(lo, x.off), min(hi, x.end())
		piece := x.data[a-x.off : b-x.off]
		if out == nil && a == lo && b == hi {
			return piece, x.buf != nil
		}
		if out == nil {
			out = make([]byte, 0, hi-lo)
		}
		out = append(out, piece...)
	}
	return out, false
}

// loseLocked records that the data of ext could not be written: the
// ranges are lost, the verifier changes, and a failure for lack of space
// makes UNSTABLE writes to the file system write through.
func (w *writeback) loseLocked(k fileKey, d *dirty, ext []extent, err error) {
	if len(d.lost) == 0 {
		w.lostFiles++
		d.lostErr, d.lostAt = err, w.s.o.Clock()
	}
	for _, x := range ext {
		d.lost = addSpan(d.lost, span{x.off, x.end()})
	}
	if len(d.lost) > maxLostSpans {
		d.lost = []span{{d.lost[0].off, d.lost[len(d.lost)-1].end}}
	}
	if errors.Is(err, engine.ErrNoSpace) {
		w.full[k.fs] = true
	}
	w.s.met.flushErr.Inc()
	w.s.resetVerifier()
	w.s.log.Error("nfs unstable write failed: data lost, write verifier changed; COMMITs of the range fail until it is written again",
		"fs", k.fs.Name(), "ino", k.ino, "bytes", extentBytes(ext), "err", err)
	if w.lostFiles > maxLostFiles {
		w.evictLostLocked(k)
	}
}

// evictLostLocked forgets the lost ranges of the file that lost data
// longest ago (other than keep).
func (w *writeback) evictLostLocked(keep fileKey) {
	var (
		ok     fileKey
		oldest *dirty
	)
	for k, d := range w.files {
		if k != keep && len(d.lost) > 0 && (oldest == nil || d.lostAt.Before(oldest.lostAt)) {
			ok, oldest = k, d
		}
	}
	if oldest == nil {
		return
	}
	w.s.log.Warn("nfs: too many files with lost writes; forgetting the oldest (its clients saw the verifier change)",
		"fs", ok.fs.Name(), "ino", ok.ino, "lost_at", oldest.lostAt)
	w.forgetLostLocked(ok, oldest)
}

func (w *writeback) forgetLostLocked(k fileKey, d *dirty) {
	if len(d.lost) > 0 {
		w.lostFiles--
	}
	d.lost, d.lostErr = nil, nil
	if d.idle() && w.files[k] == d {
		delete(w.files, k)
	}
}

// rewrittenLocked notes that [off, end) of a file was written durably.
func (w *writeback) rewrittenLocked(k fileKey, d *dirty, off, end uint64) {
	if len(d.lost) == 0 {
		return
	}
	d.lost = subSpan(d.lost, span{off, end})
	if len(d.lost) == 0 {
		w.forgetLostLocked(k, d)
	}
}

func extentBytes(ext []extent) int64 {
	var n int64
	for _, x := range ext {
		n += int64(len(x.data))
	}
	return n
}

// rewritten notes a durable write of [off, off+n) that did not go through
// the buffer (a FILE_SYNC write): it ends a lack of space on the file
// system and clears what it covers of the file's lost ranges.
func (w *writeback) rewritten(fs *engine.FS, ino, off uint64, n int) {
	k := fileKey{fs, ino}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.full, fs)
	if d := w.files[k]; d != nil {
		w.rewrittenLocked(k, d, off, off+uint64(n))
	}
}

// failed notes a write that did not go through the buffer and failed: a
// lack of space makes UNSTABLE writes to the file system write through.
func (w *writeback) failed(fs *engine.FS, err error) {
	if !errors.Is(err, engine.ErrNoSpace) {
		return
	}
	w.mu.Lock()
	w.full[fs] = true
	w.mu.Unlock()
}

// writeThrough reports whether UNSTABLE writes to fs should be written
// through rather than buffered: a write to it failed for lack of space
// and none has succeeded since.
func (w *writeback) writeThrough(fs *engine.FS) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.full[fs]
}

// buffered returns the bytes buffered or in flight, server-wide.
func (w *writeback) buffered() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bytes
}

// truncated notes that a file was truncated to size: lost ranges past it
// are gone with the data they stood for.
func (w *writeback) truncated(fs *engine.FS, ino, size uint64) {
	k := fileKey{fs, ino}
	w.mu.Lock()
	defer w.mu.Unlock()
	if d := w.files[k]; d != nil {
		w.rewrittenLocked(k, d, size, math.MaxUint64)
	}
}

// errLost is the error of a COMMIT or FILE_SYNC write over a range whose
// data a failed write-back dropped.
type errLost struct {
	off, end uint64
	cause    error
}

func (e *errLost) Error() string {
	return fmt.Sprintf("nfs: data in [%d, %d) was lost by a failed write-back: %v", e.off, e.end, e.cause)
}

func (e *errLost) Unwrap() error { return e.cause }

// commit makes everything buffered for a file durable. It fails if any
// data in [off, off+count) (to the end of the file when count is 0) was
// lost by a failed write-back, now or earlier, and not written again
// since. wrote reports whether the file had buffered or in-flight data
// (when it had none, COMMIT changed nothing).
func (w *writeback) commit(ctx context.Context, fs *engine.FS, ino, off uint64, count uint32) (wrote bool, err error) {
	wrote, err = w.sync(ctx, fs, ino)
	if err != nil && ctx.Err() != nil {
		return wrote, err
	}
	end := uint64(math.MaxUint64)
	if count > 0 && off+uint64(count) > off {
		end = off + uint64(count)
	}
	return wrote, w.lostIn(fs, ino, off, end)
}

// lostIn returns an *errLost when a lost range of the file meets
// [off, end).
func (w *writeback) lostIn(fs *engine.FS, ino, off, end uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.files[fileKey{fs, ino}]
	if d == nil {
		return nil
	}
	for _, x := range d.lost {
		if x.off < end && off < x.end {
			return &errLost{off: max(x.off, off), end: min(x.end, end), cause: d.lostErr}
		}
	}
	return nil
}

// settle makes everything buffered for a file durable before another
// operation on it (SETATTR, a truncating CREATE); a failure stays for the
// file's COMMITs to report.
func (w *writeback) settle(ctx context.Context, fs *engine.FS, ino uint64) error {
	_, err := w.sync(ctx, fs, ino)
	if ctx.Err() != nil {
		return err
	}
	return nil
}

// sync writes everything buffered for a file and waits for every flight
// of it. It returns the first failure of those flights (whose ranges are
// then lost), or ctx's error.
func (w *writeback) sync(ctx context.Context, fs *engine.FS, ino uint64) (bool, error) {
	k := fileKey{fs, ino}
	w.mu.Lock()
	d := w.files[k]
	if d == nil || !d.busy() {
		w.mu.Unlock()
		return false, nil
	}
	own := w.prepareLocked(k, d, true)
	pending := slices.Clone(d.flights)
	w.mu.Unlock()
	if own != nil {
		// Written by the COMMIT's own goroutine: no hand-off on the
		// path of a small file's create, write, commit.
		w.run(k, own)
	}
	var first error
	for _, f := range pending {
		select {
		case <-f.done:
			if first == nil {
				first = f.err
			}
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
	return true, first
}

// settleAttr is settle followed by the attribute change sa (SETATTR
// without a guard or a size), in one engine transaction when it can: the
// file's buffered data is one piece within a block (a small file written
// UNSTABLE, as `cp -a` has the mount write it before setting its times
// and mode) and nothing of it is in flight. Data and change are then one
// durable commit where settle and SetAttr take two. It reports whether it
// made the change; when it did not, the data is settled as settle does
// (also after the combined transaction failed: the data is then written
// alone, and the caller makes the change on its own, so each fails or not
// as it would have).
func (w *writeback) settleAttr(ctx context.Context, fs *engine.FS, ino uint64, cred engine.Cred, sa engine.SetAttr) (after engine.Attr, done bool, err error) {
	k := fileKey{fs, ino}
	w.mu.Lock()
	d := w.files[k]
	var f *flight
	if d != nil && len(d.flights) == 0 && len(d.ext) > 0 && onePiece(d.ext, fs.Geometry()) {
		f = w.prepareLocked(k, d, true)
	}
	w.mu.Unlock()
	if f == nil {
		return engine.Attr{}, false, w.settle(ctx, fs, ino)
	}
	defer w.flightWG.Done()
	off, end := f.ext[0].off, f.ext[len(f.ext)-1].end()
	data, kept := gather(f.ext, off, end)
	at := w.backTime(k, f)
	if w.beforeWrite != nil {
		w.beforeWrite()
	}
	_, after, err = fs.WriteSetAttr(w.s.ctx, f.cred, ino, off, data, !kept, at, cred, sa)
	if err == nil {
		w.finish(k, f, nil)
		return after, true, nil
	}
	w.finish(k, f, w.write(k, f))
	return engine.Attr{}, false, nil
}

// onePiece reports whether ext (sorted, not overlapping) is one
// contiguous run within one block: what the engine writes in one call.
func onePiece(ext []extent, g engine.Geometry) bool {
	for i := 1; i < len(ext); i++ {
		if ext[i].off != ext[i-1].end() {
			return false
		}
	}
	return ext[len(ext)-1].end() <= g.BlockEnd(ext[0].off)
}

// has reports whether a file has buffered or in-flight data.
func (w *writeback) has(fs *engine.FS, ino uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.files[fileKey{fs, ino}]
	return d != nil && d.busy()
}

// handleBusy reports whether the file of handle fh may have buffered or
// in-flight data (true when the handle does not parse: the caller then
// takes the general path).
func (w *writeback) handleBusy(set *exportSet, fh []byte) bool {
	h, err := parseHandle(fh)
	if err != nil || set == nil {
		return true
	}
	for _, x := range set.byKey[exportKey{h.lineage, h.tag}] {
		if w.has(x.FS, h.ino) {
			return true
		}
	}
	return false
}

// flushAll writes every buffered file of fs (every file when fs is nil)
// and returns the failures of those writes.
func (w *writeback) flushAll(ctx context.Context, fs *engine.FS) error {
	w.mu.Lock()
	var keys []fileKey
	for k, d := range w.files {
		if (fs == nil || k.fs == fs) && d.busy() {
			keys = append(keys, k)
		}
	}
	w.mu.Unlock()
	var errs []error
	for _, k := range keys {
		if _, err := w.sync(ctx, k.fs, k.ino); err != nil {
			errs = append(errs, fmt.Errorf("nfs: flush %s inode %d: %w", k.fs.Name(), k.ino, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// span is a byte range [off, end).
type span struct{ off, end uint64 }

// addSpan adds x to a sorted set of disjoint spans, merging what touches.
func addSpan(s []span, x span) []span {
	if x.end <= x.off {
		return s
	}
	out := make([]span, 0, len(s)+1)
	for _, y := range s {
		switch {
		case y.end < x.off:
			out = append(out, y)
		case x.end < y.off:
			out = append(out, x)
			x = y
		default:
			x = span{min(x.off, y.off), max(x.end, y.end)}
		}
	}
	return append(out, x)
}

// subSpan removes x from a sorted set of disjoint spans.
func subSpan(s []span, x span) []span {
	if x.end <= x.off {
		return s
	}
	var out []span
	for _, y := range s {
		if y.end <= x.off || x.end <= y.off {
			out = append(out, y)
			continue
		}
		if y.off < x.off {
			out = append(out, span{y.off, x.off})
		}
		if x.end < y.end {
			out = append(out, span{x.end, y.end})
		}
	}
	return out
}

// overlayAttr applies buffered writes to a file's attributes: the size
// they extend it to and their modification time, which is also a change
// time unless the file changed after them (a LINK, a RENAME or another
// change that leaves the data buffered gives it a later ctime, which the
// client must see: it guards SETATTR and tells caches the file changed).
func (w *writeback) overlayAttr(fs *engine.FS, a *engine.Attr) {
	if a.Type != engine.TypeRegular {
		return
	}
	w.mu.Lock()
	d := w.files[fileKey{fs, a.Ino}]
	if d != nil && (len(d.ext) > 0 || len(d.flights) > 0) {
		a.Size = max(a.Size, d.end)
		at := d.backTime(d.mtime, a.Ctime)
		if at.After(a.Mtime) {
			a.Mtime = at
		}
		if at.After(a.Ctime) {
			a.Ctime = at
		}
	}
	w.mu.Unlock()
}

// backTime gives the write-back of flight f its time
// (engine.FS.WriteBuffered's at), from the file's ctime as the write's
// transaction finds it, and records it as the latest one given to the
// file (d.last): f's buffered WRITEs' time, so that a write-back changes
// no time a client was shown (overlayAttr shows it beforehand), unless
// the file changed after them in a way no write-back of this server did
// (dirty.backTime). Chosen from the ctime read before the write, it
// missed another mount target's WRITE landing in between
// (TestWriteBackRacesOtherWriter).
func (w *writeback) backTime(k fileKey, f *flight) engine.BackTime {
	return func(ctime time.Time) time.Time {
		w.mu.Lock()
		defer w.mu.Unlock()
		at := f.at
		if d := w.files[k]; d != nil {
			at = d.backTime(f.at, ctime)
			if at.After(d.last) {
				d.last = at
			}
		}
		return at
	}
}

// backTime is the time a write-back of data buffered at m gives a file
// whose ctime is now ctime: m, unless ctime is later than m and than
// every time the file's write-backs were given (another mount target
// wrote the file, or a LINK changed it, after those WRITEs came); then a
// nanosecond after ctime. The write-back changes the data, so it must
// change ctime: with size, mtime and ctime all as before (the engine
// never moves a time back), the read-ahead of another server and the
// caches of its clients took the old data for current
// (TestWriteBackAfterOtherWriter).
func (d *dirty) backTime(m, ctime time.Time) time.Time {
	if ctime.After(m) && ctime.After(d.last) {
		return ctime.Add(time.Nanosecond)
	}
	return m
}

// overlay is a snapshot of a file's buffered data, taken before reading
// from the engine.
type overlay struct {
	end uint64
	ext []extent // oldest first: flights in order, then the buffer
}

func (w *writeback) snapshot(fs *engine.FS, ino uint64) *overlay {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.files[fileKey{fs, ino}]
	if d == nil || len(d.ext) == 0 && len(d.flights) == 0 {
		return nil
	}
	o := &overlay{end: d.end}
	for _, f := range d.flights {
		o.ext = append(o.ext, f.ext...)
	}
	o.ext = append(o.ext, d.ext...)
	for _, x := range o.ext {
		x.buf.ref()
	}
	return o
}

// release drops the overlay's references to record buffers (it must not
// be applied afterwards).
func (o *overlay) release() {
	if o != nil {
		unrefAll(o.ext)
		o.ext = nil
	}
}

// apply overlays buffered data on a read of count bytes at off that
// returned data from a file of the given size. data is not modified (the
// engine may share it with its block cache): when buffered data overlaps
// the read, the result is a copy.
func (o *overlay) apply(off uint64, count int, data []byte, size uint64) ([]byte, bool) {
	size = max(size, o.end)
	end := min(size, off+uint64(count))
	if off >= end {
		return data[:0], off >= size
	}
	private := false
	if uint64(len(data)) < end-off {
		grown := make([]byte, end-off)
		copy(grown, data)
		data, private = grown, true
	}
	data = data[:end-off]
	for _, x := range o.ext {
		if x.end() <= off || x.off >= end {
			continue
		}
		if !private {
			data, private = bytes.Clone(data), true
		}
		a, b := max(off, x.off), min(end, x.end())
		copy(data[a-off:b-off], x.data[a-x.off:b-x.off])
	}
	return data, end == size
}
