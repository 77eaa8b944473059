package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// Initial sync of a replica from chunks of source snapshots.
//
// A source streams its replicated keys in key order, chunk by chunk, each
// chunk read from a snapshot at some seq. After a restart of either side it
// resumes at the replica's cursor with a fresh snapshot, so chunks may come
// from several snapshots Base ≤ … ≤ Top. Journal records are after-images of
// whole keys, so once every range is ingested, replaying the source's
// records from Base+1 in order converges on the source's state; the replica
// is consistent (readable, promotable) from Top on. Until then client reads
// get ErrNotReady.

// SyncChunk is one piece of an initial sync: every replicated key of the
// source in [Lo, Hi) at journal seq Seq.
type SyncChunk struct {
	Seq   uint64
	Epoch uint64
	Time  time.Time // source commit time of Seq
	Lo    []byte    // relative key; must equal the replica's cursor
	Hi    []byte    // relative key; nil = to the end (the last chunk)
	Pairs []Mutation
}

// SyncState says where a replica's initial sync stands.
type SyncState struct {
	Active bool   // chunks are being ingested
	Resync bool   // an existing state is being resynced (resync.go)
	Base   uint64 // records from Base+1 must be applied after the last chunk
	Top    uint64 // the replica is consistent once it has applied Top
	Cursor []byte // the next chunk starts here
}

// SyncState returns the replica's initial-sync state.
func (rep *Replica) SyncState() SyncState {
	fs := rep.fs
	m := fs.modePub.Load()
	return SyncState{Active: m.SyncActive, Resync: m.Resync, Base: m.SyncBase, Top: m.ConsistentSeq, Cursor: bytes.Clone(m.SyncCursor)}
}

// Consistent reports whether clients may read the file system: always for
// a primary or fenced file system; for a replica only from its first
// consistent point on.
func (rep *Replica) Consistent() bool { return rep.fs.readable() == nil }

func (fs *FS) readable() error {
	d := fs.durable.Load()
	m := fs.modePub.Load()
	if fs.superPub.Load() == nil || (m.Mode == ModeReplica && (m.SyncActive || d < m.ConsistentSeq)) {
		return fmt.Errorf("engine: %s: %w", fs.name, ErrNotReady)
	}
	return nil
}

// Ingest stores one chunk of an initial sync on a fresh replica. Chunks come
// in key order; a chunk that ends at or before the cursor was ingested
// before and is skipped (retries are harmless). The chunk's keys replace
// every key the replica holds in [Lo, Hi). A chunk whose reference counts
// name blocks the replica lacks is refused, unchanged, with a
// *MissingBlocksError (the sender pushes them and retries). The last chunk
// (Hi nil) ends the sync: the replica then accepts records from Base+1.
func (rep *Replica) Ingest(ctx context.Context, c SyncChunk) (SyncState, error) {
	return rep.IngestAll(ctx, []SyncChunk{c})
}

// IngestAll ingests consecutive chunks as Ingest would one after the
// other, but in one transaction, so with one durable commit (the receiver
// of an initial sync hands it the chunks that arrived together; a sync of
// many small files otherwise paid a commit per chunk). The chunks are
// taken in order up to the first that is refused: those before it are
// ingested and committed, and its error is returned (with a
// *MissingBlocksError, as Ingest, the chunks after it wait for the retry;
// the source sends them again from the cursor).
func (rep *Replica) IngestAll(ctx context.Context, cs []SyncChunk) (SyncState, error) {
	fs := rep.fs
	var size int64
	for _, c := range cs {
		if err := checkChunk(c); err != nil {
			return rep.SyncState(), err
		}
		size += mutationsBytes(c.Pairs)
	}
	if err := fs.e.admit(size); err != nil {
		return rep.SyncState(), err
	}
	var (
		missing []blocks.ID
		refused error // of a chunk after the first, which ends the transaction
	)
	ing, _ := fs.e.kv.(kv.Ingester)
	if !kv.CanIngest(fs.e.kv) {
		ing = nil
	}
	err := fs.do(ctx, opApply, "ingest", func(tx *txn) error {
		// The pairs of chunks that go into a table of their own (see
		// ingest), ingested before the mode that records them commits:
		// each chunk's pairs as they came, in key order (not copied into
		// one slice: a batch of a sync of small files holds ~10^4 pairs,
		// and growing one slice copied them about twice over).
		var bulk *[][]Mutation
		if ing != nil {
			bulk = new([][]Mutation)
		}
		tx.noJournal = true
		fs.takeRetryHold(tx)
		// The chunks advance a copy of the mode, published (putMode) only
		// when the transaction goes ahead: a chunk that fails after
		// writing drops the transaction, and a mode published by the
		// chunks before it would claim a cursor the store does not hold.
		m, changed := fs.mode, false
		for i, c := range cs {
			// A chunk refused before it wrote anything leaves the ones
			// before it to commit.
			ch, wrote, err := fs.ingest(tx, &m, c, &missing, bulk)
			if err != nil {
				if i == 0 || wrote {
					return err
				}
				refused = err
				break
			}
			changed = changed || ch
			if len(missing) > 0 {
				break
			}
		}
		if bulk != nil && len(*bulk) > 0 {
			ingest := ing.Ingest
			if fs.e.sealingKey(absKey(fs.id, nil)) != nil {
				// Sealed values: random bytes to a compressor.
				ingest = func(pairs iter.Seq2[[]byte, []byte]) error { return kv.IngestIncompressible(ing, pairs) }
			}
			if err := ingest(absPairs(fs.id, *bulk)); err != nil {
				return fmt.Errorf("engine: ingest into %s: %w: %w", fs.name, ErrIO, err)
			}
		}
		if changed {
			tx.putMode(m)
		}
		return nil
	})
	if err == nil {
		err = refused
	}
	if err == nil && len(missing) > 0 {
		err = &MissingBlocksError{IDs: missing}
	}
	return rep.SyncState(), err
}

// ingest ingests one chunk in tx (IngestAll) over the mode *mode, which
// it advances when it took the chunk (changed); it sets *missing to the
// blocks that the chunk's reference counts name and the store lacks, and
// says whether it wrote to tx before an error.
//
// With bulk (the store ingests tables, kv.Ingester), a chunk whose range
// the replica holds nothing of and whose pairs need nothing besides
// themselves written (no reference count, whose holder goes with it, and
// no superblock) is appended to *bulk instead of written into tx: the
// caller ingests those pairs as one table before tx commits. A crash in
// between leaves them in the store past the durable cursor; the source
// resends from the cursor and the retry replaces the range (replaceRange
// deletes what the chunk does not hold), as after any chunk taken in
// part.
func (fs *FS) ingest(tx *txn, mode *modeRecord, c SyncChunk, missing *[]blocks.ID, bulk *[][]Mutation) (changed, wrote bool, err error) {
	m := *mode
	if m.Resync {
		return false, false, fmt.Errorf("engine: ingest into %s: a resync is in progress (IngestRanges): %w", fs.name, ErrInvalid)
	}
	if !m.SyncActive {
		if m.ConsistentSeq != 0 {
			return false, false, nil // the sync is over: a retried last chunk
		}
		if m.AppliedSeq != 0 || fs.lastSeq != 0 {
			return false, false, fmt.Errorf("engine: ingest into %s: replica already holds state at %d: %w", fs.name, m.AppliedSeq, ErrInvalid)
		}
		m.SyncActive, m.SyncBase, m.ConsistentSeq, m.SyncCursor = true, c.Seq, c.Seq, nil
		m.AppliedEpoch, m.AppliedTime = c.Epoch, c.Time.UnixNano()
	}
	if c.Hi != nil && m.SyncCursor != nil && bytes.Compare(c.Hi, m.SyncCursor) <= 0 {
		return false, false, nil // ingested before
	}
	// A chunk may overlap what was ingested (a retry of a chunk that
	// was taken in part): only [cursor, Hi) is applied.
	if bytes.Compare(c.Lo, m.SyncCursor) > 0 {
		return false, false, fmt.Errorf("engine: ingest into %s at %x, cursor %x: %w", fs.name, c.Lo, m.SyncCursor, ErrGap)
	}
	lo, hi := m.SyncCursor, c.Hi
	pairs := c.Pairs
	for len(pairs) > 0 && bytes.Compare(pairs[0].Key, lo) < 0 {
		pairs = pairs[1:]
	}
	if c.Seq < m.SyncBase {
		return false, false, fmt.Errorf("engine: ingest chunk at seq %d below base %d: %w", c.Seq, m.SyncBase, ErrGap)
	}
	if c.Epoch < m.AppliedEpoch {
		return false, false, fmt.Errorf("engine: ingest chunk of epoch %d after epoch %d: %w", c.Epoch, m.AppliedEpoch, ErrEpoch)
	}
	// Blocks first: nothing that needs a missing block is written.
	var present []blocks.ID
	if *missing, present, err = fs.refBlocksMissing(tx, pairs); err != nil {
		return false, false, err
	}
	if len(*missing) > 0 {
		tx.keep = present // the reference counts wait for the retry
		// Blocks can be pushed only once the superblock (the id key)
		// is known: take the part of the chunk before the reference
		// counts now when it holds the superblock.
		cut := []byte{relRef}
		if fs.dom.blockHasher() != nil || bytes.Compare(lo, cut) >= 0 {
			return false, false, nil
		}
		n := 0
		for n < len(pairs) && bytes.Compare(pairs[n].Key, cut) < 0 {
			n++
		}
		pairs, hi = pairs[:n], cut
	}
	taken := false
	if bulk != nil && ownPairs(pairs) {
		empty, err := rangeEmpty(tx, lo, hi)
		if err != nil {
			return false, false, err
		}
		if empty {
			if len(pairs) > 0 {
				*bulk = append(*bulk, pairs)
			}
			taken = true
		}
	}
	if !taken {
		if err := fs.replaceRange(tx, lo, hi, pairs); err != nil {
			return false, true, err
		}
	}
	m.ConsistentSeq = max(m.ConsistentSeq, c.Seq)
	m.SyncCursor = bytes.Clone(hi)
	if hi == nil {
		// Last chunk: replay from Base+1 on.
		m.SyncActive, m.SyncCursor = false, nil
		m.AppliedSeq = m.SyncBase
		tx.abs.Set(localKey(fs.id, locJTrunc), encodeU64(m.SyncBase+1))
		tx.advance = m.SyncBase
	}
	*mode = m
	return true, true, nil
}

// refBlocksMissing returns, of the blocks that the reference counts among
// pairs name, those the store lacks and those it has (needBlocks).
func (fs *FS) refBlocksMissing(tx *txn, pairs []Mutation) (missing, present []blocks.ID, err error) {
	var ids []blocks.ID
	for _, p := range pairs {
		if p.Delete || len(p.Key) != 1+blocks.IDSize || p.Key[0] != relRef {
			continue
		}
		id, err := blocks.IDFromBytes(p.Key[1:])
		if err != nil {
			return nil, nil, fmt.Errorf("engine: ingest: %w: %w", ErrCorrupt, err)
		}
		ids = append(ids, id)
	}
	return fs.needBlocks(tx, ids)
}

// ownPairs reports whether writing pairs needs nothing else written
// (replaceRange: a reference count's holder, the superblock's adoption).
func ownPairs(pairs []Mutation) bool {
	super := metaKey(metaSuper)
	for _, p := range pairs {
		if (len(p.Key) > 0 && p.Key[0] == relRef) || bytes.Equal(p.Key, super) {
			return false
		}
	}
	return true
}

// rangeEmpty reports whether tx sees no key of the file system in [lo, hi).
func rangeEmpty(tx *txn, lo, hi []byte) (bool, error) {
	it, err := tx.iter(lo, hi)
	if err != nil {
		return false, err
	}
	found := it.First()
	err = it.Error()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	return !found, err
}

// absPairs yields the pairs of each run in turn under the file system's
// absolute keys, built in one buffer (an Ingester copies what it takes).
func absPairs(fsid uint64, runs [][]Mutation) iter.Seq2[[]byte, []byte] {
	return func(yield func(k, v []byte) bool) {
		k := absKey(fsid, nil)
		n := len(k)
		for _, pairs := range runs {
			for _, p := range pairs {
				k = append(k[:n], p.Key...)
				if !yield(k, p.Value) {
					return
				}
			}
		}
	}
}

// replaceRange makes [lo, hi) hold exactly pairs (sorted, inside the
// range), keeping holders and the release queue in step with the
// reference counts it sets and drops.
func (fs *FS) replaceRange(tx *txn, lo, hi []byte, pairs []Mutation) error {
	it, err := tx.iter(lo, hi)
	if err != nil {
		return err
	}
	var stale [][]byte
	i := 0
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		for i < len(pairs) && bytes.Compare(pairs[i].Key, k) < 0 {
			i++
		}
		if i < len(pairs) && bytes.Equal(pairs[i].Key, k) {
			continue
		}
		stale = append(stale, bytes.Clone(k))
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	it.Close()
	// Into tx.abs with the holders (dropped with tx if it fails, read
	// back through tx.ov). During a resync the values replaced are saved
	// first (undo.go), and a reference count from before it keeps its
	// block.
	capture := fs.capturing()
	for _, k := range stale {
		if capture {
			if _, err := fs.saveUndo(tx, k); err != nil {
				return err
			}
		}
		tx.abs.Delete(absKey(fs.id, k))
		if id, ok := refID(k); ok {
			if err := fs.dropRef(tx, id, 0); err != nil {
				return err
			}
		}
	}
	for _, p := range pairs {
		if capture {
			if _, err := fs.saveUndo(tx, p.Key); err != nil {
				return err
			}
		}
		tx.abs.Set(absKey(fs.id, p.Key), p.Value)
		switch {
		case len(p.Key) == 1+blocks.IDSize && p.Key[0] == relRef:
			id, _ := blocks.IDFromBytes(p.Key[1:])
			tx.abs.Set(holderKey(fs.dom.id, id, fs.id), nil)
		case bytes.Equal(p.Key, metaKey(metaSuper)):
			if err := fs.adoptSuper(tx, p.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkChunk validates a chunk before it reaches the committer.
func checkChunk(c SyncChunk) error {
	if c.Seq == 0 || c.Epoch == 0 {
		return fmt.Errorf("engine: ingest: chunk without seq or epoch: %w", ErrInvalid)
	}
	if c.Hi != nil && bytes.Compare(c.Lo, c.Hi) >= 0 {
		return fmt.Errorf("engine: ingest: empty range: %w", ErrInvalid)
	}
	var prev []byte
	for i, p := range c.Pairs {
		if p.Delete {
			return fmt.Errorf("engine: ingest: deletion in a snapshot chunk: %w", ErrInvalid)
		}
		if len(p.Key) == 0 || !validRelTag(p.Key[0]) {
			return fmt.Errorf("engine: ingest: key %x is not a replicated key: %w", p.Key, ErrInvalid)
		}
		if bytes.Compare(p.Key, c.Lo) < 0 || (c.Hi != nil && bytes.Compare(p.Key, c.Hi) >= 0) {
			return fmt.Errorf("engine: ingest: key %x outside [%x, %x): %w", p.Key, c.Lo, c.Hi, ErrInvalid)
		}
		if i > 0 && bytes.Compare(prev, p.Key) >= 0 {
			return fmt.Errorf("engine: ingest: keys out of order at %x: %w", p.Key, ErrInvalid)
		}
		prev = p.Key
	}
	return nil
}

func validRelTag(t byte) bool {
	switch t {
	case relMeta, relInode, relRef, relZombie, relMerge:
		return true
	}
	return false
}

// mutationsBytes estimates what writing mutations takes.
func mutationsBytes(ms []Mutation) int64 {
	n := int64(metaBytes)
	for _, m := range ms {
		n += int64(len(m.Key) + len(m.Value))
	}
	return n
}

// SyncWeight is what one replicated key of a snapshot (Snapshot.Iter)
// counts for in a sync's progress: a file (its attributes) or bytes of
// inline data. Replication reports progress without knowing the key
// layout.
func SyncWeight(k, v []byte) (files, inlineBytes uint64) {
	if len(k) != 10 || k[0] != relInode {
		return 0, 0
	}
	switch k[9] {
	case inoAttr:
		return 1, 0
	case inoInline:
		return 0, uint64(len(v))
	}
	return 0, 0
}

// Splits returns keys that cut the snapshot's replicated keys from lo on
// into ranges of about perRange inodes each (relative keys, increasing,
// each after lo; none when lo is past the inodes or they fit in one
// range), so that a sender can read the ranges at once and still send
// them in key order. Inode numbers are handed out in order, so equal
// ranges of inode numbers hold about equal numbers of files; the keys
// after the inodes (file-system state, reference counts) are the last
// range, so that the chunk with the superblock (which a replica cannot
// take as a table, see ingest) holds no inodes. A cut is only a place
// where one chunk ends and the next begins: any cut is correct, an even
// one is faster.
func (s *Snapshot) Splits(lo []byte, perRange uint64) ([][]byte, error) {
	if perRange == 0 {
		return nil, fmt.Errorf("engine: splits of %s: zero inodes per range: %w", s.fs.name, ErrInvalid)
	}
	v, err := s.fs.reader(s.snap).Get(metaKey(metaNext))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil // nothing replicated yet
	}
	if err != nil {
		return nil, err
	}
	next, err := decodeU64(v)
	if err != nil {
		return nil, s.fs.corrupt(fmt.Errorf("engine: splits of %s: next inode: %w", s.fs.name, err))
	}
	first := uint64(0)
	switch {
	case len(lo) == 0 || lo[0] < relInode:
	case lo[0] > relInode:
		return nil, nil // past the inodes
	case len(lo) >= 9:
		first = binary.BigEndian.Uint64(lo[1:9])
	}
	var cuts [][]byte
	for _, ino := range inodeCuts(first, next, perRange, maxSplits) {
		if k := inodePrefix(ino); bytes.Compare(k, lo) > 0 {
			cuts = append(cuts, k)
		}
	}
	if k := []byte{relInode + 1}; bytes.Compare(k, lo) > 0 {
		cuts = append(cuts, k)
	}
	return cuts, nil
}

// maxSplits bounds the ranges of Splits: a file system that created and
// removed many files has a next inode number far above its live inodes,
// and ranges of perRange numbers would be mostly empty chunks.
const maxSplits = 1024

// inodeCuts returns the inode numbers in (first, next) every perRange
// numbers, at most maxCuts of them (wider ranges then).
func inodeCuts(first, next, perRange uint64, maxCuts int) []uint64 {
	if next <= first {
		return nil
	}
	if n := (next - first) / perRange; n > uint64(maxCuts) {
		perRange = (next-first)/uint64(maxCuts) + 1
	}
	var cuts []uint64
	for ino := first + perRange; ino < next && ino > first; ino += perRange {
		cuts = append(cuts, ino)
	}
	return cuts
}

// RestartSync starts over an initial sync that has not reached the
// superblock (BeginResync is refused with ErrNoState there: no block can be
// verified before it): the keys ingested so far are removed and the
// replica is as new, so that the source starts a fresh initial sync. Its
// source calls for this when it can no longer replay the records the
// interrupted sync needs (they, or the blocks they reference, are gone).
func (rep *Replica) RestartSync(ctx context.Context) error {
	fs := rep.fs
	return fs.do(ctx, opAdmin, "restart-sync", func(tx *txn) error {
		tx.noJournal = true
		m := fs.mode
		if m.Mode != ModeReplica || !m.SyncActive || m.Resync || fs.superPub.Load() != nil {
			return fmt.Errorf("engine: restart the initial sync of %s: not an initial sync short of its superblock: %w", fs.name, ErrInvalid)
		}
		if err := fs.replaceRange(tx, nil, nil, nil); err != nil {
			return err
		}
		nm := modeRecord{Mode: ModeReplica, Epoch: m.Epoch, Learned: m.Learned}
		tx.abs.DeleteRange(journalPrefix(fs.id), upper(journalPrefix(fs.id)))
		tx.abs.Delete(localKey(fs.id, locJTrunc))
		tx.abs.Set(localKey(fs.id, locMode), nm.encode())
		fs.setModeLocked(nm)
		fs.meta.invalidate()
		fs.lastSeq = 0
		tx.onCommit = append(tx.onCommit, func() { fs.resetDurable() })
		return nil
	})
}
