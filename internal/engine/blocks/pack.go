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

	"github.com/regionfs/regionfs/internal/engine/disk"
)

// PackPutter is a Store that can store a batch of blocks as one pack
// file (Dir): one file created, written and synced, and one directory
// sync, for the whole batch, instead of a file, a sync and a rename per
// block. When PutPack returns, every block of the batch is durable under
// its id: no Sync is needed for them.
type PackPutter interface {
	PutPack(ctx context.Context, ids []ID, data [][]byte) error
}

var _ PackPutter = (*Dir)(nil)

// Pack file format (dir/packs/<16 hex digits: its sequence number>.pack):
// the stored form of each block (the block file format: header, then
// payload) one after the other, then a trailer: n × (id ‖ offset u64 ‖
// length u32) ‖ n u32 ‖ CRC-32C of the entries and n u32 ‖ "RFPK"
// (integers big-endian). The file is written whole, synced, then its
// directory synced, before any of its blocks is found by Has or Get.
//
// At open, a pack whose trailer does not check was never synced whole
// (the process stopped inside its PutPack, which therefore did not
// return: nothing names its blocks) and is removed. The others are synced
// again (a process killed between write and sync left them in the page
// cache only) and indexed in memory. A deleted block's range is punched
// out (disk.Puncher), so its header reads as zeros and it is not indexed
// again; a pack goes when its last block does. A block found in two packs
// (two batches that raced to store it) is indexed once, from the older
// pack; the newer copy is dead weight until its pack goes.
const (
	packDir      = "packs"
	packSuffix   = ".pack"
	packEntry    = IDSize + 8 + 4
	packTailSize = 4 + 4 + 4
	// maxStoredOverhead bounds what the stored form of a block adds to
	// its plaintext (a header; a nonce and a tag when sealed).
	maxStoredOverhead = 64
	// maxPackBuf: pack buffers up to this size are kept for later packs.
	maxPackBuf = 32 << 20
)

var packMagic = []byte("RFPK")

// packLoc is where a packed block's stored form lies.
type packLoc struct {
	seq uint64
	off int64
	n   int64
}

// packs is the in-memory index of a Dir's pack files.
type packs struct {
	mu   sync.RWMutex
	idx  map[ID]packLoc
	live map[uint64]int // indexed blocks per pack
	next uint64         // sequence number of the next pack

	bufs sync.Pool // *[]byte: buffers packs are assembled in
}

func (d *Dir) packName(seq uint64) string {
	return path.Join(d.dir, packDir, fmt.Sprintf("%016x%s", seq, packSuffix))
}

// openPacks makes the packs directory (durably) and indexes its packs.
func (d *Dir) openPacks() error {
	d.packs.idx, d.packs.live, d.packs.next = map[ID]packLoc{}, map[uint64]int{}, 1
	pd := path.Join(d.dir, packDir)
	if _, err := d.fs.Stat(pd); errors.Is(err, fs.ErrNotExist) {
		if err := d.fs.MkdirAll(pd); err != nil {
			return err
		}
		return d.fs.SyncDir(d.dir)
	} else if err != nil {
		return err
	}
	ents, err := d.fs.ReadDir(pd) // sorted: older packs first
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, packSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, packSuffix), 16, 64)
		if err != nil {
			continue
		}
		d.packs.next = max(d.packs.next, seq+1)
		if err := d.loadPack(seq); err != nil {
			return fmt.Errorf("pack %s: %w", name, err)
		}
	}
	// Removals of torn or empty packs need not be durable; the names of
	// the packs indexed must be (see loadPack).
	return d.fs.SyncDir(pd)
}

// loadPack indexes the live blocks of one pack, or removes a pack whose
// trailer does not check or that holds no live block.
func (d *Dir) loadPack(seq uint64) error {
	name := d.packName(seq)
	f, err := d.fs.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	entries, err := readTrailer(f)
	if errors.Is(err, errTornPack) {
		return d.fs.Remove(name)
	}
	if err != nil {
		return err
	}
	// A pack the process wrote before it was killed may be in the page
	// cache only: sync it before anything relies on its blocks.
	if err := f.Sync(); err != nil {
		return err
	}
	var hdr [3]byte
	for _, e := range entries {
		if _, err := f.ReadAt(hdr[:], e.off); err != nil {
			return err
		}
		if string(hdr[:]) != string(magic) {
			continue // punched out: deleted
		}
		if _, ok := d.packs.idx[e.id]; ok {
			continue // an older pack has it
		}
		d.packs.idx[e.id] = packLoc{seq: seq, off: e.off, n: e.n}
		d.packs.live[seq]++
	}
	if d.packs.live[seq] == 0 {
		return d.fs.Remove(name)
	}
	return nil
}

// errTornPack: a pack's trailer is missing or does not check.
var errTornPack = errors.New("blocks: torn pack")

type packEnt struct {
	id  ID
	off int64
	n   int64
}

// readTrailer reads and checks a pack's trailer.
func readTrailer(f disk.File) ([]packEnt, error) {
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size < packTailSize {
		return nil, errTornPack
	}
	var tail [packTailSize]byte
	if _, err := f.ReadAt(tail[:], size-packTailSize); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if string(tail[8:]) != string(packMagic) {
		return nil, errTornPack
	}
	n := int64(binary.BigEndian.Uint32(tail[0:4]))
	tlen := n * packEntry
	if tlen+packTailSize > size {
		return nil, errTornPack
	}
	buf := make([]byte, tlen)
	if _, err := f.ReadAt(buf, size-packTailSize-tlen); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if crc32.Update(crc32.Update(0, castagnoli, buf), castagnoli, tail[0:4]) != binary.BigEndian.Uint32(tail[4:8]) {
		return nil, errTornPack
	}
	end := size - packTailSize - tlen
	out := make([]packEnt, 0, n)
	for i := range n {
		e := buf[i*packEntry:]
		var pe packEnt
		copy(pe.id[:], e[:IDSize])
		pe.off = int64(binary.BigEndian.Uint64(e[IDSize:]))
		pe.n = int64(binary.BigEndian.Uint32(e[IDSize+8:]))
		if pe.off < 0 || pe.n < headerSize || pe.off > end-pe.n {
			return nil, errTornPack
		}
		out = append(out, pe)
	}
	return out, nil
}

// PutPack stores the blocks of ids (data[i] is ids[i]'s; the caller
// computed each id with the store's Hasher) as one pack file, skipping
// those already stored (see PackPutter). Blocks found stored as files
// are marked for the next Sync as Has does.
func (d *Dir) PutPack(ctx context.Context, ids []ID, data [][]byte) error {
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

	d.packs.mu.Lock()
	seq := d.packs.next
	d.packs.next++
	d.packs.mu.Unlock()
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
	if werr != nil {
		_ = d.fs.Remove(name)
		return fmt.Errorf("blocks: pack: %w", werr)
	}
	// Only now, durable, are its blocks found.
	d.packs.mu.Lock()
	for _, e := range ents {
		if _, ok := d.packs.idx[e.id]; ok {
			continue // a batch beside this one stored it too
		}
		d.packs.idx[e.id] = packLoc{seq: seq, off: e.off, n: e.n}
		d.packs.live[seq]++
	}
	dead := d.packs.live[seq] == 0
	d.packs.mu.Unlock()
	if dead {
		_ = d.fs.Remove(name) // every block of it raced in elsewhere
	}
	d.puts.Add(uint64(len(ents)))
	d.putBytes.Add(plain)
	return nil
}

// packed returns where id lies in a pack, if it does.
func (d *Dir) packed(id ID) (packLoc, bool) {
	d.packs.mu.RLock()
	l, ok := d.packs.idx[id]
	d.packs.mu.RUnlock()
	return l, ok
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
// out of the index first, so no reader is sent to its range, then its
// range punched out, or its pack removed if it was the pack's last.
func (d *Dir) deletePacked(id ID) (bool, error) {
	d.packs.mu.Lock()
	l, ok := d.packs.idx[id]
	if !ok {
		d.packs.mu.Unlock()
		return false, nil
	}
	delete(d.packs.idx, id)
	d.packs.live[l.seq]--
	last := d.packs.live[l.seq] == 0
	if last {
		delete(d.packs.live, l.seq)
	}
	d.packs.mu.Unlock()
	d.deletes.Add(1)
	d.deletedBytes.Add(uint64(l.n))
	name := d.packName(l.seq)
	if last {
		if err := d.fs.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return true, err
		}
		return true, nil
	}
	p, ok := d.fs.(disk.Puncher)
	if !ok {
		return true, nil // its bytes stay until the pack goes
	}
	if err := p.PunchHole(name, l.off, l.n); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return true, err
	}
	return true, nil
}

// packedIDs returns the ids of packed blocks.
func (d *Dir) packedIDs() []ID {
	d.packs.mu.RLock()
	defer d.packs.mu.RUnlock()
	ids := make([]ID, 0, len(d.packs.idx))
	for id := range d.packs.idx {
		ids = append(ids, id)
	}
	return ids
}
