package engine

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Block maps. A sequential reader's READ of a whole block read the
// file's inode, the block's entry and the absence of pending extents
// from the store (an iterator and three seeks, inodeView), and its NFS
// READ the attributes once more (GetAttr): at four streams of bench/nfs
// those lookups were ~7 % of the server's samples, the largest part of
// the server's CPU per MiB that ganesha has no counterpart of (read19 in
// bench/nfs/README.md). A READ that reads block idx through the store
// now also reads the entries of the next blocks (up to mapSpan) and where the
// first pending extent among them is, and keeps them with the inode as
// the file's block map; the READs after it, and GetAttr, take the inode
// and the block's entry from the map instead of the store.
//
// A map is the store's state at one count of the changes made through
// the engine's store (kv.Sealed.Changes: every batch commit and ingest
// of the engine, so every writer of a file's keys — writes, truncates,
// SETATTRs, clones, merges of pending extents, replica applies and
// ingests, resyncs, promotions, collections — counts, with no writer
// having to remember the maps) and is used only while that count has
// not moved: any change through the store, of any file, makes every map
// stale, and the next READ reads the store again. It is exact, not a
// heuristic: a map is served only when the store still holds what it
// was read from. A store shared with other nodes (Options.Shared) is
// written by them too, uncounted: no maps there.

// Tuning.
const (
	mapSpan  = 64 // block entries a map holds from the block that filled it, at most
	mapFirst = 4  // and at first: twice what the file's last map served, plus this
	mapFiles = 64 // files whose maps a file system keeps
)

// blockMap is one file's inode and block entries [first, first+len(ents))
// as the store held them when its change count was version; none of
// those blocks has pending extents, and an entry with a zero id is a
// hole. Immutable once made.
type blockMap struct {
	version uint64
	n       inode
	first   uint64
	ents    []blockEntry
	used    atomic.Uint32 // READs it served
}

// blockMaps are a file system's block maps, by inode.
type blockMaps struct {
	mu sync.Mutex
	m  map[uint64]*blockMap
	// Counters for tests: READs served from a map, and maps made.
	hits, fills atomic.Uint64
}

// mapOf returns ino's map if it is current (the store's change count is
// still its version), else nil.
func (fs *FS) mapOf(ino uint64) *blockMap {
	c := fs.e.changes
	if c == nil {
		return nil
	}
	bm := &fs.maps
	bm.mu.Lock()
	m := bm.m[ino]
	bm.mu.Unlock()
	if m == nil || m.version != c.Begun() {
		return nil
	}
	return m
}

// mapSpanOf is how many blocks ino's next map reads: twice as many as
// its last one served plus mapFirst, at most mapSpan. A reader whose maps go
// stale before it uses them (the store changing all the time) reads few
// entries ahead per READ, one that uses them reads up to mapSpan.
func (fs *FS) mapSpanOf(ino uint64) uint64 {
	bm := &fs.maps
	bm.mu.Lock()
	m := bm.m[ino]
	bm.mu.Unlock()
	if m == nil {
		return mapFirst
	}
	return min(mapSpan, 2*uint64(m.used.Load())+mapFirst)
}

// keepMap stores m as ino's map when the store has changed nothing since
// m was read (its version is still the count), at most mapFiles maps
// (stale ones go first, then any).
func (fs *FS) keepMap(ino uint64, m *blockMap) {
	c := fs.e.changes
	bm := &fs.maps
	bm.mu.Lock()
	defer bm.mu.Unlock()
	now := c.Begun()
	if m.version != now {
		return
	}
	if bm.m == nil {
		bm.m = map[uint64]*blockMap{}
	}
	if _, ok := bm.m[ino]; !ok && len(bm.m) >= mapFiles {
		for k, o := range bm.m {
			if o.version != now {
				delete(bm.m, k)
			}
		}
		for k := range bm.m {
			if len(bm.m) < mapFiles {
				break
			}
			delete(bm.m, k)
		}
	}
	bm.m[ino] = m
	bm.fills.Add(1)
}

// mapVersion is the change count a map read now would have, and whether
// one may be read now (every change begun has ended, and the store has
// maps at all).
func (fs *FS) mapVersion() (uint64, bool) {
	c := fs.e.changes
	if c == nil {
		return 0, false
	}
	return c.Changes()
}

// fillMap reads the map of ino from block idx on through v (opened
// after mapVersion returned version, settled): the entries of blocks
// [idx, idx+mapSpan) below the file's end, cut at the first block with
// a pending extent, and keeps it if the store changed nothing meanwhile.
func (fs *FS) fillMap(v *inodeView, version uint64, ino uint64, n *inode, idx uint64) error {
	bs := uint64(fs.blockSizeOr())
	end := min(idx+fs.mapSpanOf(ino), (n.size+bs-1)/bs)
	if end <= idx {
		return nil
	}
	// The first pending extent in [idx, end) ends the map there.
	ep := extentPrefix(ino, idx)
	it, err := v.NewIter(ep, extentPrefix(ino, end))
	if err != nil {
		return err
	}
	if it.First() {
		k := it.Key()
		if len(k) < len(ep) {
			return it.Error()
		}
		x, err := decodeU64(k[len(ep)-8 : len(ep)])
		if err != nil {
			return err
		}
		end = min(end, x)
	}
	if err := it.Close(); err != nil {
		return err
	}
	if end <= idx {
		return nil
	}
	m := &blockMap{version: version, n: *n, first: idx, ents: make([]blockEntry, end-idx)}
	bp := blockKey(ino, idx)
	it, err = v.NewIter(bp, blockKey(ino, end))
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != len(bp) || !bytes.Equal(k[:len(bp)-8], bp[:len(bp)-8]) {
			return fs.corrupt(errBlockMapKey)
		}
		x, err := decodeU64(k[len(bp)-8:])
		if err != nil || x < idx || x >= end {
			return fs.corrupt(errBlockMapKey)
		}
		val, err := it.Value()
		if err != nil {
			return fs.corrupt(err)
		}
		be, err := decodeBlockEntry(val)
		if err != nil {
			return fs.corrupt(err)
		}
		m.ents[x-idx] = be
	}
	if err := it.Close(); err != nil {
		return err
	}
	fs.keepMap(ino, m)
	return nil
}

// errBlockMapKey: a block key of the wrong form under a file's prefix.
var errBlockMapKey = fmt.Errorf("%w: block key", ErrCorrupt)

// readMapped serves a whole-block READ (off a multiple of the block size,
// at most a block) of ino from its map, when it has one that covers the
// block and is current: ok false otherwise (the caller reads through the
// store). Its results are ReadHeld's.
func (fs *FS) readMapped(ctx context.Context, cred Cred, ino, off uint64, count int) (data []byte, eof bool, attr Attr, h Hold, ok bool, err error) {
	if fs.e.changes == nil || fs.dom.keyError() != nil {
		// A locked domain's READ fails reading its metadata: the store's.
		return nil, false, Attr{}, Hold{}, false, nil
	}
	// The read epoch first: a block the map names is retired only after
	// a change that the check below would see, so after this epoch.
	epoch := fs.dom.enterRead()
	defer fs.dom.exitRead(epoch)
	m := fs.mapOf(ino)
	if m == nil {
		return nil, false, Attr{}, Hold{}, false, nil
	}
	n := &m.n
	bs := uint64(fs.blockSizeOr())
	idx := off / bs
	if off%bs != 0 || idx < m.first || idx >= m.first+uint64(len(m.ents)) || count <= 0 || uint64(count) > bs {
		return nil, false, Attr{}, Hold{}, false, nil
	}
	attr = n.attr(ino)
	if err := CheckData(n.typ); err != nil {
		return nil, false, attr, Hold{}, true, err
	}
	if !cred.mayData(n, AccessRead) {
		return nil, false, attr, Hold{}, true, ErrPermission
	}
	if off >= n.size {
		return nil, true, attr, Hold{}, true, nil
	}
	end := min(n.size, off+uint64(count))
	be := m.ents[idx-m.first]
	var blk []byte
	if !be.id.IsZero() {
		b, bh, err := fs.dom.getBlockHeld(ctx, be.id)
		if err != nil {
			return nil, false, attr, Hold{}, true, fs.corrupt(fmt.Errorf("read block %d of inode %d: %w", idx, ino, err))
		}
		k := min(int(be.length), len(b))
		blk, h = b[:k:k], bh
	}
	m.used.Add(1)
	fs.maps.hits.Add(1)
	if uint64(len(blk)) >= end-off {
		return blk[: end-off : end-off], end == n.size, attr, h, true, nil
	}
	out := make([]byte, end-off)
	copy(out, blk)
	h.Release()
	return out, end == n.size, attr, Hold{}, true, nil
}
