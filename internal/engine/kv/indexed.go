package kv

import (
	"bytes"
	"errors"
)

// OpKind is the kind of a batch operation handed to a CommitFunc.
type OpKind uint8

// Operation kinds.
const (
	OpSet         OpKind = iota + 1 // Key = Value
	OpDelete                        // Key removed
	OpDeleteRange                   // every key in [Key, Hi) removed
)

// Op is one write of a batch, in the order the batch received it.
type Op struct {
	Kind  OpKind
	Key   []byte
	Value []byte // OpSet
	Hi    []byte // OpDeleteRange
}

// CommitFunc applies ops atomically (see Batch.Commit for sync).
type CommitFunc func(ops []Op, sync bool) error

// NewIndexedBatch returns a Batch for stores that keep no batch state of
// their own: writes are kept in memory, reads merge them over base
// (read-your-writes; an iterator sees base's point-in-time view with the
// writes made so far), and Commit hands the operations, in order, to
// commit. It is used by one goroutine.
func NewIndexedBatch(base Reader, commit CommitFunc) Batch {
	return &indexedBatch{deltaReader: deltaReader{base: base, d: newDelta()}, commit: commit}
}

type indexedBatch struct {
	deltaReader
	commit    CommitFunc
	ops       []Op
	committed bool
}

// deltaReader is the read side of a batch that reads its own writes: d,
// the writes, over base; nothing once closed.
type deltaReader struct {
	base   Reader
	d      *delta
	closed bool
}

func (r *deltaReader) Get(key []byte) ([]byte, error) {
	if r.closed {
		return nil, ErrClosed
	}
	if v, del, found := r.d.get(key); found {
		if del {
			return nil, ErrNotFound
		}
		return bytes.Clone(v), nil
	}
	return r.base.Get(key)
}

func (r *deltaReader) NewIter(lo, hi []byte) (Iterator, error) {
	if r.closed {
		return nil, ErrClosed
	}
	base, err := r.base.NewIter(lo, hi)
	if err != nil {
		return nil, err
	}
	return newMergeIter(base, r.d.frozen(), lo, hi), nil
}

func (b *indexedBatch) writable() bool { return !b.closed && !b.committed }

func (b *indexedBatch) Set(key, value []byte) {
	if !b.writable() {
		return
	}
	b.d.set(key, value)
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	b.ops = append(b.ops, Op{Kind: OpSet, Key: bytes.Clone(key), Value: v})
}

func (b *indexedBatch) Delete(key []byte) {
	if !b.writable() {
		return
	}
	b.d.del(key)
	b.ops = append(b.ops, Op{Kind: OpDelete, Key: bytes.Clone(key)})
}

func (b *indexedBatch) DeleteRange(lo, hi []byte) {
	if !b.writable() {
		return
	}
	b.d.delRange(lo, hi)
	b.ops = append(b.ops, Op{Kind: OpDeleteRange, Key: bytes.Clone(lo), Hi: bytes.Clone(hi)})
}

func (b *indexedBatch) Count() int  { return len(b.ops) }
func (b *indexedBatch) Empty() bool { return len(b.ops) == 0 }

func (b *indexedBatch) Commit(sync bool) error {
	switch {
	case b.closed:
		return ErrClosed
	case b.committed:
		return errors.New("kv: batch already committed")
	}
	if err := b.commit(b.ops, sync); err != nil {
		return err
	}
	b.committed = true
	return nil
}

func (b *indexedBatch) Close() error {
	b.closed = true
	b.ops = nil
	return nil
}

// Squash reduces ops to their net effect: the range deletions in order,
// then one final write per key (a set or a delete) in key order. A point
// write made before a range deletion that covers it is dropped; one made
// after it survives. Applying the result as "ranges first, then points"
// equals applying ops in order.
func Squash(ops []Op) (ranges []Op, points []Op) {
	d := newDelta()
	for _, op := range ops {
		switch op.Kind {
		case OpSet:
			d.set(op.Key, op.Value)
		case OpDelete:
			d.del(op.Key)
		case OpDeleteRange:
			d.delRange(op.Key, op.Hi)
		}
	}
	for _, r := range d.ranges {
		ranges = append(ranges, Op{Kind: OpDeleteRange, Key: r[0], Hi: r[1]})
	}
	d.pts.Ascend(func(it item) bool {
		if it.del {
			points = append(points, Op{Kind: OpDelete, Key: it.key})
		} else {
			v := it.value
			if v == nil {
				v = []byte{}
			}
			points = append(points, Op{Kind: OpSet, Key: it.key, Value: v})
		}
		return true
	})
	return ranges, points
}
