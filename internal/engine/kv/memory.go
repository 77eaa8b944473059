package kv

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"

	"github.com/google/btree"
)

// Memory is an in-memory Store for tests. It simulates durability: a commit
// without sync changes only the visible state; a synced commit makes the
// visible state durable; CrashClone returns what a crash would leave.
type Memory struct {
	commitMu sync.Mutex // serialises commits

	mu        sync.RWMutex // guards the fields below
	visible   *btree.BTreeG[item]
	durable   *btree.BTreeG[item]
	closed    bool
	syncHook  func()
	commitErr func(sync bool) error
	written   atomic.Uint64 // writes applied by commits
	// writtenBytes: the key and value bytes of the sets applied by
	// commits (what a store's log and memtable take in)
	writtenBytes atomic.Uint64
	ingests      atomic.Uint64 // Ingest commits applied
	gets         atomic.Uint64 // calls of Get
}

var (
	_ Store    = (*Memory)(nil)
	_ Ingester = (*Memory)(nil)
)

// NewMemory returns an empty store.
func NewMemory() *Memory { return &Memory{visible: newTree(), durable: newTree()} }

// CrashClone returns a new store holding what a crash at this moment would
// leave: every synced commit and nothing else. The receiver keeps working.
// It may be called from the sync hook.
func (m *Memory) CrashClone() *Memory {
	// btree.Clone changes the copy-on-write state of the tree it clones:
	// it needs the exclusive lock.
	m.mu.Lock()
	defer m.mu.Unlock()
	return &Memory{visible: m.durable.Clone(), durable: m.durable.Clone()}
}

// Written returns how many writes (sets, deletes, range deletions) commits
// have applied since NewMemory.
func (m *Memory) Written() uint64 { return m.written.Load() }

// WrittenBytes returns the bytes of keys and values that the sets of
// commits have applied since NewMemory (deletes and ingests not counted).
func (m *Memory) WrittenBytes() uint64 { return m.writtenBytes.Load() }

// SetSyncHook sets a function called after every synced commit is durable,
// before Commit returns (crash tests take CrashClones there).
func (m *Memory) SetSyncHook(f func()) {
	m.mu.Lock()
	m.syncHook = f
	m.mu.Unlock()
}

// SetCommitError makes commits fail: when f returns an error, Commit applies
// nothing and returns it.
func (m *Memory) SetCommitError(f func(sync bool) error) {
	m.mu.Lock()
	m.commitErr = f
	m.mu.Unlock()
}

// Get returns a copy of the visible value of key.
func (m *Memory) Get(key []byte) ([]byte, error) {
	m.gets.Add(1)
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	return get(m.visible, key)
}

// get returns a copy of key's value in t.
func get(t *btree.BTreeG[item], key []byte) ([]byte, error) {
	it, ok := t.Get(item{key: key})
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(it.value), nil
}

// NewIter iterates the visible state as of now.
func (m *Memory) NewIter(lo, hi []byte) (Iterator, error) {
	t, err := m.clone()
	if err != nil {
		return nil, err
	}
	return newTreeIter(t, lo, hi), nil
}

func (m *Memory) clone() (*btree.BTreeG[item], error) {
	m.mu.Lock() // Clone writes to the source tree's copy-on-write state
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	return m.visible.Clone(), nil
}

// NewSnapshot returns a consistent view of the visible state.
func (m *Memory) NewSnapshot() Snapshot {
	t, err := m.clone()
	return &memSnapshot{t: t, err: err}
}

// NewBatch returns an indexed batch.
func (m *Memory) NewBatch() Batch {
	return &memBatch{deltaReader: deltaReader{base: m, d: newDelta()}, m: m}
}

// Close closes the store.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// lockCommit takes commitMu, then mu, for a commit or a sync; the caller
// unlocks both. On a closed store it fails with ErrClosed holding neither.
func (m *Memory) lockCommit() error {
	m.commitMu.Lock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.commitMu.Unlock()
		return ErrClosed
	}
	return nil
}

// commit applies ops; with sync they and everything before are durable
// when it returns. async asks for a sync that syncVisible does later
// (CommitAsync): the commit error hook sees it as a synced commit. A
// non-nil count is incremented with the commit, under its lock, so a
// sync hook that reads it (a test's crash image) never sees the count of
// a commit that is not durable yet.
func (m *Memory) commit(ops []batchOp, sync, async bool, count *atomic.Uint64) error {
	if err := m.lockCommit(); err != nil {
		return err
	}
	defer m.commitMu.Unlock()
	if m.commitErr != nil {
		if err := m.commitErr(sync || async); err != nil {
			m.mu.Unlock()
			return err
		}
	}
	m.written.Add(uint64(len(ops)))
	if count != nil {
		count.Add(1)
	}
	for _, op := range ops {
		switch op.kind {
		case opSet:
			m.writtenBytes.Add(uint64(len(op.key) + len(op.value)))
			m.visible.ReplaceOrInsert(item{key: op.key, value: op.value})
		case opDel:
			m.visible.Delete(item{key: op.key})
		case opDelRange:
			var drop []item
			m.visible.AscendGreaterOrEqual(item{key: op.key}, func(it item) bool {
				if bytes.Compare(it.key, op.value) >= 0 {
					return false
				}
				drop = append(drop, it)
				return true
			})
			for _, it := range drop {
				m.visible.Delete(it)
			}
		}
	}
	hook := m.syncHook
	if sync {
		m.durable = m.visible.Clone()
	}
	m.mu.Unlock()
	if sync && hook != nil {
		hook()
	}
	return nil
}

// SyncLog makes every commit durable (LogSyncer), as a synced commit does.
func (m *Memory) SyncLog() error { return m.syncVisible() }

// Ingest sets pairs in one synced commit (Ingester): the engine's path for
// ingested pairs runs on the in-memory store too, with its crash images.
func (m *Memory) Ingest(pairs iter.Seq2[[]byte, []byte]) error {
	var ops []batchOp
	var prev []byte
	for k, v := range pairs {
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return fmt.Errorf("kv: ingest: key %x after %x: not in increasing order", k, prev)
		}
		prev = bytes.Clone(k)
		ops = append(ops, batchOp{kind: opSet, key: prev, value: bytes.Clone(v)})
	}
	return m.commit(ops, true, false, &m.ingests)
}

// Ingests returns how many calls of Ingest there were since NewMemory.
func (m *Memory) Ingests() uint64 { return m.ingests.Load() }

// Gets returns how many point reads (Get) the store has served: a
// regression guard counts an operation's store reads with it.
func (m *Memory) Gets() uint64 { return m.gets.Load() }

// syncVisible makes everything committed so far durable, like a WAL sync
// that covers the batches written before it.
func (m *Memory) syncVisible() error {
	if err := m.lockCommit(); err != nil {
		return err
	}
	defer m.commitMu.Unlock()
	m.durable = m.visible.Clone()
	hook := m.syncHook
	m.mu.Unlock()
	if hook != nil {
		hook()
	}
	return nil
}

type memSnapshot struct {
	t   *btree.BTreeG[item]
	err error
}

func (s *memSnapshot) Get(key []byte) ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.t == nil {
		return nil, ErrClosed
	}
	return get(s.t, key)
}

func (s *memSnapshot) NewIter(lo, hi []byte) (Iterator, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.t == nil {
		return nil, ErrClosed
	}
	return newTreeIter(s.t, lo, hi), nil
}

func (s *memSnapshot) Close() error {
	s.t = nil
	return nil
}

type opKind uint8

const (
	opSet opKind = iota
	opDel
	opDelRange // key = lo, value = hi
)

type batchOp struct {
	kind       opKind
	key, value []byte
}

type memBatch struct {
	deltaReader // over m
	m           *Memory
	ops         []batchOp
	committed   bool
}

func (b *memBatch) Set(key, value []byte) {
	b.d.set(key, value)
	b.ops = append(b.ops, batchOp{kind: opSet, key: bytes.Clone(key), value: bytes.Clone(value)})
}

func (b *memBatch) Delete(key []byte) {
	b.d.del(key)
	b.ops = append(b.ops, batchOp{kind: opDel, key: bytes.Clone(key)})
}

func (b *memBatch) DeleteRange(lo, hi []byte) {
	b.d.delRange(lo, hi)
	b.ops = append(b.ops, batchOp{kind: opDelRange, key: bytes.Clone(lo), value: bytes.Clone(hi)})
}

func (b *memBatch) Count() int  { return len(b.ops) }
func (b *memBatch) Empty() bool { return len(b.ops) == 0 }

func (b *memBatch) Commit(sync bool) error {
	switch {
	case b.closed:
		return ErrClosed
	case b.committed:
		return errors.New("kv: batch already committed")
	}
	if err := b.m.commit(b.ops, sync, false, nil); err != nil {
		return err
	}
	b.committed = true
	return nil
}

// CommitAsync applies the batch (visible at once) and returns the sync
// that makes it durable: a crash before the wait loses it, as a crash
// before a WAL sync does.
func (b *memBatch) CommitAsync() (func() error, error) {
	switch {
	case b.closed:
		return nil, ErrClosed
	case b.committed:
		return nil, errors.New("kv: batch already committed")
	}
	if err := b.m.commit(b.ops, false, true, nil); err != nil {
		return nil, err
	}
	b.committed = true
	return b.m.syncVisible, nil
}

func (b *memBatch) Close() error {
	b.closed = true
	return nil
}
