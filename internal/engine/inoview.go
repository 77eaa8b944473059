package engine

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// inodeView is a consistent read view of one inode's keys (its
// attributes, block entries, pending extents, inline data) through one
// iterator of the store, for a READ: each of its point reads and scans
// is a seek of that iterator. A view (readView) costs a snapshot (opened
// and closed under the store's DB mutex, which the committer takes too),
// a point read per key (each builds and closes its own iterator over
// every level) and an iterator for the extents: on a 1 MiB READ of a
// cached block that was two thirds of the engine's CPU (read18 in
// bench/nfs/README.md). An iterator sees one committed state from its
// creation as a snapshot does (kv.Reader.NewIter), and seeks forward
// from its last position (attributes, then the block entry, then its
// extents) reuse it.
type inodeView struct {
	it     kv.Iterator // over the store's absolute keys
	prefix []byte      // the file system's, before each key of it
	lo, hi []byte      // relative bounds of it: the inode's keys
	dom    *domain
	epoch  uint64
	key    [64]byte      // room for an absolute key to seek (no allocation per seek)
	sub    inodeViewIter // NewIter's (one at a time)
}

// inodeView opens a view of inode ino's keys. Its reader enters the
// domain's read epoch first, as readView does: blocks retired after it
// are not deleted until close.
func (fs *FS) inodeView(ino uint64) (*inodeView, error) {
	v := &inodeView{dom: fs.dom, prefix: fs.prefix, lo: inodePrefix(ino)}
	v.hi = upper(v.lo)
	v.epoch = fs.dom.enterRead()
	// Both absolute bounds in one allocation.
	n := len(v.prefix) + len(v.lo)
	b := append(append(make([]byte, 0, 2*n+1), v.prefix...), v.lo...)
	b = append(append(b, v.prefix...), v.hi...)
	it, err := fs.e.kv.NewIter(b[:n:n], b[n:])
	if err != nil {
		fs.dom.exitRead(v.epoch)
		return nil, err
	}
	v.it = it
	return v, nil
}

func (v *inodeView) close() {
	v.it.Close()
	v.dom.exitRead(v.epoch)
}

// seekGE positions the iterator at the first key >= rel.
func (v *inodeView) seekGE(rel []byte) bool {
	return v.it.SeekGE(append(append(v.key[:0], v.prefix...), rel...))
}

// seekLT positions the iterator at the last key < rel.
func (v *inodeView) seekLT(rel []byte) bool {
	return v.it.SeekLT(append(append(v.key[:0], v.prefix...), rel...))
}

// relKey is the iterator's key without the file system's prefix.
func (v *inodeView) relKey() []byte {
	k := v.it.Key()
	if len(k) < len(v.prefix) {
		return nil
	}
	return k[len(v.prefix):]
}

// within says whether [lo, hi) lies inside the view's keys.
func (v *inodeView) within(lo, hi []byte) bool {
	return bytes.Compare(lo, v.lo) >= 0 && hi != nil && bytes.Compare(hi, v.hi) <= 0
}

// errOutsideView: a read outside the inode's keys (a bug of the caller).
var errOutsideView = errors.New("engine: read outside the inode's view")

// Get is kv.Reader's: a copy of key's value, or kv.ErrNotFound.
func (v *inodeView) Get(key []byte) ([]byte, error) {
	if bytes.Compare(key, v.lo) < 0 || bytes.Compare(key, v.hi) >= 0 {
		return nil, fmt.Errorf("%w: key %x", errOutsideView, key)
	}
	if !v.seekGE(key) || !bytes.Equal(v.relKey(), key) {
		if err := v.it.Error(); err != nil {
			return nil, err
		}
		return nil, kv.ErrNotFound
	}
	val, err := v.it.Value()
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(val)
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// NewIter is kv.Reader's: keys in [lo, hi), which must lie inside the
// view's, walked by the view's iterator (so one at a time: an iterator
// of the view is used until the next read of the view).
func (v *inodeView) NewIter(lo, hi []byte) (kv.Iterator, error) {
	if !v.within(lo, hi) {
		return nil, fmt.Errorf("%w: [%x, %x)", errOutsideView, lo, hi)
	}
	v.sub = inodeViewIter{v: v, lo: lo, hi: hi}
	return &v.sub, nil
}

// inodeViewIter is the view's iterator bounded to [lo, hi).
type inodeViewIter struct {
	v      *inodeView
	lo, hi []byte
	valid  bool
}

func (i *inodeViewIter) at(ok bool) bool {
	if ok {
		k := i.v.relKey()
		ok = bytes.Compare(k, i.lo) >= 0 && bytes.Compare(k, i.hi) < 0
	}
	i.valid = ok
	return ok
}

func (i *inodeViewIter) First() bool { return i.at(i.v.seekGE(i.lo)) }
func (i *inodeViewIter) Last() bool  { return i.at(i.v.seekLT(i.hi)) }
func (i *inodeViewIter) Next() bool  { return i.valid && i.at(i.v.it.Next()) }
func (i *inodeViewIter) Prev() bool  { return i.valid && i.at(i.v.it.Prev()) }

func (i *inodeViewIter) SeekGE(k []byte) bool {
	if bytes.Compare(k, i.lo) < 0 {
		k = i.lo
	}
	return i.at(i.v.seekGE(k))
}

func (i *inodeViewIter) SeekLT(k []byte) bool {
	if bytes.Compare(k, i.hi) > 0 {
		k = i.hi
	}
	return i.at(i.v.seekLT(k))
}

func (i *inodeViewIter) Valid() bool { return i.valid }

func (i *inodeViewIter) Key() []byte {
	if !i.valid {
		return nil
	}
	return i.v.relKey()
}

func (i *inodeViewIter) Value() ([]byte, error) { return i.v.it.Value() }
func (i *inodeViewIter) Error() error           { return i.v.it.Error() }

// Close leaves the view's iterator open (the view closes it).
func (i *inodeViewIter) Close() error { i.valid = false; return i.v.it.Error() }
