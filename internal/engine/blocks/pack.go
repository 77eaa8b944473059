package blocks

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// PackPutter is a Store that can store a batch of blocks as one pack
// file (a Dir opened with a PackIndex): one file created, written and
// synced, and one directory sync, for the whole batch, instead of a
// file, a sync and a rename per block.
//
// When PutPack returns, the batch's blocks are durable in their pack and
// named by the index, visible to Has and Get at once; the index entries
// become durable with the next synced commit of the index's store, which
// is what any metadata naming the blocks waits for: a caller commits
// such metadata (synced) after PutPack returned, so a crash never leaves
// metadata naming a packed block the index lost. No Sync is needed for
// them.
type PackPutter interface {
	PutPack(ctx context.Context, ids []ID, data [][]byte) error
	// Packs reports whether PutPack can be used (the store has an index).
	Packs() bool
}

// DeleteFlusher is a Store whose deletions can leave space to reclaim
// until FlushDeletes runs (a Dir's packed blocks: their index entries go
// at once, their bytes once the removal is durable). The collector calls
// it at the end of a pass; a Dir also runs it every freeBatch deletions.
type DeleteFlusher interface {
	FlushDeletes(ctx context.Context) error
}

var (
	_ PackPutter    = (*Dir)(nil)
	_ DeleteFlusher = (*Dir)(nil)
)

// PackIndex is where a Dir keeps the locations of its packed blocks: in
// a metadata store (the engine's, under the domain's keys), so that
// nothing is read, synced or held in memory per pack or per block when
// the store opens. Under Prefix:
//
//	'i' id(33)  → seq(8) ‖ offset(8) ‖ length(4): a packed block
//	'c' seq(8)  → live(4): how many blocks the index names in pack seq
//	's'         → never written: deleting it in a synced commit makes the
//	              index's earlier commits durable (FlushDeletes)
//
// (integers big-endian). A pack's 'i' entries and its 'c' entry are
// written by one commit, after the pack and its name are synced; a
// deletion changes both in one commit, and frees the block's bytes only
// once that commit is durable.
type PackIndex struct {
	KV     kv.Store
	Prefix []byte
}

// Pack files: dir/packs/<seq >> 12, 6+ hex digits>/<seq, 16 hex
// digits>.pack (4096 packs per directory). A pack holds the stored form
// of each block (the block file format: header, then payload) one after
// the other, then a trailer that makes it self-describing (the index is
// the store's; the trailer is for tools and for whoever must rebuild an
// index by hand): n × (id ‖ offset u64 ‖ length u32) ‖ n u32 ‖ CRC-32C
// of the entries and n u32 ‖ "RFPK" (integers big-endian).
//
// At open, only the packs near the newest indexed one are looked at: a
// pack past it, or one within pruneWindow below it that the index does
// not name, was being written or indexed when the process stopped
// (nothing names its blocks) and is removed.
const (
	packDir     = "packs"
	packSuffix  = ".pack"
	packFanBits = 12
	packEntry   = IDSize + 8 + 4
	// maxStoredOverhead bounds what the stored form of a block adds to
	// its plaintext (a header; a nonce and a tag when sealed).
	maxStoredOverhead = 64
	packTailSize      = 4 + 4 + 4
	// maxPackBuf: pack buffers up to this size are kept for later packs.
	maxPackBuf = 32 << 20
	// pruneWindow: packs below the newest indexed one that may still
	// have been in flight (being written or indexed) when it was indexed.
	// PutPacks run a few at a time (the receiver runs two per file
	// system), far fewer than this.
	pruneWindow = 1 << packFanBits
	// freeBatch: deleted packed blocks whose bytes wait for the index's
	// next synced commit (FlushDeletes) before they are freed.
	freeBatch = 64
)

var packMagic = []byte("RFPK")

// packLoc is where a packed block's stored form lies.
type packLoc struct {
	seq uint64
	off int64
	n   int64
}

// packEnt is a block of a pack being written.
type packEnt struct {
	id  ID
	off int64
	n   int64
}

// freed is the range of a deleted packed block, or its whole pack when
// it was the pack's last block, to free once the deletion is durable.
type freed struct {
	seq   uint64
	off   int64
	n     int64
	whole bool
}

// packs is a Dir's state for its pack files.
type packs struct {
	idx PackIndex // KV nil: the store does not pack
	// any: the index may name a block; until then (a source's store)
	// lookups do not ask it.
	any  atomic.Bool
	next atomic.Uint64 // sequence number of the next pack

	// mu serializes the index's changes (a pack's live count is read,
	// then written) and guards the fields below.
	mu    sync.Mutex
	made  map[uint64]bool // fan-out directories known to exist
	freed []freed
	// flushMu makes FlushDeletes one at a time.
	flushMu sync.Mutex

	bufs sync.Pool // *[]byte: buffers packs are assembled in
}

// OpenDirPacked opens a block directory as OpenDir does, with an index
// for packs (PutPack): the store's packs are named in idx.KV under
// idx.Prefix, which nothing else writes.
func OpenDirPacked(fsys disk.FS, dir string, keys Keys, idx PackIndex) (*Dir, error) {
	if idx.KV == nil {
		return nil, errors.New("blocks: a pack index needs a store")
	}
	return openDir(fsys, dir, keys, idx)
}

// Packs reports whether the store packs (it was opened with an index).
func (d *Dir) Packs() bool { return d.packs.idx.KV != nil }

func (d *Dir) packKey(tag byte, rest []byte) []byte {
	k := make([]byte, 0, len(d.packs.idx.Prefix)+1+len(rest))
	return append(append(append(k, d.packs.idx.Prefix...), tag), rest...)
}

func (d *Dir) locKey(id ID) []byte { return d.packKey('i', id[:]) }

func (d *Dir) liveKey(seq uint64) []byte {
	return d.packKey('c', binary.BigEndian.AppendUint64(nil, seq))
}

func (d *Dir) packSub(seq uint64) string {
	return path.Join(d.dir, packDir, fmt.Sprintf("%06x", seq>>packFanBits))
}

func (d *Dir) packName(seq uint64) string {
	return path.Join(d.packSub(seq), fmt.Sprintf("%016x%s", seq, packSuffix))
}

// openPacks makes the packs directory (durably), finds the newest pack
// the index names and removes the packs a crash left unnamed near it.
// Nothing else is read: the index is the metadata store's.
func (d *Dir) openPacks() error {
	d.packs.made = map[uint64]bool{}
	if d.packs.idx.KV == nil {
		return nil
	}
	// packs/ and its entry durable (synced even when it exists, as
	// ensurePackDir does).
	pd := path.Join(d.dir, packDir)
	if _, err := d.fs.Stat(pd); errors.Is(err, fs.ErrNotExist) {
		if err := d.fs.MkdirAll(pd); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if err := d.fs.SyncDir(d.dir); err != nil {
		return err
	}
	last, ok, err := d.lastIndexed()
	if err != nil {
		return err
	}
	d.packs.any.Store(ok)
	d.packs.next.Store(last + 1)
	low := uint64(0)
	if last > pruneWindow {
		low = last - pruneWindow
	}
	subs, err := d.fs.ReadDir(pd)
	if err != nil {
		return err
	}
	for _, s := range subs {
		fan, err := strconv.ParseUint(s.Name(), 16, 64)
		if err != nil || !s.IsDir() || fan < low>>packFanBits {
			continue
		}
		sub := path.Join(pd, s.Name())
		ents, err := d.fs.ReadDir(sub)
		if err != nil {
			return err
		}
		for _, e := range ents {
			seq, err := strconv.ParseUint(strings.TrimSuffix(e.Name(), packSuffix), 16, 64)
			if err != nil || e.IsDir() || !strings.HasSuffix(e.Name(), packSuffix) || seq < low {
				continue
			}
			if seq <= last {
				if _, err := d.packs.idx.KV.Get(d.liveKey(seq)); err == nil {
					continue
				} else if !errors.Is(err, kv.ErrNotFound) {
					return err
				}
			}
			// Unnamed: its removal need not be durable (it is
			// unnamed again after a crash).
			if err := d.fs.Remove(path.Join(sub, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// lastIndexed returns the newest pack the index names.
func (d *Dir) lastIndexed() (uint64, bool, error) {
	lo := d.packKey('c', nil)
	it, err := d.packs.idx.KV.NewIter(lo, d.packKey('c'+1, nil))
	if err != nil {
		return 0, false, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, false, it.Error()
	}
	k := it.Key()
	if len(k) != len(lo)+8 {
		return 0, false, fmt.Errorf("%w: pack index key of %d bytes", ErrCorrupt, len(k))
	}
	return binary.BigEndian.Uint64(k[len(lo):]), true, nil
}

// ensurePackDir makes the fan-out directory of pack seq, durably.
func (d *Dir) ensurePackDir(seq uint64) error {
	fan := seq >> packFanBits
	d.packs.mu.Lock()
	ok := d.packs.made[fan]
	d.packs.mu.Unlock()
	if ok {
		return nil
	}
	// Its entry in packs/ is synced even when it exists: a process
	// killed between making it and that sync left it in the page cache
	// only (once per directory per process).
	sub := d.packSub(seq)
	if _, err := d.fs.Stat(sub); errors.Is(err, fs.ErrNotExist) {
		if err := d.fs.MkdirAll(sub); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if err := d.fs.SyncDir(path.Dir(sub)); err != nil {
		return err
	}
	d.packs.mu.Lock()
	d.packs.made[fan] = true
	d.packs.mu.Unlock()
	return nil
}

// PutPack stores the blocks of ids (data[i] is ids[i]'s; the caller
// computed each id with the store's Hasher) as one pack file, skipping
// those already stored (see PackPutter). Blocks found stored as files
// are marked for the next Sync as Has does.
func (d *Dir) PutPack(ctx context.Context, ids []ID, data [][]byte) error {
	if !d.Packs() {
		return errors.New("blocks: PutPack on a store opened without a pack index")
	}
	if len(ids) != len(data) {
		return fmt.Errorf("blocks: pack of %d ids and %d blocks", len(ids), len(data))
	}
	size := packTailSize + len(ids)*packEntry
	for _, b := range data {
		size += len(b) + maxStoredOverhead
	}
	buf, _ := d.packs.bufs.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	defer func() {
		if cap(*buf) <= maxPackBuf {
			d.packs.bufs.Put(buf)
		}
	}()
	if cap(*buf) < size {
		*buf = make([]byte, 0, size)
	}
	out := (*buf)[:0]
	ents := make([]packEnt, 0, len(ids))
	var plain uint64
next:
	for i, id := range ids {
		for _, e := range ents {
			if e.id == id {
				continue next
			}
		}
		if ok, err := d.Has(ctx, id); err != nil {
			return fmt.Errorf("blocks: put %s: %w", id, err)
		} else if ok {
			continue
		}
		off := len(out)
		var err error
		if out, err = encodeTo(out, d.keys, id, data[i]); err != nil {
			return err
		}
		ents = append(ents, packEnt{id: id, off: int64(off), n: int64(len(out) - off)})
		plain += uint64(len(data[i]))
	}
	if len(ents) == 0 {
		return nil
	}
	start := len(out)
	for _, e := range ents {
		out = append(out, e.id[:]...)
		out = binary.BigEndian.AppendUint64(out, uint64(e.off))
		out = binary.BigEndian.AppendUint32(out, uint32(e.n))
	}
	out = binary.BigEndian.AppendUint32(out, uint32(len(ents)))
	out = binary.BigEndian.AppendUint32(out, crc32.Update(0, castagnoli, out[start:]))
	out = append(out, packMagic...)
	*buf = out

	seq := d.packs.next.Add(1) - 1
	if err := d.ensurePackDir(seq); err != nil {
		return fmt.Errorf("blocks: pack: %w", err)
	}
	name := d.packName(seq)
	f, err := d.fs.Create(name)
	if err != nil {
		return fmt.Errorf("blocks: pack: %w", err)
	}
	werr := func() error {
		if _, err := f.Write(out); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		// Nothing reads pushed blocks soon: their pages leave the page
		// cache once durable (see ColdPutter).
		if dc, ok := f.(interface{ DropCache() error }); ok {
			_ = dc.DropCache() // advice: the data is durable either way
		}
		return nil
	}()
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = d.fs.SyncDir(path.Dir(name))
	}
	live := 0
	if werr == nil {
		// Only now, the pack and its name durable, are its blocks named.
		live, werr = d.indexPack(seq, ents)
	}
	if werr != nil || live == 0 {
		// Unnamed (or every block raced in elsewhere): nothing reads it.
		_ = d.fs.Remove(name)
	}
	if werr != nil {
		return fmt.Errorf("blocks: pack: %w", werr)
	}
	d.puts.Add(uint64(len(ents)))
	d.putBytes.Add(plain)
	return nil
}

// indexPack names the blocks of pack seq in the index, but for those a
// batch beside this one named first, in one commit (not synced: see
// PackPutter), and returns how many it named.
func (d *Dir) indexPack(seq uint64, ents []packEnt) (int, error) {
	d.packs.mu.Lock()
	defer d.packs.mu.Unlock()
	b := d.packs.idx.KV.NewBatch()
	defer b.Close()
	live := 0
	for _, e := range ents {
		k := d.locKey(e.id)
		if _, err := d.packs.idx.KV.Get(k); err == nil {
			continue
		} else if !errors.Is(err, kv.ErrNotFound) {
			return 0, err
		}
		v := binary.BigEndian.AppendUint64(make([]byte, 0, 20), seq)
		v = binary.BigEndian.AppendUint64(v, uint64(e.off))
		v = binary.BigEndian.AppendUint32(v, uint32(e.n))
		b.Set(k, v)
		live++
	}
	if live == 0 {
		return 0, nil
	}
	b.Set(d.liveKey(seq), binary.BigEndian.AppendUint32(nil, uint32(live)))
	if err := b.Commit(false); err != nil {
		return 0, err
	}
	d.packs.any.Store(true)
	return live, nil
}

// packed returns where id lies in a pack, if it does.
func (d *Dir) packed(id ID) (packLoc, bool, error) {
	if !d.packs.any.Load() {
		return packLoc{}, false, nil
	}
	v, err := d.packs.idx.KV.Get(d.locKey(id))
	if errors.Is(err, kv.ErrNotFound) {
		return packLoc{}, false, nil
	}
	if err != nil {
		return packLoc{}, false, err
	}
	if len(v) != 20 {
		return packLoc{}, false, fmt.Errorf("%w: pack index entry of %d bytes for %s", ErrCorrupt, len(v), id)
	}
	l := packLoc{
		seq: binary.BigEndian.Uint64(v),
		off: int64(binary.BigEndian.Uint64(v[8:])),
		n:   int64(binary.BigEndian.Uint32(v[16:])),
	}
	if l.off < 0 || l.n < headerSize {
		return packLoc{}, false, fmt.Errorf("%w: pack index entry for %s", ErrCorrupt, id)
	}
	return l, true, nil
}

// readPacked reads the stored form of a packed block, into buf when it
// fits.
func (d *Dir) readPacked(l packLoc, buf []byte) ([]byte, bool, error) {
	f, err := d.fs.Open(d.packName(l.seq))
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	inBuf := l.n <= int64(cap(buf))
	var raw []byte
	if inBuf {
		raw = buf[:l.n]
	} else {
		raw = make([]byte, l.n)
	}
	if n, err := f.ReadAt(raw, l.off); err != nil && !(errors.Is(err, io.EOF) && int64(n) == l.n) {
		return nil, false, err
	}
	return raw, inBuf, nil
}

// deletePacked deletes a packed block (reporting whether id was one):
// out of the index first (with its pack's live count, in one commit), so
// no reader is sent to its range; its bytes are freed by FlushDeletes,
// once that commit is durable: a crash must not leave the index naming a
// range punched out.
func (d *Dir) deletePacked(ctx context.Context, id ID) (bool, error) {
	if !d.packs.any.Load() {
		return false, nil
	}
	d.packs.mu.Lock()
	l, ok, err := d.packed(id)
	if err != nil || !ok {
		d.packs.mu.Unlock()
		return false, err
	}
	live := -1 // unknown: the pack is not removed, only the range freed
	if v, err := d.packs.idx.KV.Get(d.liveKey(l.seq)); err == nil && len(v) == 4 {
		live = int(binary.BigEndian.Uint32(v))
	} else if err != nil && !errors.Is(err, kv.ErrNotFound) {
		d.packs.mu.Unlock()
		return true, err
	}
	b := d.packs.idx.KV.NewBatch()
	b.Delete(d.locKey(id))
	switch {
	case live == 1:
		b.Delete(d.liveKey(l.seq))
	case live > 1:
		b.Set(d.liveKey(l.seq), binary.BigEndian.AppendUint32(nil, uint32(live-1)))
	}
	err = b.Commit(false)
	b.Close()
	if err != nil {
		d.packs.mu.Unlock()
		return true, err
	}
	d.packs.freed = append(d.packs.freed, freed{seq: l.seq, off: l.off, n: l.n, whole: live == 1})
	flush := len(d.packs.freed) >= freeBatch
	d.packs.mu.Unlock()
	d.deletes.Add(1)
	d.deletedBytes.Add(uint64(l.n))
	if flush {
		return true, d.FlushDeletes(ctx)
	}
	return true, nil
}

// FlushDeletes frees the bytes of the packed blocks deleted so far: one
// synced commit of the index makes their deletions durable, then their
// ranges are punched out (disk.Puncher; they read as zeros) and a pack
// whose last block went is removed. A crash before leaves their bytes in
// place, unnamed (space, not correctness).
func (d *Dir) FlushDeletes(context.Context) error {
	if !d.Packs() {
		return nil
	}
	d.packs.flushMu.Lock()
	defer d.packs.flushMu.Unlock()
	d.packs.mu.Lock()
	todo := d.packs.freed
	d.packs.freed = nil
	d.packs.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	b := d.packs.idx.KV.NewBatch()
	b.Delete(d.packKey('s', nil))
	err := b.Commit(true)
	b.Close()
	if err != nil {
		d.packs.mu.Lock()
		d.packs.freed = append(todo, d.packs.freed...)
		d.packs.mu.Unlock()
		return fmt.Errorf("blocks: free packed blocks: %w", err)
	}
	p, punch := d.fs.(disk.Puncher)
	for _, f := range todo {
		name := d.packName(f.seq)
		if f.whole {
			if err := d.fs.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("blocks: free packed blocks: %w", err)
			}
			continue
		}
		if !punch {
			continue // its bytes stay until the pack goes
		}
		err := p.PunchHole(name, f.off, f.n)
		if err != nil && !errors.Is(err, errors.ErrUnsupported) && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("blocks: free packed blocks: %w", err)
		}
	}
	return nil
}

// walkPacked calls fn for every packed id, from the index.
func (d *Dir) walkPacked(fn func(ID) error) error {
	if !d.packs.any.Load() {
		return nil
	}
	lo := d.packKey('i', nil)
	it, err := d.packs.idx.KV.NewIter(lo, d.packKey('i'+1, nil))
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != len(lo)+IDSize {
			return fmt.Errorf("%w: pack index key of %d bytes", ErrCorrupt, len(k))
		}
		if err := fn(ID(k[len(lo):])); err != nil {
			return err
		}
	}
	return it.Error()
}
