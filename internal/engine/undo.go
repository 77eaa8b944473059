package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// Undo of a resync. A resync (resync.go) replaces a file system's state
// range by range and has no consistent state until it ends. If its source
// is lost meanwhile (a second failure during a failback), the file system
// must still be usable: AbandonResync puts back the state it held when
// BeginResync ran and makes it a primary again.
//
// While a resync runs, every replicated key that it changes (IngestRanges,
// then the records it applies until the replica is consistent) first has
// its value from before the resync (or its absence) saved under 'u' fsid
// <rel>, in the same transaction as the change, once: the first save
// wins. The cost is O(changes), like the resync. A block that a saved
// reference count names keeps its holder key, so that the collector
// leaves it while the undo may still need it. BeginResync writes the undo
// head ('l' fsid 'U': the mode and last seq before the resync) in its own
// transaction; the undo ends in the transaction that makes the replica
// consistent (dropUndo: holders of blocks that only the old state
// referenced are released) or in the one that abandons the resync. A
// crash at any point therefore leaves either the resync with its whole
// undo (resumable, or abandonable) or the state before it: never a mix.

// undoHead is what BeginResync records of the state it replaces.
type undoHead struct {
	// Consistent: the state before the resync was consistent (a primary,
	// a fenced file system or a replica at a consistent point) and can
	// be put back. A resync of an unfinished initial sync has nothing
	// to put back (PromoteEmpty then).
	Consistent bool `json:"consistent"`
	// Mode is the mode record before the resync.
	Mode modeRecord `json:"mode"`
	// LastSeq is the file system's last seq before the resync, and
	// Time, when known, the commit time of that seq (the recovery point
	// an abandon reports).
	LastSeq uint64 `json:"last"`
	Time    int64  `json:"time,omitempty"`
}

func (h *undoHead) encode() []byte {
	b, _ := json.Marshal(h)
	return b
}

func loadUndoHead(r kv.Reader, fsid uint64) (*undoHead, error) {
	v, err := r.Get(localKey(fsid, locUndo))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var h undoHead
	if err := json.Unmarshal(v, &h); err != nil {
		return nil, fmt.Errorf("%w: resync undo head: %v", ErrCorrupt, err)
	}
	return &h, nil
}

// Values under 'u': undoAbsent, or undoPresent followed by the value.
const (
	undoAbsent  byte = 0
	undoPresent byte = 1
)

// capturing reports whether changes of replicated keys must be saved in
// the undo (the committer's state).
func (fs *FS) capturing() bool { return fs.undo != nil && fs.undo.Consistent }

// beginUndo writes the undo head in tx (BeginResync) unless a resync
// already keeps one: a resync that begins again keeps the state from
// before the first, the only consistent one.
func (fs *FS) beginUndo(tx *txn, m modeRecord) error {
	if fs.undo != nil {
		return nil
	}
	h := &undoHead{Mode: m, LastSeq: fs.lastSeq}
	h.Consistent = fs.superPub.Load() != nil &&
		(m.Mode != ModeReplica || (!m.SyncActive && !m.Resync && m.AppliedSeq >= m.ConsistentSeq))
	switch {
	case m.Mode == ModeReplica:
		h.Time = m.AppliedTime
	case fs.lastSeq > 0:
		if v, err := tx.abs.Get(journalKey(fs.id, fs.lastSeq)); err == nil {
			if r, err := DecodeRecord(v); err == nil {
				h.Time = r.Time.UnixNano()
			}
		}
	}
	tx.abs.Set(localKey(fs.id, locUndo), h.encode())
	tx.onCommit = append(tx.onCommit, func() { fs.undo = h })
	return nil
}

// saveUndo saves the value of the replicated key rel before the resync,
// unless it was saved already, and reports whether it had one. Call it
// before tx changes rel.
func (fs *FS) saveUndo(tx *txn, rel []byte) (present bool, err error) {
	uk := undoKey(fs.id, rel)
	v, err := tx.abs.Get(uk)
	if err == nil {
		if len(v) == 0 || v[0] > undoPresent {
			return false, fs.corrupt(fmt.Errorf("%w: resync undo entry %x", ErrCorrupt, rel))
		}
		return v[0] == undoPresent, nil
	}
	if !errors.Is(err, kv.ErrNotFound) {
		return false, fmt.Errorf("engine: resync undo of %s: %w", fs.name, err)
	}
	cur, err := tx.abs.Get(absKey(fs.id, rel))
	switch {
	case err == nil:
		tx.abs.Set(uk, append([]byte{undoPresent}, cur...))
		return true, nil
	case errors.Is(err, kv.ErrNotFound):
		tx.abs.Set(uk, []byte{undoAbsent})
		return false, nil
	default:
		return false, fmt.Errorf("engine: resync undo of %s: %w", fs.name, err)
	}
}

// dropRef releases this file system's hold on block id after tx deleted its
// reference count, at seq: unless the undo keeps the count from before the
// resync (and with it the block).
func (fs *FS) dropRef(tx *txn, id blocks.ID, seq uint64) error {
	if fs.capturing() {
		kept, err := fs.saveUndo(tx, refKey(id))
		if err != nil || kept {
			return err
		}
	}
	tx.abs.Delete(holderKey(fs.dom.id, id, fs.id))
	tx.abs.Set(gcKey(fs.dom.id, id), fs.dom.releaseValue(fs.id, seq))
	return nil
}

// undoEntry is one saved key.
type undoEntry struct {
	rel     []byte
	present bool
	value   []byte
}

// undoEntries returns the saved keys with prefix rel (all: nil), as tx sees
// them.
func (fs *FS) undoEntries(tx *txn, rel []byte) ([]undoEntry, error) {
	p := undoKey(fs.id, rel)
	it, err := tx.abs.NewIter(p, upper(p))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	n := len(undoPrefix(fs.id))
	var out []undoEntry
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			return nil, fs.corrupt(err)
		}
		if len(v) == 0 || v[0] > undoPresent {
			return nil, fs.corrupt(fmt.Errorf("%w: resync undo entry %x", ErrCorrupt, it.Key()))
		}
		e := undoEntry{rel: append([]byte(nil), it.Key()[n:]...), present: v[0] == undoPresent}
		if e.present {
			e.value = append([]byte(nil), v[1:]...)
		}
		out = append(out, e)
	}
	return out, it.Error()
}

// refID returns the block id of a reference count key (ok false for other
// keys).
func refID(rel []byte) (blocks.ID, bool) {
	if len(rel) != 1+blocks.IDSize || rel[0] != relRef {
		return blocks.ID{}, false
	}
	id, err := blocks.IDFromBytes(rel[1:])
	return id, err == nil
}

// dropUndo ends the undo in tx once the resync has made the replica
// consistent: the blocks that only the state before it referenced are
// released at seq (the seq tx reaches: not before it is durable).
func (fs *FS) dropUndo(tx *txn, seq uint64) error {
	refs, err := fs.undoEntries(tx, []byte{relRef})
	if err != nil {
		return err
	}
	var gone []blocks.ID
	for _, e := range refs {
		id, ok := refID(e.rel)
		if !ok || !e.present {
			continue
		}
		if _, err := tx.abs.Get(absKey(fs.id, e.rel)); errors.Is(err, kv.ErrNotFound) {
			gone = append(gone, id)
		} else if err != nil {
			return err
		}
	}
	for _, id := range gone {
		tx.abs.Delete(holderKey(fs.dom.id, id, fs.id))
		tx.abs.Set(gcKey(fs.dom.id, id), fs.dom.releaseValue(fs.id, seq))
	}
	tx.abs.DeleteRange(undoPrefix(fs.id), upper(undoPrefix(fs.id)))
	tx.abs.Delete(localKey(fs.id, locUndo))
	tx.onCommit = append(tx.onCommit, func() { fs.undo = nil })
	return nil
}

// AbandonResync ends a resync whose source is lost (a failover of a file
// system being resynced): the file system gets back exactly the state it
// held when BeginResync ran — nothing that the resync's source sent is
// kept — and becomes a writable primary at an epoch above every epoch it
// heard of and above minEpoch (the source's, when known), so that the
// source fences itself if it comes back, as after a failover. Its journal
// starts after its last seq from before the resync. Everything happens in
// one durable commit: a crash leaves either the resync (with its undo) or
// the restored primary. The recovery point is the state before the resync
// (Abandoned set).
//
// ErrNoState: the state before the resync was not consistent (an initial
// sync that had not finished): PromoteEmpty. ErrNotReady: a resync begun
// by an engine without undo, which keeps its refusal. ErrInvalid: no
// resync to abandon.
func (rep *Replica) AbandonResync(ctx context.Context, minEpoch uint64) (RecoveryPoint, error) {
	fs := rep.fs
	var rp RecoveryPoint
	start := time.Now()
	var restored int
	err := fs.do(ctx, opAdmin, "abandon-resync", func(tx *txn) error {
		tx.noJournal = true
		m := fs.mode
		h := fs.undo
		if m.Mode != ModeReplica {
			return fmt.Errorf("engine: abandon the resync of %s: %w", fs.name, ErrNotReplica)
		}
		if h == nil {
			if m.Resync {
				return fmt.Errorf("engine: abandon the resync of %s: it keeps no undo: %w", fs.name, ErrNotReady)
			}
			return fmt.Errorf("engine: abandon the resync of %s: no resync in progress: %w", fs.name, ErrInvalid)
		}
		if !h.Consistent {
			return fmt.Errorf("engine: abandon the resync of %s: it had no consistent state before: %w", fs.name, ErrNoState)
		}
		// Everything that can fail comes before the first write and
		// the first change in memory (the mode, the durable mark),
		// which a failed transaction would leave behind.
		curTop, err := epochTop(tx)
		if err != nil {
			return err
		}
		entries, err := fs.undoEntries(tx, nil)
		if err != nil {
			return err
		}
		type refChange struct {
			id             blocks.ID
			before, during bool
		}
		var refs []refChange
		var epochs, super []byte
		for _, e := range entries {
			if id, ok := refID(e.rel); ok {
				_, err := tx.abs.Get(absKey(fs.id, e.rel))
				if err != nil && !errors.Is(err, kv.ErrNotFound) {
					return err
				}
				refs = append(refs, refChange{id: id, before: e.present, during: err == nil})
			}
			switch string(e.rel) {
			case string(metaKey(metaEpochs)):
				epochs = e.value
			case string(metaKey(metaSuper)):
				super = e.value
			}
		}
		if epochs == nil {
			// Unchanged by the resync.
			if epochs, err = tx.abs.Get(absKey(fs.id, metaKey(metaEpochs))); err != nil {
				return fs.corrupt(fmt.Errorf("engine: abandon the resync of %s: epoch history: %w", fs.name, err))
			}
		}
		hist, err := decodeEpochs(epochs)
		if err != nil || len(hist) == 0 {
			return fs.corrupt(fmt.Errorf("%w: epoch history before the resync of %s", ErrCorrupt, fs.name))
		}
		var sb *superblock
		if super != nil {
			if sb, err = decodeSuper(super); err != nil {
				return fs.corrupt(err)
			}
		}
		// The source's history, when the resync brought it: where the
		// two histories forked.
		var shared uint64
		if cur, err := tx.abs.Get(absKey(fs.id, metaKey(metaEpochs))); err == nil && !bytes.Equal(cur, epochs) {
			if src, err := decodeEpochs(cur); err == nil {
				shared = ForkPoint(hist, src, h.LastSeq, max(m.ConsistentSeq, m.AppliedSeq))
			}
		}
		old := h.Mode
		newEpoch := max(curTop, hist[len(hist)-1].Epoch, m.Epoch, m.AppliedEpoch, m.Learned,
			old.Epoch, old.AppliedEpoch, old.Learned, minEpoch, 1) + 1
		hist = append(hist, EpochStart{Epoch: newEpoch, StartSeq: h.LastSeq + 1})
		fs.takeRetryHold(tx)

		// Nothing reads past the durable mark: lowered before the
		// commit, so that the collector holds the blocks released here
		// (at LastSeq) until the commit is durable.
		fs.resetDurable()
		for _, e := range entries {
			if e.present {
				tx.abs.Set(absKey(fs.id, e.rel), e.value)
			} else {
				tx.abs.Delete(absKey(fs.id, e.rel))
			}
		}
		for _, r := range refs {
			switch {
			case r.before:
				tx.abs.Set(holderKey(fs.dom.id, r.id, fs.id), nil)
			case r.during:
				tx.abs.Delete(holderKey(fs.dom.id, r.id, fs.id))
				tx.abs.Set(gcKey(fs.dom.id, r.id), fs.dom.releaseValue(fs.id, h.LastSeq))
			}
		}
		tx.abs.Set(absKey(fs.id, metaKey(metaEpochs)), encodeEpochs(hist))
		tx.abs.DeleteRange(undoPrefix(fs.id), upper(undoPrefix(fs.id)))
		tx.abs.Delete(localKey(fs.id, locUndo))
		// The records applied during the resync are the source's: its
		// own journal starts after its last seq from before it.
		tx.abs.DeleteRange(journalPrefix(fs.id), upper(journalPrefix(fs.id)))
		tx.abs.Delete(localKey(fs.id, locResyncKeys))
		tx.abs.Set(localKey(fs.id, locJTrunc), encodeU64(h.LastSeq+1))
		fromEpoch := old.Epoch
		if old.Mode == ModeReplica {
			fromEpoch = old.AppliedEpoch
		}
		rp = RecoveryPoint{Seq: h.LastSeq, OldEpoch: fromEpoch, NewEpoch: newEpoch, Abandoned: true, Shared: shared}
		if h.Time != 0 {
			rp.Time = time.Unix(0, h.Time).UTC()
		}
		nm := modeRecord{
			Mode: ModePrimary, Epoch: newEpoch, Learned: newEpoch,
			AppliedEpoch: fromEpoch, AppliedSeq: h.LastSeq, AppliedTime: h.Time,
			RecoverySeq: h.LastSeq, RecoveryTime: h.Time,
			Abandoned: true, Shared: shared,
		}
		fs.setModeLocked(nm)
		tx.abs.Set(localKey(fs.id, locMode), nm.encode())
		fs.meta.invalidate()
		tx.advance, tx.resetSeq = h.LastSeq, true
		restored = len(entries)
		tx.onCommit = append(tx.onCommit, func() {
			fs.undo = nil
			if sb != nil {
				fs.superPub.Store(sb)
			}
			fs.resetDurable()
		}, fs.maint.scanMerges)
		return nil
	})
	if err == nil {
		fs.log.Warn("resync abandoned: the file system is back at its state from before the resync, writable",
			"seq", rp.Seq, "epoch", rp.NewEpoch, "keys_restored", restored, "took", time.Since(start))
	}
	return rp, err
}

// epochTop returns the newest epoch of the epoch history tx sees (0 when
// there is none).
func epochTop(tx *txn) (uint64, error) {
	v, err := tx.abs.Get(absKey(tx.fs.id, metaKey(metaEpochs)))
	if errors.Is(err, kv.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	hist, err := decodeEpochs(v)
	if err != nil || len(hist) == 0 {
		return 0, nil // the source's, half ingested: the head's epochs count
	}
	return hist[len(hist)-1].Epoch, nil
}

// ForkPoint returns the last seq that two file systems of one lineage
// share: the histories agree on every epoch up to there. local and remote
// are their epoch histories, localLast and remoteLast their newest seqs.
func ForkPoint(local, remote []EpochStart, localLast, remoteLast uint64) uint64 {
	fork := min(localLast, remoteLast)
	for i := 0; i < len(local) || i < len(remote); i++ {
		switch {
		case i >= len(local):
			return min(fork, remote[i].StartSeq-1)
		case i >= len(remote):
			return min(fork, local[i].StartSeq-1)
		case local[i] != remote[i]:
			return min(fork, min(local[i].StartSeq, remote[i].StartSeq)-1)
		}
	}
	return fork
}
