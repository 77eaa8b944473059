package kv

import (
	"bytes"

	"github.com/google/btree"
)

// item is a key with a value or a tombstone.
type item struct {
	key   []byte
	value []byte
	del   bool
}

func itemLess(a, b item) bool { return bytes.Compare(a.key, b.key) < 0 }

func newTree() *btree.BTreeG[item] { return btree.NewG(16, itemLess) }

// delta is a set of pending writes: point writes (with tombstones) and
// range deletions. A point write is always newer than every range that
// covers it (a range deletion removes the points it covers when added).
type delta struct {
	pts    *btree.BTreeG[item]
	ranges [][2][]byte
}

func newDelta() *delta { return &delta{pts: newTree()} }

func (d *delta) set(k, v []byte) {
	d.pts.ReplaceOrInsert(item{key: bytes.Clone(k), value: bytes.Clone(v)})
}

// setOwned is set without a copy of v, which the caller gives up.
func (d *delta) setOwned(k, v []byte) {
	d.pts.ReplaceOrInsert(item{key: bytes.Clone(k), value: v})
}

func (d *delta) del(k []byte) { d.pts.ReplaceOrInsert(item{key: bytes.Clone(k), del: true}) }

func (d *delta) delRange(lo, hi []byte) {
	var drop []item
	d.pts.AscendGreaterOrEqual(item{key: lo}, func(it item) bool {
		if bytes.Compare(it.key, hi) >= 0 {
			return false
		}
		drop = append(drop, it)
		return true
	})
	for _, it := range drop {
		d.pts.Delete(it)
	}
	d.ranges = append(d.ranges, [2][]byte{bytes.Clone(lo), bytes.Clone(hi)})
}

func (d *delta) covered(k []byte) bool {
	for _, r := range d.ranges {
		if bytes.Compare(k, r[0]) >= 0 && bytes.Compare(k, r[1]) < 0 {
			return true
		}
	}
	return false
}

// get looks key up in the delta: found reports that the delta decides the
// key (deleted or a value).
func (d *delta) get(k []byte) (v []byte, deleted, found bool) {
	if it, ok := d.pts.Get(item{key: k}); ok {
		return it.value, it.del, true
	}
	if d.covered(k) {
		return nil, true, true
	}
	return nil, false, false
}

// frozen returns a copy that later writes to d do not change.
func (d *delta) frozen() *delta {
	return &delta{pts: d.pts.Clone(), ranges: append([][2][]byte(nil), d.ranges...)}
}

// cursor finds neighbours of a key in a tree within [lo, hi).
type cursor struct {
	t      *btree.BTreeG[item]
	lo, hi []byte
}

func (c cursor) inBounds(k []byte) bool {
	return (c.lo == nil || bytes.Compare(k, c.lo) >= 0) && (c.hi == nil || bytes.Compare(k, c.hi) < 0)
}

// ge returns the first item with key >= k.
func (c cursor) ge(k []byte) (item, bool) {
	if c.lo != nil && bytes.Compare(k, c.lo) < 0 {
		k = c.lo
	}
	var out item
	found := false
	c.t.AscendGreaterOrEqual(item{key: k}, func(it item) bool {
		out, found = it, true
		return false
	})
	if !found || !c.inBounds(out.key) {
		return item{}, false
	}
	return out, true
}

// lt returns the last item with key < k (k nil = no upper limit).
func (c cursor) lt(k []byte) (item, bool) {
	if k == nil || c.hi != nil && bytes.Compare(k, c.hi) > 0 {
		k = c.hi
	}
	var out item
	found := false
	visit := func(it item) bool {
		out, found = it, true
		return false
	}
	if k == nil {
		c.t.Descend(visit)
	} else {
		c.t.DescendLessOrEqual(item{key: k}, func(it item) bool {
			if bytes.Equal(it.key, k) {
				return true
			}
			return visit(it)
		})
	}
	if !found || !c.inBounds(out.key) {
		return item{}, false
	}
	return out, true
}

func succ(k []byte) []byte { return append(bytes.Clone(k), 0) }

// treeIter iterates a (cloned, immutable) tree. Every move re-seeks, which
// keeps it simple and O(log n) per step.
type treeIter struct {
	c     cursor
	cur   item
	valid bool
	err   error
}

func newTreeIter(t *btree.BTreeG[item], lo, hi []byte) *treeIter {
	return &treeIter{c: cursor{t: t, lo: bytes.Clone(lo), hi: bytes.Clone(hi)}}
}

func (it *treeIter) set(x item, ok bool) bool {
	it.cur, it.valid = x, ok
	return ok
}

func (it *treeIter) First() bool {
	if it.c.lo == nil {
		return it.set(it.c.ge(nil))
	}
	return it.set(it.c.ge(it.c.lo))
}
func (it *treeIter) Last() bool           { return it.set(it.c.lt(nil)) }
func (it *treeIter) SeekGE(k []byte) bool { return it.set(it.c.ge(k)) }
func (it *treeIter) SeekLT(k []byte) bool {
	if k == nil {
		return it.set(item{}, false)
	}
	return it.set(it.c.lt(k))
}
func (it *treeIter) Next() bool {
	if !it.valid {
		return false
	}
	return it.set(it.c.ge(succ(it.cur.key)))
}
func (it *treeIter) Prev() bool {
	if !it.valid {
		return false
	}
	return it.set(it.c.lt(it.cur.key))
}
func (it *treeIter) Valid() bool            { return it.valid }
func (it *treeIter) Key() []byte            { return it.cur.key }
func (it *treeIter) Value() ([]byte, error) { return it.cur.value, nil }
func (it *treeIter) Error() error           { return it.err }
func (it *treeIter) Close() error           { it.valid = false; return nil }

// mergeIter merges a frozen delta over a base iterator with the same
// bounds: delta points win over base keys, tombstones and ranges hide them.
type mergeIter struct {
	base  Iterator
	d     *delta
	c     cursor
	key   []byte
	value []byte
	valid bool
	err   error
}

func newMergeIter(base Iterator, d *delta, lo, hi []byte) *mergeIter {
	return &mergeIter{base: base, d: d, c: cursor{t: d.pts, lo: bytes.Clone(lo), hi: bytes.Clone(hi)}}
}

func (m *mergeIter) fail(err error) bool {
	m.err, m.valid = err, false
	return false
}

func (m *mergeIter) seekGE(k []byte) bool {
	for {
		var bok bool
		if k == nil {
			bok = m.base.First()
		} else {
			bok = m.base.SeekGE(k)
		}
		if err := m.base.Error(); err != nil {
			return m.fail(err)
		}
		var dk item
		var dok bool
		if k == nil {
			dk, dok = m.c.ge(nil)
		} else {
			dk, dok = m.c.ge(k)
		}
		switch {
		case !bok && !dok:
			m.valid = false
			return false
		case dok && (!bok || bytes.Compare(dk.key, m.base.Key()) <= 0):
			if dk.del {
				k = succ(dk.key)
				continue
			}
			m.key, m.value, m.valid = dk.key, dk.value, true
			return true
		default:
			bk := m.base.Key()
			if m.d.covered(bk) {
				k = succ(bk)
				continue
			}
			v, err := m.base.Value()
			if err != nil {
				return m.fail(err)
			}
			m.key, m.value, m.valid = bytes.Clone(bk), v, true
			return true
		}
	}
}

func (m *mergeIter) seekLT(k []byte) bool {
	for {
		var bok bool
		if k == nil {
			bok = m.base.Last()
		} else {
			bok = m.base.SeekLT(k)
		}
		if err := m.base.Error(); err != nil {
			return m.fail(err)
		}
		dk, dok := m.c.lt(k)
		switch {
		case !bok && !dok:
			m.valid = false
			return false
		case dok && (!bok || bytes.Compare(dk.key, m.base.Key()) >= 0):
			if dk.del {
				k = dk.key
				continue
			}
			m.key, m.value, m.valid = dk.key, dk.value, true
			return true
		default:
			bk := m.base.Key()
			if m.d.covered(bk) {
				k = bytes.Clone(bk)
				continue
			}
			v, err := m.base.Value()
			if err != nil {
				return m.fail(err)
			}
			m.key, m.value, m.valid = bytes.Clone(bk), v, true
			return true
		}
	}
}

func (m *mergeIter) First() bool {
	if m.c.lo == nil {
		return m.seekGE(nil)
	}
	return m.seekGE(m.c.lo)
}
func (m *mergeIter) Last() bool { return m.seekLT(m.c.hi) }
func (m *mergeIter) SeekGE(k []byte) bool {
	if m.c.lo != nil && bytes.Compare(k, m.c.lo) < 0 {
		k = m.c.lo
	}
	return m.seekGE(k)
}
func (m *mergeIter) SeekLT(k []byte) bool {
	if k == nil {
		m.valid = false
		return false
	}
	if m.c.hi != nil && bytes.Compare(k, m.c.hi) > 0 {
		k = m.c.hi
	}
	return m.seekLT(k)
}
func (m *mergeIter) Next() bool {
	if !m.valid {
		return false
	}
	return m.seekGE(succ(m.key))
}
func (m *mergeIter) Prev() bool {
	if !m.valid {
		return false
	}
	return m.seekLT(m.key)
}
func (m *mergeIter) Valid() bool { return m.valid }
func (m *mergeIter) Key() []byte { return m.key }
func (m *mergeIter) Value() ([]byte, error) {
	return m.value, nil
}
func (m *mergeIter) Error() error { return m.err }
func (m *mergeIter) Close() error {
	m.valid = false
	err := m.base.Close()
	if m.err != nil {
		return m.err
	}
	return err
}

// Overlay holds pending writes over a Reader: reads see the writes merged
// over the reader; Writes visits them in key order. The engine runs each
// transaction of a group commit in an Overlay over the group's batch and
// copies the writes into the batch only when the transaction succeeds.
// It is used by one goroutine until it is frozen (Freeze); a frozen
// overlay may be read by several goroutines at once.
type Overlay struct {
	base   Reader
	d      *delta
	frozen bool
}

// NewOverlay returns an empty overlay over base.
func NewOverlay(base Reader) *Overlay { return &Overlay{base: base, d: newDelta()} }

// Get returns a copy of the value of key.
func (o *Overlay) Get(key []byte) ([]byte, error) {
	if v, del, found := o.d.get(key); found {
		if del {
			return nil, ErrNotFound
		}
		return bytes.Clone(v), nil
	}
	return o.base.Get(key)
}

// NewIter iterates [lo, hi) of the base with the pending writes merged in,
// as they are now (later writes are not seen by this iterator).
func (o *Overlay) NewIter(lo, hi []byte) (Iterator, error) {
	base, err := o.base.NewIter(lo, hi)
	if err != nil {
		return nil, err
	}
	if o.Empty() {
		return base, nil // later writes go to the delta, not the base
	}
	d := o.d
	if !o.frozen {
		d = d.frozen()
	}
	return newMergeIter(base, d, lo, hi), nil
}

// Freeze makes the overlay read-only: its writes no longer change, so
// that it can be read from several goroutines at once (Get, NewIter,
// Writes, Len) and its iterators need no copy of them. Writing to a
// frozen overlay panics.
func (o *Overlay) Freeze() { o.frozen = true }

// Rebase puts the overlay over base, which must hold the same values as
// the old base for every key the overlay does not write (the engine's
// committer moves a group's overlay from the group it was written over to
// the store once that group is in the store). Only the goroutine that
// reads through the overlay's base may call it.
func (o *Overlay) Rebase(base Reader) { o.base = base }

func (o *Overlay) mustWrite() {
	if o.frozen {
		panic("kv: write to a frozen overlay")
	}
}

// Set records a write of value under key (both copied).
func (o *Overlay) Set(key, value []byte) {
	o.mustWrite()
	o.d.set(key, value)
}

// SetOwned records a write of value under key like Set, but takes value
// over instead of copying it: the caller must never change value again
// (the overlay, the batch it is applied to and a journal record's
// mutations may all hold it). For a large value built for the write (a
// small file's inline data), it saves a copy and an allocation of its
// size.
func (o *Overlay) SetOwned(key, value []byte) {
	o.mustWrite()
	o.d.setOwned(key, value)
}

// Delete records a deletion of key.
func (o *Overlay) Delete(key []byte) {
	o.mustWrite()
	o.d.del(key)
}

// DeleteRange records a deletion of every key in [lo, hi) (both copied):
// of the base's keys and of the points written before it; points written
// after it are kept. Writes does not visit ranges: an overlay whose writes
// become a journal record's mutations never holds one.
func (o *Overlay) DeleteRange(lo, hi []byte) {
	o.mustWrite()
	o.d.delRange(lo, hi)
}

// ApplyTo writes the pending writes into b, the range deletions first
// (each point is newer than the ranges that cover it), then the points in
// key order. The overlay is unchanged.
func (o *Overlay) ApplyTo(b Batch) {
	for _, r := range o.d.ranges {
		b.DeleteRange(r[0], r[1])
	}
	o.d.pts.Ascend(func(it item) bool {
		if it.del {
			b.Delete(it.key)
		} else {
			b.Set(it.key, it.value)
		}
		return true
	})
}

// Empty reports whether the overlay holds no write (point or range).
func (o *Overlay) Empty() bool { return o.d.pts.Len() == 0 && len(o.d.ranges) == 0 }

// MoveTo moves the pending writes into dst, later ones there, without
// copying their keys and values: dst takes them over (they are never
// changed in place) and o is left empty. It is how a transaction's writes
// join its group's.
func (o *Overlay) MoveTo(dst *Overlay) {
	o.mustWrite()
	dst.mustWrite()
	// Ranges first: o's points are newer than o's ranges (a range
	// deletion removes the points it covers when added), and a range
	// added to dst removes the points of dst it covers.
	for _, r := range o.d.ranges {
		dst.d.delRange(r[0], r[1])
	}
	o.d.pts.Ascend(func(it item) bool {
		dst.d.pts.ReplaceOrInsert(it)
		return true
	})
	o.Reset()
}

// Len is the number of keys written.
func (o *Overlay) Len() int { return o.d.pts.Len() }

// Writes visits the pending writes in key order.
func (o *Overlay) Writes(fn func(key, value []byte, deleted bool)) {
	o.d.pts.Ascend(func(it item) bool {
		fn(it.key, it.value, it.del)
		return true
	})
}

// Reset drops every pending write (keeping the tree's nodes for the next
// ones).
func (o *Overlay) Reset() {
	o.mustWrite()
	o.d.pts.Clear(true)
	o.d.ranges = nil
}

// Reuse empties the overlay and puts it over base: one overlay serves
// one transaction after another.
func (o *Overlay) Reuse(base Reader) {
	o.Reset()
	o.base = base
}

var _ Reader = (*Overlay)(nil)
