package pebblekv

import (
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sys/unix"
)

// overwriteWAL is a vfs.FS whose WAL files hold zeros ahead of Pebble's
// writes (Options.OverwriteWAL), so that a synced commit overwrites
// written blocks of a file whose size does not change: its fdatasync
// writes the data and flushes, where an append's also writes the inode
// (the size, and the extent that turns from unwritten to written) —
// about 0.7 ms more per commit on the development VM.
//
// Pebble's memtables start at 256 KiB and double at each rotation up to
// the configured size, and each has its own log. A log, new or recycled,
// is filled with zeros (and synced, in the rotation) to 110 % of the
// memtable it is for, counting the logs since Open as Pebble counts its
// memtables, but to walAhead at most; while Pebble writes it, it is
// extended by whole chunks when the writes come near its end, up to size
// (Pebble's preallocation, 110 % of the configured memtable). Until
// 2026-12-05 every new log was filled to size: 35 MB written and synced
// in the commit that rotated, six times in the first 1 000 small-file
// creates of a fresh server; then to the whole memtable it was for,
// which still held every commit behind a rotation to a 16 or 32 MiB
// memtable for 100-200 ms (bench/replication at 500 creates/s: source
// create+write+commit p99 120-199 ms and lag p99 84-114 ms, against
// 26-43 ms and 8-13 ms filling walAhead).
//
// Pebble's WAL reader ends the last log at its first chunk that is not
// of that log (zeros here, the records of the log it held before in a
// recycled file), and an older log at the EOF trailer Pebble wrote when
// it closed it: TestCrashOverwriteWAL.
type overwriteWAL struct {
	vfs.FS
	size     int64  // the most a log is filled to
	memtable int64  // the configured memtable size
	zero     []byte // a page of zeros
	stats    *walStats
}

// newOverwriteWAL returns a pointer: Pebble compares the FS it was opened
// with to others (ingestion links a table when the FS is its own), and a
// struct with a slice is not comparable.
func newOverwriteWAL(fs vfs.FS, memtable uint64, stats *walStats) *overwriteWAL {
	return &overwriteWAL{
		FS: fs, size: int64(memtable + memtable/10), memtable: int64(memtable),
		zero: make([]byte, os.Getpagesize()), stats: stats,
	}
}

// walStats counts what the WAL files' owner did, for tests.
type walStats struct {
	zeroBytes     atomic.Int64 // zeros written ahead of Pebble
	appendedBytes atomic.Int64 // Pebble's bytes written past the zeros
	logs          atomic.Int64 // WAL files created or recycled since Open
	extensions    atomic.Int64 // extensions of a log while Pebble writes it
	mostPrepared  atomic.Int64 // the most zeros one rotation wrote
}

const (
	// walZeroChunk is the unit of an extension.
	walZeroChunk = 512 << 10
	// walAhead bounds how far ahead of Pebble's writes an extension is
	// made (a sixteenth of the log's size for smaller logs).
	walAhead = 2 << 20
	// firstMemTable is the size of Pebble's first memtable after Open
	// (pebble.initialMemTableSize), doubled at every rotation.
	firstMemTable = 256 << 10
)

// expected returns the size to fill the log-th log since Open to: 110 %
// of the memtable Pebble makes for it.
func (o overwriteWAL) expected(log int64) int64 {
	mt := min(int64(firstMemTable), o.memtable)
	for ; log > 0 && mt < o.memtable; log-- {
		mt *= 2
	}
	mt = min(mt, o.memtable)
	return min(o.size, mt+mt/10)
}

// nextFill counts a new or recycled log and returns how far to fill it
// in the rotation: what its memtable is expected to take, walAhead at
// most (the rest follows by extension, outside the rotation).
func (o overwriteWAL) nextFill() int64 {
	return min(o.expected(o.stats.logs.Add(1)-1), walAhead)
}

func (o overwriteWAL) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := o.FS.Create(name, cat)
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	// vfs files take WriteAt only when opened for reading and writing.
	if f, err = o.FS.OpenReadWrite(name, cat); err != nil {
		return nil, err
	}
	w := o.newFill(f, 0)
	if zerr := w.prepare(o.nextFill()); zerr != nil {
		// No room, or another failure: the log is appended to as
		// without this option (Create truncates it again).
		if err := f.Close(); err != nil {
			return nil, errors.Join(zerr, err)
		}
		return o.FS.Create(name, cat)
	}
	return w, nil
}

// ReuseForWrite recycles an old WAL file: Pebble overwrites its old
// records from the start; past its old size it is filled like a new log.
func (o overwriteWAL) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := o.FS.ReuseForWrite(oldname, newname, cat)
	if err != nil || !strings.HasSuffix(newname, ".log") {
		return f, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if f, err = o.FS.OpenReadWrite(newname, cat); err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	w := o.newFill(f, fi.Size())
	// A failure here leaves the old size: Pebble's writes past it are
	// appends.
	_ = w.prepare(o.nextFill())
	return w, nil
}

func (o overwriteWAL) newFill(f vfs.File, filled int64) *fillFile {
	return &fillFile{File: f, max: o.size, zero: o.zero, stats: o.stats, filled: filled}
}

// fillFile is a WAL file that keeps zeros ahead of the (sequential)
// writes of Pebble's log writer.
type fillFile struct {
	vfs.File
	max   int64 // no zeros past this offset
	zero  []byte
	stats *walStats

	mu      sync.Mutex // guards the fields below
	written int64      // end of Pebble's writes
	filled  int64      // zeros (or a recycled log's old records) up to here
	err     error      // the first failed write of zeros: no more of them
}

// prepare fills the log to size before Pebble writes it, and syncs it.
func (w *fillFile) prepare(size int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.filled >= size {
		return nil
	}
	from := w.filled
	if !w.fillLocked(size) {
		return w.err
	}
	if n := w.filled - from; n > w.stats.mostPrepared.Load() {
		w.stats.mostPrepared.Store(n)
	}
	if err := w.Sync(); err != nil {
		w.err = err
		return err
	}
	return nil
}

// Write is Pebble's log writer appending to the log.
func (w *fillFile) Write(p []byte) (int, error) {
	n, err := w.File.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	start := w.written
	w.written += int64(n)
	if w.written > w.filled {
		w.stats.appendedBytes.Add(w.written - max(start, w.filled))
	}
	ahead := min(int64(walAhead), w.filled/16)
	if err == nil && w.filled < w.max && w.written+ahead > w.filled {
		// Whole chunks: every extension changes the file's size, which
		// the next sync writes out as an append's.
		end := (w.written + ahead + walZeroChunk - 1) / walZeroChunk * walZeroChunk
		from := max(w.filled, w.written)
		if w.fillLocked(end) && w.filled > from {
			w.stats.extensions.Add(1)
			// Write the zeros back now rather than all inside the next
			// commit's sync (which makes them durable).
			if fd := w.Fd(); fd != vfs.InvalidFd {
				_ = unix.SyncFileRange(int(fd), from, w.filled-from, unix.SYNC_FILE_RANGE_WRITE)
			}
		}
	}
	return n, err
}

// fillLocked writes zeros from the end of the zeros (never over Pebble's
// writes) up to end, at most max; it reports whether the file is filled
// that far. After a failure it writes nothing more.
func (w *fillFile) fillLocked(end int64) bool {
	end = min(end, w.max)
	for w.err == nil && max(w.filled, w.written) < end {
		from := max(w.filled, w.written)
		// One page per write: the page cache keeps a write's folio size
		// (Linux 6.x, ext4 large folios), and a later sync writes back
		// every dirty folio whole. Zeros written 1 MiB at a time made
		// each commit's fdatasync write 1 MiB (/proc/self/io
		// write_bytes: 1 031 KiB per 9 000-byte commit, 12.8 KiB after
		// page-sized zeros or an append).
		n := min(int64(len(w.zero)), end-from)
		if _, err := w.WriteAt(w.zero[:n], from); err != nil {
			w.err = err
			return false
		}
		w.filled = from + n
		w.stats.zeroBytes.Add(n)
	}
	return w.err == nil
}
