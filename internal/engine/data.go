package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// Sub-block writes: a write that covers only part of a block and is smaller
// than extentMax is stored as a pending extent ('E' ino idx seq → off ‖
// bytes) inside the metadata transaction, and merged into a new block later
// (when a block has too many extents, or in the background when idle).
const (
	extentMax      = 64 << 10
	extentsPerBlk  = 32
	extentBudgetFr = 4 // merge when extents of a block exceed blockSize/extentBudgetFr bytes
)

// errTailPending: the operation must wait until stale block entries beyond
// EOF (left by a huge truncate) are released.
var errTailPending = errors.New("engine: stale blocks beyond EOF are being released")

type blockEntry struct {
	id     blocks.ID
	length uint32
}

func (b blockEntry) encode() []byte {
	return binary.BigEndian.AppendUint32(append([]byte(nil), b.id[:]...), b.length)
}

func decodeBlockEntry(v []byte) (blockEntry, error) {
	if len(v) != blocks.IDSize+4 {
		return blockEntry{}, fmt.Errorf("%w: block entry of %d bytes", ErrCorrupt, len(v))
	}
	id, err := blocks.IDFromBytes(v[:blocks.IDSize])
	if err != nil {
		return blockEntry{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return blockEntry{id: id, length: binary.BigEndian.Uint32(v[blocks.IDSize:])}, nil
}

func decodeExtent(v []byte) (uint32, []byte, error) {
	if len(v) < 4 {
		return 0, nil, fmt.Errorf("%w: extent of %d bytes", ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint32(v), v[4:], nil
}

func encodeExtent(off uint32, data []byte) []byte {
	return append(binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(data)), off), data...)
}

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// loadBlock returns the current content of block idx of ino: the stored
// block cut to its entry's length, with pending extents applied. A hole
// without extents returns nil. The result is the caller's to modify.
func (fs *FS) loadBlock(ctx context.Context, r kv.Reader, ino, idx uint64) ([]byte, error) {
	b, _, err := fs.loadBlockShared(ctx, r, ino, idx, false)
	return b, err
}

// loadBlockShared is loadBlock; with shared, a block without pending
// extents is returned as the verified block itself, which the block cache
// shares: the caller must not modify it (no copy of the block per read),
// and releases h once it no longer uses it.
func (fs *FS) loadBlockShared(ctx context.Context, r kv.Reader, ino, idx uint64, shared bool) (_ []byte, h Hold, _ error) {
	var stored []byte
	v, err := r.Get(blockKey(ino, idx))
	switch {
	case errors.Is(err, kv.ErrNotFound):
	case err != nil:
		return nil, Hold{}, fs.corrupt(err)
	default:
		be, err := decodeBlockEntry(v)
		if err != nil {
			return nil, Hold{}, fs.corrupt(err)
		}
		data, bh, err := fs.dom.getBlockHeld(ctx, be.id)
		if err != nil {
			return nil, Hold{}, fs.corrupt(fmt.Errorf("read block %d of inode %d: %w", idx, ino, err))
		}
		n := min(int(be.length), len(data))
		stored, h = data[:n:n], bh
	}
	p := extentPrefix(ino, idx)
	it, err := r.NewIter(p, upper(p))
	if err != nil {
		h.Release()
		return nil, Hold{}, err
	}
	defer it.Close()
	ok := it.First()
	if !ok && shared {
		if err := it.Error(); err != nil {
			h.Release()
			return nil, Hold{}, err
		}
		return stored, h, nil
	}
	var buf []byte
	switch n := len(stored); {
	case stored == nil:
	case n >= 4096:
		buf = bytes.Clone(stored) // not zeroed before the copy
	default:
		buf = make([]byte, n, 4096)
		copy(buf, stored)
	}
	h.Release() // stored is not used after the copy
	for ; ok; ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			return nil, Hold{}, fs.corrupt(err)
		}
		off, data, err := decodeExtent(v)
		if err != nil {
			return nil, Hold{}, fs.corrupt(err)
		}
		end := int(off) + len(data)
		if end > fs.blockSizeOr() {
			return nil, Hold{}, fs.corrupt(fmt.Errorf("%w: extent beyond block", ErrCorrupt))
		}
		if end > len(buf) {
			buf = append(buf, make([]byte, end-len(buf))...)
		}
		copy(buf[off:], data)
	}
	return buf, Hold{}, it.Error()
}

// Read reads up to count bytes at off. eof reports that the read reached
// the end of the file. The data may be shared with the engine's cache of
// verified blocks: the caller must not modify it.
func (fs *FS) Read(ctx context.Context, cred Cred, ino, off uint64, count int) (data []byte, eof bool, attr Attr, err error) {
	data, eof, attr, h, err := fs.ReadHeld(ctx, cred, ino, off, count)
	h.pin()
	return data, eof, attr, err
}

// WithRawReads returns ctx marked so that the block files a Read or
// ReadHeld under it reads from a local store are read with a raw system
// call while the page cache holds them (blocks.WithRawReads): for a
// caller that nothing else waits for, since a raw call keeps its P.
func WithRawReads(ctx context.Context) context.Context { return blocks.WithRawReads(ctx) }

// ReadHeld is Read for a caller that says when it is done with data: data
// may be a buffer of the engine's block cache, which is not reused for
// another block until the caller releases h (after the reply that sends
// data is written). The caller must release h exactly once, and must not
// modify data. Read keeps such a buffer out of reuse for good.
func (fs *FS) ReadHeld(ctx context.Context, cred Cred, ino, off uint64, count int) (data []byte, eof bool, attr Attr, h Hold, err error) {
	if err := fs.ready(); err != nil {
		return nil, false, Attr{}, Hold{}, err
	}
	if data, eof, attr, h, ok, err := fs.readMapped(ctx, cred, ino, off, count); ok {
		return data, eof, attr, h, err
	}
	version, settled := fs.mapVersion() // before the view: see fillMap
	v, err := fs.inodeView(ino)
	if err != nil {
		return nil, false, Attr{}, Hold{}, err
	}
	defer v.close()
	n, err := fs.readInode(v, ino)
	if err != nil {
		return nil, false, Attr{}, Hold{}, err
	}
	attr = n.attr(ino)
	if err := CheckData(n.typ); err != nil {
		return nil, false, attr, Hold{}, err
	}
	if !cred.mayData(n, AccessRead) {
		return nil, false, attr, Hold{}, ErrPermission
	}
	if off >= n.size || count <= 0 {
		return nil, off >= n.size, attr, Hold{}, nil
	}
	end := min(n.size, off+uint64(count))
	bs := uint64(fs.blockSizeOr())
	if n.flags&flagInline == 0 && off%bs == 0 && end-off <= bs {
		// Within one block from its start: the verified block itself is
		// the result (no buffer to zero and fill, no copy).
		blk, h, err := fs.loadBlockShared(ctx, v, ino, off/bs, true)
		if err != nil {
			return nil, false, attr, Hold{}, err
		}
		if settled && n.flags&flagTail == 0 {
			// The next READs of a sequential reader find this block's
			// entry and the next ones in the file's map (blockmap.go).
			if err := fs.fillMap(v, version, ino, n, off/bs); err != nil {
				h.Release()
				return nil, false, attr, Hold{}, err
			}
		}
		if uint64(len(blk)) >= end-off {
			return blk[: end-off : end-off], end == n.size, attr, h, nil
		}
		out := make([]byte, end-off)
		copy(out, blk)
		h.Release()
		return out, end == n.size, attr, Hold{}, nil
	}
	out := make([]byte, end-off)
	if n.flags&flagInline != 0 {
		b, err := v.Get(inlineKey(ino))
		if err != nil && !errors.Is(err, kv.ErrNotFound) {
			return nil, false, attr, Hold{}, fs.corrupt(err)
		}
		if off < uint64(len(b)) {
			copy(out, b[off:])
		}
		return out, end == n.size, attr, Hold{}, nil
	}
	for idx := off / bs; idx*bs < end; idx++ {
		blk, h, err := fs.loadBlockShared(ctx, v, ino, idx, true)
		if err != nil {
			return nil, false, attr, Hold{}, err
		}
		lo, hi := max(off, idx*bs), min(end, (idx+1)*bs)
		if s := lo - idx*bs; s < uint64(len(blk)) {
			copy(out[lo-off:hi-off], blk[s:])
		}
		h.Release()
	}
	return out, end == n.size, attr, Hold{}, nil
}

// precomputed is a whole block prepared by a writer before it queues the
// transaction (hashing and writing outside the committer).
type precomputed struct {
	id   blocks.ID
	hole bool
}

// CheckSpace reports, with an error wrapping ErrNoSpace, whether writing
// need more bytes to the file system would be refused for lack of space.
func (fs *FS) CheckSpace(need int64) error { return fs.e.CheckSpace(need) }

// Write writes data at off. When it returns, the data is durable.
func (fs *FS) Write(ctx context.Context, cred Cred, ino, off uint64, data []byte) (before, after Attr, err error) {
	return fs.write(ctx, cred, ino, genWant{}, off, data, false, nil, nil)
}

// WriteGen is Write to inode ino only while its generation is gen:
// ErrStale otherwise, as for a file that is gone. Checked in the
// transaction, which reads the inode anyway, it spares an NFS server the
// read of the file's attributes before a stable write (the create probe
// of issue 16): before is the file as the write found it.
func (fs *FS) WriteGen(ctx context.Context, cred Cred, ino, gen, off uint64, data []byte) (before, after Attr, err error) {
	return fs.write(ctx, cred, ino, genIs(gen), off, data, false, nil, nil)
}

// BackTime gives a write-back its time (WriteBuffered) from the file's
// ctime as the write's transaction finds it. It runs inside the
// transaction (keep it short, and call nothing of the engine), perhaps
// more than once.
type BackTime func(ctime time.Time) time.Time

// WriteBuffered is Write of data a server buffered and now writes back:
// at gives the time that becomes the file's mtime and ctime (unless they
// are later already) instead of the time of the write-back: when its
// client wrote it (the time the server has shown as the file's mtime
// since), so that a write-back changes no time a client has seen, or
// past a ctime the server did not give (another mount target's WRITE),
// so that the change of the data moves the ctime. at sees the ctime the
// transaction finds, so no change lands between its choice and the
// write. When owned, the caller hands data over (it must not modify it
// afterwards), so the whole blocks data covers are cached as they are,
// without a copy.
func (fs *FS) WriteBuffered(ctx context.Context, cred Cred, ino, off uint64, data []byte, owned bool, at BackTime) (before, after Attr, err error) {
	return fs.write(ctx, cred, ino, genWant{}, off, data, owned, at, nil)
}

// WriteSetAttr writes data at off with cred's right to write, then
// changes attributes as SetAttr does (without a guard) with scred's
// rights, in one transaction: both are durable when it returns, with
// one journal sync where a Write and a SetAttr take one each, or
// neither happened. An NFS server uses it for a SETATTR that must land
// after a file's buffered UNSTABLE data (cp -a's times and mode after a
// small file's data). owned and at are as for WriteBuffered.
func (fs *FS) WriteSetAttr(ctx context.Context, cred Cred, ino, off uint64, data []byte, owned bool, at BackTime, scred Cred, sa SetAttr) (before, after Attr, err error) {
	return fs.write(ctx, cred, ino, genWant{}, off, data, owned, at, func(tx *txn, n *inode) error {
		return tx.setattr(scred, ino, n, sa)
	})
}

// write is Write; the data's times are at's when not nil (WriteBuffered);
// then, when not nil, changes the inode further in the same transaction.
func (fs *FS) write(ctx context.Context, cred Cred, ino uint64, gen genWant, off uint64, data []byte, owned bool, at BackTime, then func(tx *txn, n *inode) error) (before, after Attr, err error) {
	if off+uint64(len(data)) > MaxFileSize || off > MaxFileSize {
		return Attr{}, Attr{}, ErrFileTooBig
	}
	if err := fs.ready(); err != nil {
		return Attr{}, Attr{}, err
	}
	if m, _ := fs.Mode(); m != ModePrimary {
		return Attr{}, Attr{}, ErrReadOnly
	}
	if len(data) > 0 {
		if err := fs.e.admit(int64(len(data)) + metaBytes); err != nil {
			return Attr{}, Attr{}, err
		}
	}
	pre, inflight, err := fs.prepareBlocks(ctx, off, data, owned)
	if err != nil {
		return Attr{}, Attr{}, err
	}
	for {
		o := &op{kind: opMutate, name: "write", inflight: inflight, fn: func(tx *txn) error {
			n, err := tx.inode(ino)
			if err != nil {
				return err
			}
			if err := gen.match(ino, n); err != nil {
				return err
			}
			if err := cred.mayWriteData(n); err != nil {
				return err
			}
			before = n.attr(ino)
			if len(data) == 0 && then == nil {
				after = before
				return nil
			}
			if len(data) > 0 {
				mtime, ctime := n.mtime, n.ctime
				if err := tx.write(ino, n, off, data, pre); err != nil {
					return err
				}
				if at != nil {
					// The client's write time, or past a later ctime,
					// never before a time the file has already, never
					// after this write's.
					ns := at(time.Unix(0, ctime)).UnixNano()
					n.mtime = max(mtime, min(ns, n.mtime))
					n.ctime = max(ctime, min(ns, n.ctime))
				}
				if !cred.isRoot() {
					n.killPriv()
				}
			}
			if then != nil {
				if err := then(tx, n); err != nil {
					return err
				}
			}
			tx.putInode(ino, n)
			tx.note([]uint64{ino})
			after = n.attr(ino)
			return nil
		}}
		_, err = fs.doOp(ctx, o)
		if !errors.Is(err, errTailPending) {
			return before, after, err
		}
		// Keep the precomputed blocks in flight across the retry.
		fs.dom.addInflight(inflight...)
		if err := fs.maint.clearTail(ctx, ino); err != nil {
			fs.dom.doneInflight(inflight...)
			return Attr{}, Attr{}, err
		}
	}
}

// prepareBlocks hashes and stores the blocks that data covers entirely.
// They stay in flight (safe from collection) until the write commits.
// With Options.CacheWrites, or while a replication ships the file system
// (it reads them back soon), each is also put in the block cache: its id
// is the hash of these very bytes, so they are verified plaintext, and
// reading them back then costs no block file read and no verification;
// owned says that data is the engine's, cached without a copy.
func (fs *FS) prepareBlocks(ctx context.Context, off uint64, data []byte, owned bool) (map[uint64]precomputed, []blocks.ID, error) {
	g := fs.Geometry()
	bs := g.BlockSize
	first, last := g.Whole(off, off+uint64(len(data)))
	var pre map[uint64]precomputed
	var inflight []blocks.ID
	for idx := first; idx < last; idx++ {
		piece := data[idx*bs-off : (idx+1)*bs-off]
		if pre == nil {
			pre = map[uint64]precomputed{}
		}
		if isZero(piece) {
			pre[idx] = precomputed{hole: true}
			continue
		}
		d := fs.dom
		id := d.blockHasher().Sum(piece)
		d.addInflight(id)
		inflight = append(inflight, id)
		if err := d.blockStore().Put(ctx, id, piece); err != nil {
			d.doneInflight(inflight...)
			for _, id := range inflight {
				fs.e.queueCandidate(d, id)
			}
			return nil, nil, blockWriteErr(err)
		}
		if fs.e.opts.CacheWrites || fs.shipping() {
			if owned {
				d.cache.put(d.id, id, piece)
			} else {
				d.cache.putCopy(d.id, id, piece)
			}
		}
		pre[idx] = precomputed{id: id}
	}
	return pre, inflight, nil
}

// shipping reports whether a replication ships this file system, so that
// freshly written blocks are worth caching (it reads them back soon).
func (fs *FS) shipping() bool { return fs.shippers.Load() > 0 }

// ShipWrites tells the file system that a replication ships it (on) or no
// longer does (off): while one does, the plaintext of newly written blocks
// is kept in the block cache for it.
func (rep *Replica) ShipWrites(on bool) {
	fs := rep.fs
	if on {
		fs.shippers.Add(1)
	} else {
		fs.shippers.Add(-1)
	}
}

// write applies data at off to inode n (whose attributes the caller
// writes), and moves the usage counter by what n counts more or less.
func (tx *txn) write(ino uint64, n *inode, off uint64, data []byte, pre map[uint64]precomputed) error {
	return tx.counting(ino, n, func() error { return tx.writeData(ino, n, off, data, pre) })
}

func (tx *txn) writeData(ino uint64, n *inode, off uint64, data []byte, pre map[uint64]precomputed) error {
	end := off + uint64(len(data))
	if n.flags&flagTail != 0 && end > n.size {
		return errTailPending
	}
	inlineMax := uint64(tx.fs.superPub.Load().InlineMax)
	if n.flags&flagInline != 0 || n.size == 0 && n.flags&flagTail == 0 {
		if end <= inlineMax {
			return tx.writeInline(ino, n, off, data)
		}
		if err := tx.uninline(ino, n); err != nil {
			return err
		}
	}
	bs := uint64(tx.fs.blockSizeOr())
	oldSize := n.size
	for idx := off / bs; idx*bs < end; idx++ {
		blkStart := idx * bs
		lo, hi := max(off, blkStart), min(end, blkStart+bs)
		piece := data[lo-off : hi-off]
		if p, ok := pre[idx]; ok {
			if err := tx.setBlock(ino, n, idx, p.id, uint32(bs), p.hole); err != nil {
				return err
			}
			continue
		}
		if lo == blkStart && (hi == blkStart+bs || oldSize <= hi) {
			// The write replaces everything the block holds.
			if err := tx.storeBlock(ino, n, idx, piece); err != nil {
				return err
			}
			continue
		}
		if len(piece) < extentMax {
			cnt, sz, err := tx.extentStats(ino, idx)
			if err != nil {
				return err
			}
			if cnt < extentsPerBlk && sz+len(piece) <= int(bs)/extentBudgetFr {
				tx.set(extentKey(ino, idx, tx.extentSeq()), encodeExtent(uint32(lo-blkStart), piece))
				n.hold(uint64(len(piece)), 0)
				if cnt == 0 {
					tx.markMerge(ino, idx)
				}
				continue
			}
		}
		// Read-modify-write of the block.
		cur, err := tx.fs.loadBlock(tx.ctx(), tx.ov, ino, idx)
		if err != nil {
			return err
		}
		valid := 0
		if oldSize > blkStart {
			valid = int(min(oldSize-blkStart, uint64(len(cur))))
		}
		buf := make([]byte, max(valid, int(hi-blkStart)))
		copy(buf, cur[:valid])
		copy(buf[lo-blkStart:], piece)
		if err := tx.storeBlock(ino, n, idx, buf); err != nil {
			return err
		}
	}
	n.size = max(n.size, end)
	n.touch(tx.now, true)
	return nil
}

func (tx *txn) writeInline(ino uint64, n *inode, off uint64, data []byte) error {
	// An empty file's inline key holds nothing valid (none, for a new
	// file): the first write of a small file does not look for it, a
	// point read of a missing key in every level of the store (~1.3 % of
	// the server's CPU samples on the create probe, perf14).
	var cur []byte
	if n.size > 0 {
		var err error
		if cur, _, err = tx.get(inlineKey(ino)); err != nil {
			return err
		}
	}
	end := off + uint64(len(data))
	valid := min(uint64(len(cur)), n.size)
	buf := make([]byte, max(valid, end))
	copy(buf, cur[:valid])
	copy(buf[off:], data)
	tx.setOwned(inlineKey(ino), buf)
	n.hold(uint64(len(buf)), uint64(len(cur)))
	n.flags |= flagInline
	n.size = max(n.size, end)
	n.touch(tx.now, true)
	return nil
}

// uninline moves inline data into a pending extent of block 0.
func (tx *txn) uninline(ino uint64, n *inode) error {
	cur, ok, err := tx.get(inlineKey(ino))
	if err != nil {
		return err
	}
	n.flags &^= flagInline
	if !ok {
		return nil
	}
	tx.del(inlineKey(ino))
	n.hold(0, uint64(len(cur)))
	if valid := min(uint64(len(cur)), n.size); valid > 0 && !isZero(cur[:valid]) {
		tx.set(extentKey(ino, 0, tx.extentSeq()), encodeExtent(0, cur[:valid]))
		n.hold(valid, 0)
		tx.markMerge(ino, 0)
	}
	return nil
}

// storeBlock writes content as block idx of ino (inode n), replacing its
// entry and pending extents.
func (tx *txn) storeBlock(ino uint64, n *inode, idx uint64, content []byte) error {
	if isZero(content) {
		return tx.setBlock(ino, n, idx, blocks.ID{}, 0, true)
	}
	id, err := tx.writeBlock(content)
	if err != nil {
		return err
	}
	return tx.setBlock(ino, n, idx, id, uint32(len(content)), false)
}

// setBlock points block idx of ino (inode n) at id (or makes it a hole)
// and drops the block's pending extents.
func (tx *txn) setBlock(ino uint64, n *inode, idx uint64, id blocks.ID, length uint32, hole bool) error {
	old, ok, err := tx.get(blockKey(ino, idx))
	if err != nil {
		return err
	}
	if ok {
		be, err := decodeBlockEntry(old)
		if err != nil {
			return tx.fs.corrupt(err)
		}
		tx.ref(be.id, -1)
		n.hold(0, uint64(be.length))
	}
	if hole {
		tx.del(blockKey(ino, idx))
	} else {
		tx.ref(id, +1)
		tx.set(blockKey(ino, idx), blockEntry{id: id, length: length}.encode())
		n.hold(uint64(length), 0)
	}
	return tx.dropExtents(ino, n, idx, 0)
}

// extentSeq orders pending extents: the transaction's seq, then the order
// of the extents within it.
func (tx *txn) extentSeq() uint64 {
	tx.extents++
	return tx.seq<<16 | tx.extents
}

// markMerge records that a block has pending extents (replicated, so a
// promoted replica finds them too) and tells the merger.
func (tx *txn) markMerge(ino, idx uint64) {
	tx.set(mergeKey(ino, idx), nil)
	tx.onCommit = append(tx.onCommit, func() { tx.fs.maint.noteExtent(ino, idx) })
}

// dropExtents deletes the pending extents of block idx of ino (inode n)
// at or beyond from (trimming one that straddles from).
func (tx *txn) dropExtents(ino uint64, n *inode, idx uint64, from uint32) error {
	p := extentPrefix(ino, idx)
	it, err := tx.iter(p, upper(p))
	if err != nil {
		return err
	}
	type trim struct {
		key  []byte
		data []byte
		off  uint32
	}
	var dels [][]byte
	var trims []trim
	for ok := it.First(); ok; ok = it.Next() {
		k := append([]byte(nil), it.Key()...)
		v, err := it.Value()
		if err != nil {
			it.Close()
			return tx.fs.corrupt(err)
		}
		off, data, err := decodeExtent(v)
		if err != nil {
			it.Close()
			return tx.fs.corrupt(err)
		}
		switch {
		case off >= from:
			dels = append(dels, k)
			n.hold(0, uint64(len(data)))
		case off+uint32(len(data)) > from:
			trims = append(trims, trim{k, append([]byte(nil), data[:from-off]...), off})
			n.hold(uint64(from-off), uint64(len(data)))
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, k := range dels {
		tx.del(k)
	}
	for _, t := range trims {
		tx.set(t.key, encodeExtent(t.off, t.data))
	}
	if len(dels) > 0 && len(trims) == 0 && from == 0 {
		tx.del(mergeKey(ino, idx))
	}
	return nil
}

func (tx *txn) extentStats(ino, idx uint64) (count, size int, err error) {
	p := extentPrefix(ino, idx)
	it, err := tx.iter(p, upper(p))
	if err != nil {
		return 0, 0, err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			return 0, 0, tx.fs.corrupt(err)
		}
		count++
		size += len(v) - 4
	}
	return count, size, it.Error()
}

// truncate sets the size of a regular file, and moves the usage counter
// by what it counts more or less.
func (tx *txn) truncate(ino uint64, n *inode, size uint64) error {
	return tx.counting(ino, n, func() error { return tx.truncateData(ino, n, size) })
}

func (tx *txn) truncateData(ino uint64, n *inode, size uint64) error {
	if size > MaxFileSize {
		return ErrFileTooBig
	}
	old := n.size
	n.touch(tx.now, true)
	if size == old {
		return nil
	}
	if size > old && n.flags&flagTail != 0 {
		return errTailPending
	}
	inlineMax := uint64(tx.fs.superPub.Load().InlineMax)
	if n.flags&flagInline != 0 {
		if size <= inlineMax {
			cur, ok, err := tx.get(inlineKey(ino))
			if err != nil {
				return err
			}
			if ok && uint64(len(cur)) > size {
				tx.set(inlineKey(ino), cur[:size])
				n.hold(size, uint64(len(cur)))
			}
			n.size = size
			return nil
		}
		if err := tx.uninline(ino, n); err != nil {
			return err
		}
	}
	n.size = size
	if size > old {
		return nil
	}
	bs := uint64(tx.fs.blockSizeOr())
	keep := (size + bs - 1) / bs
	if oldBlocks := (old + bs - 1) / bs; oldBlocks-keep > uint64(tx.fs.e.opts.BatchEntries) {
		// Huge shrink: the stale entries beyond EOF are released in the
		// background; until then nothing may extend the file.
		n.flags |= flagTail
		tx.set(zombieKey(ino), []byte{zombieTail})
		tx.onCommit = append(tx.onCommit, func() { tx.fs.maint.kick() })
	} else if _, err := tx.releaseData(ino, n, keep, -1); err != nil {
		return err
	}
	if rem := size % bs; rem != 0 {
		idx := size / bs
		v, ok, err := tx.get(blockKey(ino, idx))
		if err != nil {
			return err
		}
		if ok {
			be, err := decodeBlockEntry(v)
			if err != nil {
				return tx.fs.corrupt(err)
			}
			if uint64(be.length) > rem {
				n.hold(rem, uint64(be.length))
				be.length = uint32(rem)
				tx.set(blockKey(ino, idx), be.encode())
			}
		}
		if err := tx.dropExtents(ino, n, idx, uint32(rem)); err != nil {
			return err
		}
	}
	if size == 0 && n.flags&flagTail == 0 && inlineMax > 0 {
		n.flags |= flagInline
	}
	return nil
}

// releaseData deletes the block entries and extents of ino (inode n) with
// index >= from, and its inline data when from is 0, dropping block
// references and what n holds. With limit >= 0 it stops after limit keys
// and reports done=false.
func (tx *txn) releaseData(ino uint64, n *inode, from uint64, limit int) (done bool, err error) {
	if from == 0 {
		tx.del(inlineKey(ino))
		if n.flags&flagInline != 0 {
			// Inline data is all an inline file holds (it has no block
			// entries or extents): known without reading it.
			n.held = 0
		}
	}
	if err := tx.dropMergeMarks(ino, from); err != nil {
		return false, err
	}
	count := 0
	for _, tag := range []byte{inoBlock, inoExtent} {
		lo := be64(append(inodePrefix(ino), tag), from)
		hi := upper(append(inodePrefix(ino), tag))
		it, err := tx.iter(lo, hi)
		if err != nil {
			return false, err
		}
		var keys [][]byte
		for ok := it.First(); ok; ok = it.Next() {
			if limit >= 0 && count >= limit {
				break
			}
			k := append([]byte(nil), it.Key()...)
			v, err := it.Value()
			if err != nil {
				it.Close()
				return false, tx.fs.corrupt(err)
			}
			if tag == inoBlock {
				be, err := decodeBlockEntry(v)
				if err != nil {
					it.Close()
					return false, tx.fs.corrupt(err)
				}
				tx.ref(be.id, -1)
				n.hold(0, uint64(be.length))
			} else {
				_, data, err := decodeExtent(v)
				if err != nil {
					it.Close()
					return false, tx.fs.corrupt(err)
				}
				n.hold(0, uint64(len(data)))
			}
			keys = append(keys, k)
			count++
		}
		more := it.Valid()
		if err := it.Close(); err != nil {
			return false, err
		}
		for _, k := range keys {
			tx.del(k)
		}
		if more && limit >= 0 && count >= limit {
			return false, nil
		}
	}
	return true, nil
}

// dropMergeMarks deletes the merge markers of ino's blocks from idx on.
func (tx *txn) dropMergeMarks(ino, from uint64) error {
	p := be64([]byte{relMerge}, ino)
	it, err := tx.iter(be64(append([]byte(nil), p...), from), upper(p))
	if err != nil {
		return err
	}
	var keys [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, k := range keys {
		tx.del(k)
	}
	return nil
}
