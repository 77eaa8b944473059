package pebblekv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	seq "iter"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/objstorage"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sys/unix"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/loglimit"
)

// Options configure a Store.
type Options struct {
	// FS is the file system Pebble runs on; vfs.Default when nil.
	FS vfs.FS
	// Cache is a block cache shared with other stores; when nil one is
	// made for this store that holds CacheSizeBytes (default 64 MiB) of
	// blocks besides its MemTableReservation. A shared cache must be
	// sized the same way: the blocks it is meant to hold plus the
	// MemTableReservation of every store that uses it.
	Cache          *pebble.Cache
	CacheSizeBytes int64
	// MemTableSizeBytes defaults to DefaultMemTableSize.
	MemTableSizeBytes uint64
	// OverwriteWAL keeps zeros ahead of Pebble's writes in its WAL
	// files (up to the size Pebble preallocates for them, 110 % of the
	// memtable), so that synced commits are overwrites: an append's
	// fdatasync also writes the file's inode (its size changes), an
	// overwrite's does not (see overwriteWAL). It takes no more space
	// than Pebble's own preallocation.
	OverwriteWAL bool
	Logger       *slog.Logger
	ReadOnly     bool
	// OnBackgroundError, when set, is called with every error of Pebble's
	// background work (flushes, compactions), e.g. no space left on the
	// device. Pebble retries them on its own; they are logged at most
	// once per LogEvery with the number of repeats.
	OnBackgroundError func(error)
}

// DefaultMemTableSize is the size of a memtable when Options do not set it.
const DefaultMemTableSize = 32 << 20

// dataBlockSize is the data block size of the tables at every level.
// 32 KiB blocks were measured (sync9, bench/replication/README.md): an
// initial sync's ingest used ~20 % less CPU, but a cold GETATTR cost
// 19-77 µs of CPU instead of 15-20 µs, and cold files are what the
// bottom level holds.
const dataBlockSize = 4 << 10

// MemTableReservation is how much of its block cache a store whose
// memtables are memTableSize bytes (0: the default) takes for them: Pebble
// charges every memtable it holds to the cache — the one being written and
// the one kept for reuse (or being flushed). A cache no larger than that
// holds no block at all, and every read of a table decompresses its
// blocks from the operating system's page cache again (what made a
// READDIRPLUS page of the oldest entries of a directory of 1 000 000 files
// 20-40 times slower than one of its newest: their inodes are read from
// the bottom level, through every level above).
func MemTableReservation(memTableSize uint64) int64 {
	if memTableSize == 0 {
		memTableSize = DefaultMemTableSize
	}
	return 2 * int64(memTableSize)
}

// LogEvery is the least time between two log lines of the same repeated
// Pebble error (a flush failing for lack of space retries in a loop).
const LogEvery = 10 * time.Second

// Store is a kv.Store on a Pebble DB. Pebble panics when a closed DB is
// used; Store turns that into kv.ErrClosed.
type Store struct {
	db      *pebble.DB
	opts    *pebble.Options
	dir     string
	closed  atomic.Bool
	bgErrs  *atomic.Uint64
	wal     *walStats
	ingests atomic.Uint64 // tables ingested (also names their files)
	// uncompressed counts the tables IngestIncompressible wrote.
	uncompressed atomic.Uint64
	// ownCache: the block cache was made for this store (Options.Cache
	// nil), so every reservation in it is this DB's (HoldCache).
	ownCache bool
	hold     cacheHold
}

// cacheHold is a Store's hold of its block cache (HoldCache).
type cacheHold struct {
	mu      sync.Mutex // guards the fields below
	n       int        // holds not released
	release func()     // the reservation's, while n > 0 (nil: none was needed)
}

var _ kv.Store = (*Store)(nil)

var _ kv.LogSyncer = (*Store)(nil)

// SyncLog syncs the WAL (kv.LogSyncer): every batch committed before it,
// with or without sync, is durable when it returns.
func (s *Store) SyncLog() error {
	if s.closed.Load() {
		return kv.ErrClosed
	}
	return mapErr(s.db.LogData(nil, pebble.Sync))
}

// Open opens (or creates) the store in dir.
func Open(dir string, o Options) (*Store, error) {
	cache := o.Cache
	if cache == nil {
		size := o.CacheSizeBytes
		if size == 0 {
			size = 64 << 20
		}
		cache = pebble.NewCache(size + MemTableReservation(o.MemTableSizeBytes))
		defer cache.Unref() // the DB holds its own reference
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mt := o.MemTableSizeBytes
	if mt == 0 {
		mt = DefaultMemTableSize
	}
	fs := o.FS
	wal := new(walStats)
	if o.OverwriteWAL {
		if fs == nil {
			fs = vfs.Default
		}
		fs = newOverwriteWAL(fs, mt, wal)
	}
	lim := loglimit.New(LogEvery)
	logger := slogLogger{l: log, lim: lim}
	bgErrs := new(atomic.Uint64)
	opts := &pebble.Options{
		FS:                 fs,
		Cache:              cache,
		MemTableSize:       mt,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             logger,
		ReadOnly:           o.ReadOnly,
		EventListener: &pebble.EventListener{BackgroundError: func(err error) {
			bgErrs.Add(1)
			if o.OnBackgroundError != nil {
				o.OnBackgroundError(err)
			}
			logger.Errorf("background error: %s", err)
		}},
	}
	// Bloom filters (10 bits per key, ~1 % false positives) on every
	// level: a point read (an inode's attributes, a name's dentry, a
	// create's check that its name is free) skips the tables that do not
	// hold its key instead of reading an index and a data block of each.
	// Without them, reading the attributes of an old inode walked every
	// L0 table and level down to the bottom: with 1 000 000 files in a
	// directory, a READDIRPLUS page of its first (oldest) entries cost
	// 20-40 times one of its last.
	opts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	opts.Levels[0].BlockSize = dataBlockSize
	// Index blocks keep Pebble's size: a larger one is loaded whole for
	// the first point read of each part of a table.
	opts.Levels[0].IndexBlockSize = 4 << 10
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("pebblekv: open %s: %w", dir, err)
	}
	// Ingest writes tables with the options Pebble runs with (Open
	// defaults a copy of opts).
	dopts := opts.Clone()
	dopts.EnsureDefaults()
	if !o.ReadOnly {
		if err := removeIngestFiles(dopts.FS, dir); err != nil {
			db.Close()
			return nil, fmt.Errorf("pebblekv: open %s: %w", dir, err)
		}
	}
	return &Store{db: db, opts: dopts, dir: dir, bgErrs: bgErrs, wal: wal, ownCache: o.Cache == nil}, nil
}

var _ kv.CacheHolder = (*Store)(nil)

// holdFloorDiv: a held cache keeps room for at least 1/holdFloorDiv of the
// blocks it may hold, however little it held when the hold began, so that
// the server's other reads (clients' hot inodes and directories) keep a
// cache while a long scan runs on a freshly started server.
const holdFloorDiv = 4

// HoldCache keeps the block cache from growing past what it holds now (or
// a quarter of its room for blocks, when it holds less) until the last
// hold is released (kv.CacheHolder). It reserves the cache's free room, as
// Pebble reserves room for its memtables: blocks loaded meanwhile replace
// the coldest ones, whose memory the allocator hands out again, instead of
// taking memory new to the process. A store on a shared cache (Options.Cache)
// does not hold it: the other stores' memtable reservations are not known
// here, and a reservation that counted them out would evict their blocks.
func (s *Store) HoldCache() (release func()) {
	if !s.ownCache {
		return func() {}
	}
	h := &s.hold
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed.Load() {
		return func() {}
	}
	if h.n == 0 {
		c := s.opts.Cache
		m := s.db.Metrics()
		room := c.MaxSize() - int64(m.MemTable.Size+m.MemTable.ZombieSize) // for blocks
		keep := max(c.Size(), room/holdFloorDiv)
		if free := room - keep; free > 0 {
			h.release = c.Reserve(int(free))
		}
	}
	h.n++
	var once sync.Once
	return func() { once.Do(s.unhold) }
}

// unhold releases one hold, and the reservation with the last.
func (s *Store) unhold() {
	h := &s.hold
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return // released by Close
	}
	h.n--
	if h.n == 0 && h.release != nil {
		h.release()
		h.release = nil
	}
}

// BackgroundErrors returns how many errors Pebble's background work has
// met since Open.
func (s *Store) BackgroundErrors() uint64 { return s.bgErrs.Load() }

// slogLogger routes Pebble's log lines to slog; a repeated error line is
// logged at most once per LogEvery.
type slogLogger struct {
	l   *slog.Logger
	lim *loglimit.Limiter
}

func (s slogLogger) Infof(format string, args ...any) {
	s.l.Debug("pebble", "msg", fmt.Sprintf(format, args...))
}
func (s slogLogger) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if ok, repeats := s.lim.Allow(kindOf(msg), time.Now()); ok {
		if repeats > 0 {
			s.l.Error("pebble", "msg", msg, "repeated", repeats, "over", s.lim.Every())
		} else {
			s.l.Error("pebble", "msg", msg)
		}
	}
}

// kindOf is the kind of a Pebble error line for the log limiter: repeats
// differ in their numbers (file numbers, offsets), so the text without
// digits names it.
func kindOf(msg string) string {
	key := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return '#'
		}
		return r
	}, msg)
	if len(key) > 160 {
		key = key[:160]
	}
	return key
}

func (s slogLogger) Fatalf(format string, args ...any) {
	// Pebble calls Fatalf on unrecoverable corruption; it expects the
	// process to stop.
	panic(fmt.Sprintf("pebble: "+format, args...))
}

// DB exposes the Pebble DB (metrics, checkpoints).
func (s *Store) DB() *pebble.DB { return s.db }

// Metrics returns Pebble's metrics.
func (s *Store) Metrics() *pebble.Metrics { return s.db.Metrics() }

// Flush flushes the memtable.
func (s *Store) Flush() error { return s.db.Flush() }

// Get returns a copy of the value of key.
func (s *Store) Get(key []byte) ([]byte, error) {
	if s.closed.Load() {
		return nil, kv.ErrClosed
	}
	return get(s.db, key)
}

// getter is what DB, Batch and Snapshot have in common for point reads.
type getter interface {
	Get(key []byte) ([]byte, io.Closer, error)
}

func get(g getter, key []byte) ([]byte, error) {
	v, c, err := g.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, kv.ErrNotFound
	}
	if err != nil {
		return nil, mapErr(err)
	}
	out := bytes.Clone(v)
	if out == nil {
		out = []byte{}
	}
	return out, c.Close()
}

func mapErr(err error) error {
	if errors.Is(err, pebble.ErrClosed) {
		return fmt.Errorf("%w: %w", kv.ErrClosed, err)
	}
	return err
}

// NewIter iterates [lo, hi).
func (s *Store) NewIter(lo, hi []byte) (kv.Iterator, error) {
	if s.closed.Load() {
		return nil, kv.ErrClosed
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: bytes.Clone(lo), UpperBound: bytes.Clone(hi)})
	if err != nil {
		return nil, mapErr(err)
	}
	return &iter{it: it}, nil
}

// NewSnapshot returns a point-in-time view.
func (s *Store) NewSnapshot() kv.Snapshot {
	if s.closed.Load() {
		return &snapshot{closed: true}
	}
	return &snapshot{s: s.db.NewSnapshot()}
}

// NewBatch returns an indexed batch.
func (s *Store) NewBatch() kv.Batch {
	if s.closed.Load() {
		return &batch{closed: true}
	}
	return &batch{b: s.db.NewIndexedBatch(), db: s.db}
}

var _ kv.Ingester = (*Store)(nil)

// ingestPrefix starts the names of the tables Ingest writes in the
// store's directory before Pebble links them in; one left by a crash is
// removed at Open (Pebble ignores the name).
const ingestPrefix = "regionfs-ingest-"

// Ingest writes pairs into an sstable of the DB's format beside it,
// synced, and ingests it (kv.Ingester): Pebble links it into the level
// below everything it overlaps (the bottom one when it overlaps nothing),
// after a flush of the memtable if the memtable holds keys in its range.
func (s *Store) Ingest(pairs seq.Seq2[[]byte, []byte]) error {
	return s.ingest(pairs, false)
}

var _ kv.IncompressibleIngester = (*Store)(nil)

// IngestIncompressible is Ingest of pairs whose values will not compress
// (kv.IncompressibleIngester): the table's blocks are written without a
// compression attempt (snappy, by default, tries every block and keeps
// the plain one when it saves less than 12 %).
func (s *Store) IngestIncompressible(pairs seq.Seq2[[]byte, []byte]) error {
	s.uncompressed.Add(1)
	return s.ingest(pairs, true)
}

// UncompressedIngests returns how many tables IngestIncompressible was
// asked for since Open.
func (s *Store) UncompressedIngests() uint64 { return s.uncompressed.Load() }

func (s *Store) ingest(pairs seq.Seq2[[]byte, []byte], incompressible bool) error {
	if s.closed.Load() {
		return kv.ErrClosed
	}
	name := s.opts.FS.PathJoin(s.dir, fmt.Sprintf("%s%d.sst", ingestPrefix, s.ingests.Add(1)))
	err := s.writeTable(name, pairs, incompressible)
	if err == nil {
		err = s.db.Ingest(context.Background(), []string{name})
	}
	// Pebble linked the table under a name of its own (or failed).
	if rerr := s.opts.FS.Remove(name); err == nil && rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("pebblekv: ingest: %w", mapErr(err))
	}
	return nil
}

// writeTable writes pairs into a new sstable, name, and syncs it; its
// blocks uncompressed when the values are incompressible.
func (s *Store) writeTable(name string, pairs seq.Seq2[[]byte, []byte], incompressible bool) error {
	f, err := s.opts.FS.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	f = dropCacheOnClose{f}
	// Written back as it is written, as Pebble's own tables are: the
	// sync at the end has little left to wait for.
	f = vfs.NewSyncingFile(f, vfs.SyncingFileOptions{BytesPerSync: s.opts.BytesPerSync})
	// Level 0's options (bloom filters, block sizes; Open sets no other
	// level's): a table for any level.
	wo := s.opts.MakeWriterOptions(0, s.db.TableFormat())
	if incompressible {
		wo.Compression = sstable.NoCompression
	}
	w := sstable.NewWriter(newTableWritable(f), wo)
	for k, v := range pairs {
		if err := w.Set(k, v); err != nil {
			w.Close()
			return err
		}
	}
	return w.Close() // syncs and closes f
}

// tableWriteBytes is the size of the writes of an ingested table: what
// the table writer hands over is buffered up to it.
const tableWriteBytes = 256 << 10

// tableWritable is an ingested table's objstorage.Writable: Pebble's own
// (objstorageprovider.NewFileWritable) buffers in bufio's default 4 KiB,
// so a table of 4 KiB values (a sync of small files: one value per data
// block) went to the file in one write(2) per block — ~100 000 system
// calls for a 100 000-file sync's tables: the destination's table writing
// cost 0.87 CPU-s, 0.24 in 256 KiB writes (sync26,
// bench/replication/README.md). The bytes written are the same; only the
// calls are fewer.
type tableWritable struct {
	f  vfs.File
	bw *bufio.Writer
}

func newTableWritable(f vfs.File) *tableWritable {
	return &tableWritable{f: f, bw: bufio.NewWriterSize(f, tableWriteBytes)}
}

// Write buffers p (objstorage.Writable).
func (w *tableWritable) Write(p []byte) error {
	_, err := w.bw.Write(p)
	return err
}

// Finish writes what is buffered, syncs and closes the file.
func (w *tableWritable) Finish() error {
	err := w.bw.Flush()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Abort closes the file; the caller removes it.
func (w *tableWritable) Abort() { _ = w.f.Close() }

var _ objstorage.Writable = (*tableWritable)(nil)

// dropCacheOnClose is an ingested table's file: Close first asks the
// kernel to drop the file's pages from its cache (advice; the writer
// closes the file after its sync, so every page is written back and can
// go). A replica's initial sync writes hundreds of MiB of tables that
// nothing reads soon; kept, they grow the page cache into memory the
// guest has not touched, and on the development VM each fresh page costs
// the write(2) that first fills it several times a reused one's (a loop of
// 11 tables of 37 MiB, 256 KiB writes, synced: 0.93–0.94 CPU-s kept
// against 0.21–0.33 dropped). Dropped, the next table's pages are the
// ones just freed. Pebble's own reads of the table (ingest, later scans)
// go to the disk.
type dropCacheOnClose struct{ vfs.File }

func (f dropCacheOnClose) Close() error {
	if fd := f.Fd(); fd != vfs.InvalidFd {
		_ = unix.Fadvise(int(fd), 0, 0, unix.FADV_DONTNEED)
	}
	return f.File.Close()
}

// removeIngestFiles removes the tables Ingest had written but not handed
// to Pebble when the process stopped.
func removeIngestFiles(fs vfs.FS, dir string) error {
	names, err := fs.List(dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if strings.HasPrefix(n, ingestPrefix) {
			if err := fs.Remove(fs.PathJoin(dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// Close closes the DB; closing twice is a no-op.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	// A reservation is released before the DB lets its cache go.
	s.hold.mu.Lock()
	if s.hold.release != nil {
		s.hold.release()
		s.hold.release = nil
	}
	s.hold.n = 0
	s.hold.mu.Unlock()
	return s.db.Close()
}

type snapshot struct {
	s      *pebble.Snapshot
	closed bool
}

func (s *snapshot) Get(key []byte) ([]byte, error) {
	if s.closed {
		return nil, kv.ErrClosed
	}
	return get(s.s, key)
}

func (s *snapshot) NewIter(lo, hi []byte) (kv.Iterator, error) {
	if s.closed {
		return nil, kv.ErrClosed
	}
	it, err := s.s.NewIter(&pebble.IterOptions{LowerBound: bytes.Clone(lo), UpperBound: bytes.Clone(hi)})
	if err != nil {
		return nil, mapErr(err)
	}
	return &iter{it: it}, nil
}

func (s *snapshot) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	return s.s.Close()
}

func (b *batch) writable() bool { return !b.closed && !b.committed }

type batch struct {
	b         *pebble.Batch
	db        *pebble.DB
	committed bool
	closed    bool
}

func (b *batch) Get(key []byte) ([]byte, error) {
	if b.closed {
		return nil, kv.ErrClosed
	}
	return get(b.b, key)
}

func (b *batch) NewIter(lo, hi []byte) (kv.Iterator, error) {
	if b.closed {
		return nil, kv.ErrClosed
	}
	it, err := b.b.NewIter(&pebble.IterOptions{LowerBound: bytes.Clone(lo), UpperBound: bytes.Clone(hi)})
	if err != nil {
		return nil, mapErr(err)
	}
	return &iter{it: it}, nil
}

// Pebble's batch writes only fail on a closed or committed batch, which is
// a programming error here; they are ignored like Pebble's own examples do.
func (b *batch) Set(key, value []byte) {
	if b.writable() {
		_ = b.b.Set(key, value, nil)
	}
}

func (b *batch) Delete(key []byte) {
	if b.writable() {
		_ = b.b.Delete(key, nil)
	}
}

func (b *batch) DeleteRange(lo, hi []byte) {
	if b.writable() {
		_ = b.b.DeleteRange(lo, hi, nil)
	}
}

func (b *batch) Count() int {
	if b.b == nil {
		return 0
	}
	return int(b.b.Count())
}

func (b *batch) Empty() bool { return b.b == nil || b.b.Empty() }

func (b *batch) Commit(sync bool) error {
	switch {
	case b.closed:
		return kv.ErrClosed
	case b.committed:
		return errors.New("pebblekv: batch already committed")
	}
	wo := pebble.NoSync
	if sync {
		wo = pebble.Sync
	}
	if err := b.b.Commit(wo); err != nil {
		return mapErr(err)
	}
	b.committed = true
	return nil
}

// CommitAsync is a Pebble sync commit whose caller does not wait for the
// WAL sync (ApplyNoSyncWait): the batch is applied and visible when it
// returns, as after Commit(true), and wait returns once the WAL sync that
// covers it is done. Pebble shares one WAL sync between the batches
// waiting for it, so a caller that commits its next batch meanwhile gets
// both synced by one fsync.
func (b *batch) CommitAsync() (func() error, error) {
	switch {
	case b.closed:
		return nil, kv.ErrClosed
	case b.committed:
		return nil, errors.New("pebblekv: batch already committed")
	}
	b.committed = true
	if b.b.Empty() {
		return func() error { return nil }, nil
	}
	if err := b.db.ApplyNoSyncWait(b.b, pebble.Sync); err != nil {
		return nil, mapErr(err)
	}
	return func() error { return mapErr(b.b.SyncWait()) }, nil
}

func (b *batch) Close() error {
	if b.closed || b.b == nil {
		b.closed = true
		return nil
	}
	b.closed = true
	return b.b.Close()
}

type iter struct {
	it *pebble.Iterator
}

func (i *iter) First() bool          { return i.it.First() }
func (i *iter) Last() bool           { return i.it.Last() }
func (i *iter) Next() bool           { return i.it.Next() }
func (i *iter) Prev() bool           { return i.it.Prev() }
func (i *iter) SeekGE(k []byte) bool { return i.it.SeekGE(k) }
func (i *iter) SeekLT(k []byte) bool { return i.it.SeekLT(k) }
func (i *iter) Valid() bool          { return i.it.Valid() }
func (i *iter) Key() []byte          { return i.it.Key() }
func (i *iter) Value() ([]byte, error) {
	v, err := i.it.ValueAndErr()
	return v, mapErr(err)
}
func (i *iter) Error() error { return mapErr(i.it.Error()) }
func (i *iter) Close() error { return mapErr(i.it.Close()) }
