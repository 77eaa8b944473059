package nfs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
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
// own writes. A failed background write is kept and answered at the next
// COMMIT of the file (NFS3ERR_IO, NFS3ERR_NOSPC, ...); a file removed
// meanwhile drops its data silently. Memory is bounded server-wide by
// MaxUnstableBytes: a writer beyond it flushes and waits. If the process
// dies, data not yet COMMITted is lost, and the client, seeing a new write
// verifier after the restart, sends it again.
type writeback struct {
	s *Server

	mu      sync.Mutex // guards the fields below
	files   map[fileKey]*dirty
	bytes   int64         // buffered + in flight
	changed chan struct{} // closed and replaced when a flight ends

	flushSem chan struct{} // bounds concurrent engine writes
	flightWG sync.WaitGroup

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
	err      error     // first failed background write, reported at COMMIT
}

type extent struct {
	off  uint64
	data []byte // never modified once buffered (readers keep references)
}

func (e extent) end() uint64 { return e.off + uint64(len(e.data)) }

type flight struct {
	ext    []extent
	bytes  int64
	before []*flight // earlier flights of overlapping ranges
	cred   engine.Cred
	done   chan struct{}
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
)

func newWriteback(s *Server) *writeback {
	return &writeback{
		s: s, files: map[fileKey]*dirty{}, changed: make(chan struct{}),
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
		w.mu.Unlock()
	}
}

func (w *writeback) blockSize(fs *engine.FS) uint64 {
	if bs := fs.BlockSize(); bs > 0 {
		return uint64(bs)
	}
	return engine.DefaultBlockSize
}

func sameCred(a, b engine.Cred) bool {
	return a.UID == b.UID && a.GID == b.GID && slices.Equal(a.Groups, b.Groups)
}

// add buffers an UNSTABLE write (data is the caller's to give away). It
// waits while the server's buffers are full.
func (w *writeback) add(ctx context.Context, fs *engine.FS, ino uint64, cred engine.Cred, off uint64, data []byte) error {
	k := fileKey{fs, ino}
	n := int64(len(data))
	w.mu.Lock()
	for w.bytes > 0 && w.bytes+n > w.s.o.MaxUnstableBytes {
		for fk, d := range w.files {
			if len(d.ext) > 0 {
				w.launchLocked(fk, d, true)
			}
		}
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
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
	d.insert(extent{off: off, data: data})
	d.end = max(d.end, off+uint64(n))
	d.mtime = w.s.o.Clock()
	w.bytes += n
	w.s.met.unstable.Set(float64(w.bytes))
	if d.buffered >= int64(flushBlocks*w.blockSize(fs)) {
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
			keep = append(keep, extent{off: x.off, data: x.data[:e.off-x.off]})
		}
		if x.end() > e.end() {
			keep = append(keep, extent{off: e.end(), data: x.data[e.end()-x.off:]})
		}
	}
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
		lo := (d.ext[i].off + bs - 1) / bs * bs
		hi := d.ext[j-1].end() / bs * bs
		for _, x := range d.ext[i:j] {
			if hi <= lo {
				rest = append(rest, x)
				continue
			}
			if x.off < lo {
				cut := min(lo, x.end())
				rest = append(rest, extent{off: x.off, data: x.data[:cut-x.off]})
				if cut == x.end() {
					continue
				}
				x = extent{off: cut, data: x.data[cut-x.off:]}
			}
			if x.end() > hi {
				if x.off < hi {
					out = append(out, extent{off: x.off, data: x.data[:hi-x.off]})
					x = extent{off: hi, data: x.data[hi-x.off:]}
				}
				rest = append(rest, x)
				continue
			}
			out = append(out, x)
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
	ext := d.take(all, w.blockSize(k.fs))
	if len(ext) == 0 {
		return nil
	}
	f := &flight{ext: ext, cred: d.cred, done: make(chan struct{})}
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
	err := w.write(k, f.ext, f.cred)
	w.mu.Lock()
	d := w.files[k]
	if err != nil && !errors.Is(err, engine.ErrStale) && d.err == nil {
		d.err = err
		w.s.met.flushErr.Inc()
		w.s.log.Error("nfs unstable write failed", "fs", k.fs.Name(), "ino", k.ino, "err", err)
	}
	d.flights = slices.DeleteFunc(d.flights, func(g *flight) bool { return g == f })
	w.bytes -= f.bytes
	w.s.met.unstable.Set(float64(w.bytes))
	if len(d.ext) == 0 && len(d.flights) == 0 && d.err == nil {
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
func (w *writeback) write(k fileKey, ext []extent, cred engine.Cred) error {
	type piece struct {
		off  uint64
		data []byte
	}
	bs := w.blockSize(k.fs)
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
			pe := min(end, (off/bs+1)*bs)
			pieces = append(pieces, piece{off, gather(run, off, pe)})
			off = pe
		}
	}
	ctx := w.s.ctx
	writeOne := func(p piece) error {
		if _, _, err := k.fs.Write(ctx, cred, k.ino, p.off, p.data); err != nil {
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
// when one extent holds them.
func gather(run []extent, lo, hi uint64) []byte {
	var out []byte
	for _, x := range run {
		if x.end() <= lo || x.off >= hi {
			continue
		}
		a, b := max(lo, x.off), min(hi, x.end())
		piece := x.data[a-x.off : b-x.off]
		if out == nil && a == lo && b == hi {
			return piece
		}
		if out == nil {
			out = make([]byte, 0, hi-lo)
		}
		out = append(out, piece...)
	}
	return out
}

// commit makes everything buffered for a file durable and returns (and
// forgets) the first failure of its background writes.
func (w *writeback) commit(ctx context.Context, fs *engine.FS, ino uint64) error {
	return w.sync(ctx, fs, ino, true)
}

// settle makes everything buffered for a file durable before another
// operation on it (SETATTR, a truncating CREATE); a failure of a
// background write stays for the file's next COMMIT to report.
func (w *writeback) settle(ctx context.Context, fs *engine.FS, ino uint64) error {
	return w.sync(ctx, fs, ino, false)
}

func (w *writeback) sync(ctx context.Context, fs *engine.FS, ino uint64, report bool) error {
	k := fileKey{fs, ino}
	w.mu.Lock()
	d := w.files[k]
	if d == nil {
		w.mu.Unlock()
		return nil
	}
	own := w.prepareLocked(k, d, true)
	pending := slices.Clone(d.flights)
	w.mu.Unlock()
	if own != nil {
		// Written by the COMMIT's own goroutine: no hand-off on the
		// path of a small file's create, write, commit.
		w.run(k, own)
	}
	for _, f := range pending {
		select {
		case <-f.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if !report {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	err := d.err
	d.err = nil
	if cur := w.files[k]; cur == d && len(d.ext) == 0 && len(d.flights) == 0 {
		delete(w.files, k)
	}
	return err
}

// has reports whether a file has buffered or in-flight data (or an error
// to report).
func (w *writeback) has(fs *engine.FS, ino uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.files[fileKey{fs, ino}]
	return ok
}

// flushAll commits every file of fs (every file when fs is nil).
func (w *writeback) flushAll(ctx context.Context, fs *engine.FS) error {
	w.mu.Lock()
	var keys []fileKey
	for k := range w.files {
		if fs == nil || k.fs == fs {
			keys = append(keys, k)
		}
	}
	w.mu.Unlock()
	var errs []error
	for _, k := range keys {
		if err := w.commit(ctx, k.fs, k.ino); err != nil {
			errs = append(errs, fmt.Errorf("nfs: flush %s inode %d: %w", k.fs.Name(), k.ino, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// overlayAttr applies buffered writes to a file's attributes: the size
// they extend it to and their modification time.
func (w *writeback) overlayAttr(fs *engine.FS, a *engine.Attr) {
	if a.Type != engine.TypeRegular {
		return
	}
	w.mu.Lock()
	d := w.files[fileKey{fs, a.Ino}]
	if d != nil && (len(d.ext) > 0 || len(d.flights) > 0) {
		a.Size = max(a.Size, d.end)
		if d.mtime.After(a.Mtime) {
			a.Mtime, a.Ctime = d.mtime, d.mtime
		}
	}
	w.mu.Unlock()
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
	return o
}

// apply overlays buffered data on a read of count bytes at off that
// returned data from a file of the given size.
func (o *overlay) apply(off uint64, count int, data []byte, size uint64) ([]byte, bool) {
	size = max(size, o.end)
	end := min(size, off+uint64(count))
	if off >= end {
		return data[:0], off >= size
	}
	if uint64(len(data)) < end-off {
		grown := make([]byte, end-off)
		copy(grown, data)
		data = grown
	}
	data = data[:end-off]
	for _, x := range o.ext {
		if x.end() <= off || x.off >= end {
			continue
		}
		a, b := max(off, x.off), min(end, x.end())
		copy(data[a-off:b-off], x.data[a-x.off:b-x.off])
	}
	return data, end == size
}
