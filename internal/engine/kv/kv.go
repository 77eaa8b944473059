package kv

import (
	"errors"
	"fmt"
	"iter"
)

// ErrNotFound is returned by Get when the key is absent.
var ErrNotFound = errors.New("kv: not found")

// ErrClosed is returned by operations on a closed store, snapshot or batch.
var ErrClosed = errors.New("kv: closed")

// ErrCorrupt is returned when a stored value fails an integrity check (for
// example a sealed value whose authentication tag does not verify). The engine
// wraps it into engine.ErrCorrupt.
var ErrCorrupt = errors.New("kv: corrupt value")

// ErrKeyUnavailable is returned by a sealing layer whose key is not
// available (a disabled KMS key): the value is intact but cannot be read
// now. It is not corruption.
var ErrKeyUnavailable = errors.New("kv: sealing key unavailable")

// ErrFenced is returned by Commit of a store shared by several writers
// (nodes of one region on one database) when the writer no longer owns
// keys it wrote: another took them over, and the batch was not applied.
// It is not a storage failure: the writer stops writing those keys.
var ErrFenced = errors.New("kv: fenced: another writer owns these keys now")

// Reader reads keys. Implementations are safe for concurrent use unless
// documented otherwise (a Batch is used by one goroutine at a time).
type Reader interface {
	// Get returns a copy of the value stored under key, or ErrNotFound.
	// The caller owns the returned slice.
	Get(key []byte) ([]byte, error)
	// NewIter returns an iterator over the keys in [lo, hi). A nil lo means
	// from the first key, a nil hi means to the last key. The iterator sees
	// a consistent view taken when it was created (a snapshot's view for a
	// Snapshot, the batch over the store for a Batch).
	NewIter(lo, hi []byte) (Iterator, error)
}

// Iterator walks keys in ascending byte order within its bounds. It is used
// by one goroutine. A positioning method returns whether the iterator is now
// at a valid entry. Key and Value stay valid until the next positioning call;
// callers copy what they keep.
type Iterator interface {
	First() bool
	Last() bool
	Next() bool
	Prev() bool
	// SeekGE positions at the first key >= key (clamped to the bounds).
	SeekGE(key []byte) bool
	// SeekLT positions at the last key < key (clamped to the bounds).
	SeekLT(key []byte) bool
	Valid() bool
	Key() []byte
	// Value returns the current value; an error (ErrCorrupt) when a stored
	// value cannot be decoded by a wrapping layer.
	Value() ([]byte, error)
	// Error returns the first error the iterator met, if any.
	Error() error
	Close() error
}

// ValueAppender is an Iterator that can append its current value to a
// caller's buffer, so that a layer that decodes values (Sealed) decodes
// into it instead of into fresh memory of its own.
type ValueAppender interface {
	AppendValue(dst []byte) ([]byte, error)
}

// AppendValue appends the current value of it to dst and returns the
// extended buffer (and dst with an error): through it's ValueAppender
// when it has one, else as a copy of Value. An initial sync copies every
// value of a file system into its chunks this way: a value opened into a
// fresh buffer cost an allocation and the zeroing and page faults of new
// memory per value.
func AppendValue(it Iterator, dst []byte) ([]byte, error) {
	if a, ok := it.(ValueAppender); ok {
		return a.AppendValue(dst)
	}
	v, err := it.Value()
	if err != nil {
		return dst, err
	}
	return append(dst, v...), nil
}

// Snapshot is a consistent, read-only, point-in-time view of a Store. It
// does not survive a restart. Close releases it.
type Snapshot interface {
	Reader
	Close() error
}

// Batch collects writes that commit atomically. Reads through a Batch see
// its own writes merged over the store's current committed state
// (read-your-writes). A Batch is used by one goroutine.
type Batch interface {
	Reader
	// Set stores value under key. Key and value are copied.
	Set(key, value []byte)
	// Delete removes key.
	Delete(key []byte)
	// DeleteRange removes every key in [lo, hi).
	DeleteRange(lo, hi []byte)
	// Count is the number of operations in the batch.
	Count() int
	// Empty reports whether the batch holds no operation.
	Empty() bool
	// Commit applies the batch atomically. With sync it returns only once
	// the batch, and every batch committed before it, is durable: it
	// survives a crash of the process or the machine. Without sync the
	// batch is visible to readers at once and becomes durable with the next
	// synced commit. A batch commits at most once.
	Commit(sync bool) error
	// Close releases the batch; committed or not.
	Close() error
}

// AsyncBatch is a Batch whose store can pipeline synced commits: the
// caller may prepare and commit its next batch while this one syncs, and
// one sync then covers both.
type AsyncBatch interface {
	Batch
	// CommitAsync applies the batch like Commit(true) (atomically, visible
	// to readers at once, after every batch committed before it) and
	// starts its sync without waiting for it. wait returns once the batch,
	// and every batch committed before it, is durable, or the sync's
	// error. The batch must not be closed before wait returns; wait is
	// called once.
	CommitAsync() (wait func() error, err error)
}

// LogSyncer is a Store whose commits without sync (Commit(false)) become
// durable, in commit order, with any later synced commit or with SyncLog:
// one log written in order. The engine then commits a group whose
// callers need not wait for durability (an early answered create)
// without a sync of its own; the next synced commit covers it.
type LogSyncer interface {
	// SyncLog makes every commit before it durable.
	SyncLog() error
}

// SyncLog is s's SyncLog when s is a LogSyncer; ok is false when it is
// not (nothing was done).
func SyncLog(s Store) (ok bool, err error) {
	if l, is := s.(LogSyncer); is {
		return true, l.SyncLog()
	}
	return false, nil
}

// CanSyncLog reports whether s syncs its log (LogSyncer), through any
// sealing layer.
func CanSyncLog(s Store) bool {
	if sl, ok := s.(*Sealed); ok {
		s = sl.inner
	}
	_, ok := s.(LogSyncer)
	return ok
}

// Ingester is a Store that can add many sorted pairs at once as a table
// of its own instead of through its log and memtable (pebblekv: an
// sstable written beside the store and ingested into it): a replica's
// initial sync, whose keys arrive in order, writes each value once
// instead of into the log, the memtable, a flushed table and every
// compaction after it. Keys come in strictly increasing order; an
// ingested pair replaces what the store held under its key, as a Set.
// Ingest copies each pair when it takes it (the sequence may reuse its
// memory for the next). The pairs are durable when Ingest returns; it is
// not atomic with any
// batch (a caller that records how far it got commits that after Ingest
// returns, and must cope with pairs ingested past its record after a
// crash). An error leaves none of the pairs in the store.
type Ingester interface {
	Ingest(pairs iter.Seq2[[]byte, []byte]) error
}

// IncompressibleIngester is an Ingester that can be told that the values
// it takes will not compress (sealed values: AES-GCM output is random to a
// compressor), so that it stores them without trying: pebblekv tried
// snappy on every block of a synced table of sealed values and threw each
// attempt away. IngestIncompressible is Ingest otherwise.
type IncompressibleIngester interface {
	IngestIncompressible(pairs iter.Seq2[[]byte, []byte]) error
}

// IngestIncompressible ingests pairs whose values will not compress into
// in: without compressing them when in can be told so, with Ingest
// otherwise.
func IngestIncompressible(in Ingester, pairs iter.Seq2[[]byte, []byte]) error {
	if ii, ok := in.(IncompressibleIngester); ok {
		return ii.IngestIncompressible(pairs)
	}
	return in.Ingest(pairs)
}

// CacheHolder is a Store whose reads load blocks into a cache of its
// own (pebblekv: Pebble's block cache) that it can keep from growing while
// one-pass scans run. A scan of a whole file system (an initial sync's
// snapshot read, a resync's or a verification's checksums) reads every
// block once: in a cache not yet full each of them takes memory the
// process has not touched before (on the development VM ~0.5 CPU-s of
// page zeroing per 250 MB, sync25), and none of them is read again.
// Held, the cache stops growing, so the scan's blocks replace each other
// (and the coldest others) in memory already in use. Holds nest: the
// cache grows again when the last one is released.
type CacheHolder interface {
	// HoldCache holds the cache until release is called (once; later
	// calls do nothing).
	HoldCache() (release func())
}

// HoldCache holds s's cache (CacheHolder), through any sealing layer;
// for a store without one it does nothing.
func HoldCache(s Store) (release func()) {
	if sl, ok := s.(*Sealed); ok {
		s = sl.inner
	}
	if h, ok := s.(CacheHolder); ok {
		return h.HoldCache()
	}
	return func() {}
}

// ErrNotSupported is returned by Ingest of a wrapping store whose inner
// store cannot ingest (CanIngest says beforehand).
var ErrNotSupported = errors.New("kv: not supported by this store")

// CanIngest reports whether s ingests pairs (Ingester), through any
// sealing layer.
func CanIngest(s Store) bool {
	if sl, ok := s.(*Sealed); ok {
		s = sl.inner
	}
	_, ok := s.(Ingester)
	return ok
}

// CommitAsync commits b with sync and returns the wait for its
// durability: pipelined when b is an AsyncBatch, otherwise Commit(true)
// runs now and wait returns nil.
func CommitAsync(b Batch) (wait func() error, err error) {
	if a, ok := b.(AsyncBatch); ok {
		return a.CommitAsync()
	}
	if err := b.Commit(true); err != nil {
		return nil, err
	}
	return func() error { return nil }, nil
}

// Scan calls fn with every key in [lo, hi) of r and its value, in key
// order, and stops at the first error: fn's (returned as it is), a
// value's that cannot be read (with its key), or the iterator's (or its
// Close's). k and v are valid only during the call.
func Scan(r Reader, lo, hi []byte, fn func(k, v []byte) error) error {
	it, err := r.NewIter(lo, hi)
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			err = fmt.Errorf("kv: read %q: %w", it.Key(), err)
			it.Close()
			return err
		}
		if err := fn(it.Key(), v); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}

// Store is the ordered transactional key-value seam under the engine.
//
// Contract:
//   - Keys and values are arbitrary byte strings; keys order bytewise.
//   - A committed batch is applied atomically and becomes visible as a
//     whole: no reader observes part of a batch.
//   - Commit(sync=true) returns once the batch and all earlier batches are
//     durable. Batches commit in the order Commit is called.
//   - Get, NewIter and NewSnapshot are safe for concurrent use with each
//     other and with commits.
type Store interface {
	Reader
	NewSnapshot() Snapshot
	NewBatch() Batch
	Close() error
}
