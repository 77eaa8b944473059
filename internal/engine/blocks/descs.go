package blocks

import (
	"container/list"
	"sync"
	"sync/atomic"

	"github.com/regionfs/regionfs/internal/engine/disk"
)

// Descs is a bounded LRU of open block files, shared by the Dirs of an
// engine (one descriptor budget for the process): a block file a Dir
// wrote or read through GetInto stays open, so the next GetInto of the
// block reads it with one pread instead of an openat, fstat, pread and
// close (a file read back after it was written, or read again). A block
// file never changes once written, so an open one holds the block's
// bytes as long as the block exists; a Dir closes its block's descriptor
// when it deletes the block (Delete), and GetInto checks what it reads
// from one as from a file opened by name. Get and GetForCopy (scrub,
// verification, repair, copies) read by name, so they see the file that
// is there now.
//
// What is kept for a block changes only under its stripe's lock (lock),
// with the change of its name that makes it so: a Put's rename and the
// file it keeps, a Delete's removal and the file it closes, a read's open
// and the file it keeps. So a kept file is always the one under its
// block's name: two Puts of one block at once each rename their file
// over the name, and the second's replaces the first's.
//
// The zero limit keeps nothing open.
type Descs struct {
	max     int
	stripes [64]sync.Mutex // see lock

	mu     sync.Mutex // guards the fields below
	m      map[descKey]*desc
	lru    list.List // of *desc, most recent first
	closed bool

	hits, opens atomic.Uint64
}

type descKey struct {
	d  *Dir
	id ID
}

type desc struct {
	key  descKey
	h    *disk.Held
	el   *list.Element
	refs int  // readers using h
	gone bool // out of the set: closed by the last reader
}

// NewDescs returns a set that keeps at most max block files open.
func NewDescs(max int) *Descs {
	return &Descs{max: max, m: map[descKey]*desc{}}
}

// lock locks the stripe of block id: what is kept for it (add, forget)
// changes only with its name (see Descs). It returns the unlock.
func (c *Descs) lock(id ID) *sync.Mutex {
	m := &c.stripes[int(id[len(id)-1])%len(c.stripes)]
	m.Lock()
	return m
}

// get returns the open file of block id of d, held for a read (release),
// or nil.
func (c *Descs) get(d *Dir, id ID) *desc {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[descKey{d, id}]
	if e == nil {
		return nil
	}
	e.refs++
	c.lru.MoveToFront(e.el)
	c.hits.Add(1)
	return e
}

// release ends a read of e (get).
func (c *Descs) release(e *desc) {
	c.mu.Lock()
	e.refs--
	last := e.refs == 0 && e.gone
	c.mu.Unlock()
	if last {
		_ = e.h.Close()
	}
}

// add keeps h, the open file now under the name of block id of d (the
// caller holds id's stripe lock), in place of the one kept before, and
// says whether it did; when read, it returns h's entry held for a read
// (release). A closed set, or one that keeps nothing, does not keep h:
// the caller closes it. It closes the least recently used file past the
// limit.
func (c *Descs) add(d *Dir, id ID, h *disk.Held, read bool) (*desc, bool) {
	c.mu.Lock()
	if c.closed || c.max <= 0 {
		c.mu.Unlock()
		return nil, false
	}
	k := descKey{d, id}
	var evicted []*disk.Held
	if old := c.m[k]; old != nil {
		if h := c.removeLocked(old); h != nil {
			evicted = append(evicted, h)
		}
	}
	e := &desc{key: k, h: h}
	if read {
		e.refs = 1
	}
	e.el = c.lru.PushFront(e)
	c.m[k] = e
	c.opens.Add(1)
	for c.lru.Len() > c.max {
		if h := c.removeLocked(c.lru.Back().Value.(*desc)); h != nil {
			evicted = append(evicted, h)
		}
	}
	c.mu.Unlock()
	for _, h := range evicted {
		_ = h.Close()
	}
	if !read {
		return nil, true
	}
	return e, true
}

// forget closes the kept file of block id of d, if any, once no read
// uses it: its name is gone (the caller holds id's stripe lock), or it
// failed a read.
func (c *Descs) forget(d *Dir, id ID) {
	c.mu.Lock()
	var h *disk.Held
	if e := c.m[descKey{d, id}]; e != nil {
		h = c.removeLocked(e)
	}
	c.mu.Unlock()
	if h != nil {
		_ = h.Close()
	}
}

// removeLocked takes e out of the set and returns its file if no read
// uses it (the caller closes it), else leaves it to the last reader.
func (c *Descs) removeLocked(e *desc) *disk.Held {
	c.lru.Remove(e.el)
	delete(c.m, e.key)
	e.gone = true
	if e.refs > 0 {
		return nil
	}
	return e.h
}

// Close closes every kept file (those in use once their reads end) and
// keeps none from now on.
func (c *Descs) Close() {
	c.mu.Lock()
	c.closed = true
	var hs []*disk.Held
	for c.lru.Len() > 0 {
		if h := c.removeLocked(c.lru.Back().Value.(*desc)); h != nil {
			hs = append(hs, h)
		}
	}
	c.mu.Unlock()
	for _, h := range hs {
		_ = h.Close()
	}
}

// DescsStats are a Descs' counters.
type DescsStats struct {
	Open  int    // files kept open now
	Hits  uint64 // block reads from a kept file
	Added uint64 // files kept (each opened once: by its writer or a read)
}

// Stats returns the counters.
func (c *Descs) Stats() DescsStats {
	c.mu.Lock()
	n := c.lru.Len()
	c.mu.Unlock()
	return DescsStats{Open: n, Hits: c.hits.Load(), Added: c.opens.Load()}
}
