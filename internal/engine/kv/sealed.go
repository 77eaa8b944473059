package kv

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"iter"
	"sync/atomic"
)

// sealedTag is the first byte of a sealed value: AES-GCM with a random
// 12-byte nonce. Stored form: tag ‖ nonce ‖ ciphertext ‖ 16-byte tag, with
// the full key as additional data (a value cannot be moved to another key).
const sealedTag = 0x01

// Sealed wraps a Store and seals the values of the keys for which keyFor
// returns an AEAD (12-byte nonces); other values pass through unchanged.
// Keys stay plaintext.
type Sealed struct {
	inner  Store
	keyFor func(key []byte) cipher.AEAD
	// begun and ended count the batch commits and ingests through s:
	// begun before the store applies one, ended once it returned (its
	// writes visible, or refused). See Changes.
	begun, ended atomic.Uint64
}

var (
	_ Store                  = (*Sealed)(nil)
	_ Ingester               = (*Sealed)(nil)
	_ IncompressibleIngester = (*Sealed)(nil)
)

// NewSealed wraps inner.
func NewSealed(inner Store, keyFor func(key []byte) cipher.AEAD) *Sealed {
	return &Sealed{inner: inner, keyFor: keyFor}
}

// Changes says how many batch commits and ingests through s have begun,
// and whether each of them has ended (settled). A reader that gets
// (n, true), reads the store, and then finds Begun still n has read the
// state those n changes left, unchanged by any other through s; while
// Begun stays n the store holds that state (for what is written through
// s: a writer of the inner store itself is not counted). It is what
// lets a reader keep what it read of the store and use it again without
// reading it again (the engine's block maps).
func (s *Sealed) Changes() (n uint64, settled bool) {
	e := s.ended.Load() // before begun: every change begun by then has ended
	n = s.begun.Load()
	return n, n == e
}

// Begun is the count of Changes: it changes before any write through s
// is applied.
func (s *Sealed) Begun() uint64 { return s.begun.Load() }

func (s *Sealed) seal(key, value []byte) []byte {
	a := s.keyFor(key)
	if a == nil {
		return value
	}
	return sealWith(a, make([]byte, 0, 1+a.NonceSize()+len(value)+a.Overhead()), key, value)
}

// sealWith seals value under a into dst's memory (from its start) when it
// has room.
func sealWith(a cipher.AEAD, dst, key, value []byte) []byte {
	ns := a.NonceSize()
	out := append(dst[:0], make([]byte, 1+ns)...)
	out[0] = sealedTag
	_, _ = rand.Read(out[1:]) // crypto/rand never fails
	return a.Seal(out, out[1:1+ns], value, key)
}
func (s *Sealed) open(key, stored []byte) ([]byte, error) {
	if s.keyFor(key) == nil {
		return stored, nil
	}
	return s.openAppend(nil, key, stored)
}

// openAppend appends the unsealed value of key to dst.
func (s *Sealed) openAppend(dst, key, stored []byte) ([]byte, error) {
	a := s.keyFor(key)
	if a == nil {
		return append(dst, stored...), nil
	}
	if len(stored) < 1+a.NonceSize()+a.Overhead() || stored[0] != sealedTag {
		return dst, fmt.Errorf("%w: sealed value of key %x: bad format", ErrCorrupt, key)
	}
	ns := a.NonceSize()
	v, err := a.Open(dst, stored[1:1+ns], stored[1+ns:], key)
	if errors.Is(err, ErrKeyUnavailable) {
		return dst, err
	}
	if err != nil {
		return dst, fmt.Errorf("%w: sealed value of key %x: %v", ErrCorrupt, key, err)
	}
	return v, nil
}

// Get returns the unsealed value of key.
func (s *Sealed) Get(key []byte) ([]byte, error) { return sealedReader{s, s.inner}.Get(key) }

// NewIter iterates with unsealed values.
func (s *Sealed) NewIter(lo, hi []byte) (Iterator, error) {
	return sealedReader{s, s.inner}.NewIter(lo, hi)
}

// NewSnapshot returns a snapshot with unsealed values.
func (s *Sealed) NewSnapshot() Snapshot {
	snap := s.inner.NewSnapshot()
	return sealedSnapshot{sealedReader{s, snap}, snap}
}

// NewBatch returns a batch that seals what it writes.
func (s *Sealed) NewBatch() Batch {
	b := s.inner.NewBatch()
	return sealedBatch{sealedReader{s, b}, b}
}

// Ingest seals the values of pairs and ingests them into the inner store
// (Ingester); ErrNotSupported when it cannot (CanIngest).
func (s *Sealed) Ingest(pairs iter.Seq2[[]byte, []byte]) error {
	in, ok := s.inner.(Ingester)
	if !ok {
		return ErrNotSupported
	}
	s.begun.Add(1)
	defer s.ended.Add(1)
	return in.Ingest(s.sealPairs(pairs))
}

// IngestIncompressible is Ingest of pairs whose values will not compress
// (IncompressibleIngester): the caller knows that s seals them all.
func (s *Sealed) IngestIncompressible(pairs iter.Seq2[[]byte, []byte]) error {
	in, ok := s.inner.(Ingester)
	if !ok {
		return ErrNotSupported
	}
	s.begun.Add(1)
	defer s.ended.Add(1)
	return IngestIncompressible(in, s.sealPairs(pairs))
}

// sealPairs yields pairs with their values sealed.
func (s *Sealed) sealPairs(pairs iter.Seq2[[]byte, []byte]) iter.Seq2[[]byte, []byte] {
	return func(yield func(k, v []byte) bool) {
		// An Ingester copies what it takes: one buffer seals them all.
		var buf []byte
		for k, v := range pairs {
			if a := s.keyFor(k); a != nil {
				buf = sealWith(a, buf, k, v)
				v = buf
			}
			if !yield(k, v) {
				return
			}
		}
	}
}

// Close closes the inner store.
func (s *Sealed) Close() error { return s.inner.Close() }

// SyncLog is the inner store's (LogSyncer); a Sealed over a store that is
// not a LogSyncer is not one either (CanSyncLog).
func (s *Sealed) SyncLog() error {
	if _, err := SyncLog(s.inner); err != nil {
		return err
	}
	return nil
}

type sealedReader struct {
	s *Sealed
	r Reader
}

func (r sealedReader) Get(key []byte) ([]byte, error) {
	v, err := r.r.Get(key)
	if err != nil {
		return nil, err
	}
	return r.s.open(key, v)
}

func (r sealedReader) NewIter(lo, hi []byte) (Iterator, error) {
	it, err := r.r.NewIter(lo, hi)
	if err != nil {
		return nil, err
	}
	return sealedIter{it, r.s}, nil
}

type sealedIter struct {
	Iterator
	s *Sealed
}

func (it sealedIter) Value() ([]byte, error) {
	v, err := it.Iterator.Value()
	if err != nil {
		return nil, err
	}
	return it.s.open(it.Iterator.Key(), v)
}

// AppendValue opens the value into dst (ValueAppender).
func (it sealedIter) AppendValue(dst []byte) ([]byte, error) {
	v, err := it.Iterator.Value()
	if err != nil {
		return dst, err
	}
	return it.s.openAppend(dst, it.Iterator.Key(), v)
}

type sealedSnapshot struct {
	sealedReader
	snap Snapshot
}

func (s sealedSnapshot) Close() error { return s.snap.Close() }

type sealedBatch struct {
	sealedReader
	b Batch
}

func (b sealedBatch) Set(key, value []byte)     { b.b.Set(key, b.s.seal(key, value)) }
func (b sealedBatch) Delete(key []byte)         { b.b.Delete(key) }
func (b sealedBatch) DeleteRange(lo, hi []byte) { b.b.DeleteRange(lo, hi) }
func (b sealedBatch) Count() int                { return b.b.Count() }
func (b sealedBatch) Empty() bool               { return b.b.Empty() }
func (b sealedBatch) Close() error              { return b.b.Close() }

// Commit commits the inner batch, counted (Changes).
func (b sealedBatch) Commit(sync bool) error {
	b.s.begun.Add(1)
	defer b.s.ended.Add(1)
	return b.b.Commit(sync)
}

// CommitAsync pipelines the commit when the sealed store's batch can,
// counted (Changes): it ends when the batch is applied, not synced.
func (b sealedBatch) CommitAsync() (wait func() error, err error) {
	b.s.begun.Add(1)
	defer b.s.ended.Add(1)
	return CommitAsync(b.b)
}
