package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/zeebo/blake3"
)

// Resync makes an existing file system an exact copy of a source of the
// same lineage (failback into the original, or replication into an
// existing file system) while sending only what differs: the source
// replaces the ranges (or single keys) that differ with its own, then the
// replica replays the source's journal from the resync's base seq. Until
// FinishResync the file system is a replica without a consistent state:
// client reads get ErrNotReady.
//
// Two ways to find what differs: the keys both journals touched since the
// two histories forked (exact, O(changes); ResyncKeys holds this side's),
// and range checksums (RangeChecksum), which need no journal.

// SyncRange is one range a resync replaces: every key of the source in
// [Lo, Hi) at the chunk's seq (Hi nil: to the end).
type SyncRange struct {
	Lo, Hi []byte
	Pairs  []Mutation
}

// MaxResyncKeys bounds the key set BeginResync keeps (past it, a resync
// falls back to range checksums).
const MaxResyncKeys = 1 << 20

// BeginResync turns the file system into a replica being resynced. keys are
// the replicated keys its own journal touched after the fork point (see
// KeysTouched); they are kept for the source to send back (nil when
// unknown). Its journal, pins and applied point are discarded: take the
// loss report and any clone of the divergent state first. Its state stays
// recoverable until the resync ends: every key the resync changes is first
// saved in an undo (undo.go), and AbandonResync puts it all back.
func (rep *Replica) BeginResync(ctx context.Context, keys [][]byte) error {
	fs := rep.fs
	if len(keys) > MaxResyncKeys {
		keys = nil
	}
	enc := encodeKeyList(keys)
	err := fs.do(ctx, opAdmin, "begin-resync", func(tx *txn) error {
		tx.noJournal = true
		if fs.superPub.Load() == nil {
			return fmt.Errorf("engine: resync %s: no state to resync (use Ingest, or RestartSync): %w", fs.name, ErrNoState)
		}
		m := fs.mode
		// What the resync replaces can be put back (AbandonResync).
		if err := fs.beginUndo(tx, m); err != nil {
			return err
		}
		nm := modeRecord{Mode: ModeReplica, Epoch: m.Epoch, Learned: m.Learned, SyncActive: true, Resync: true}
		tx.abs.DeleteRange(journalPrefix(fs.id), upper(journalPrefix(fs.id)))
		tx.abs.Delete(localKey(fs.id, locJTrunc))
		pins := localKey(fs.id, locPin)
		tx.abs.DeleteRange(pins, upper(pins))
		if keys != nil {
			tx.abs.Set(localKey(fs.id, locResyncKeys), enc)
		} else {
			tx.abs.Delete(localKey(fs.id, locResyncKeys))
		}
		tx.abs.Set(localKey(fs.id, locMode), nm.encode())
		fs.setModeLocked(nm)
		fs.meta.invalidate()
		fs.pinMu.Lock()
		fs.pins = map[string]uint64{}
		fs.pinMu.Unlock()
		// The file system starts over at the source's seqs (the group's
		// seq too: the committer sets lastSeq from it after the commit).
		tx.advance, tx.resetSeq = 0, true
		tx.onCommit = append(tx.onCommit, func() { fs.resetDurable() })
		return nil
	})
	return err
}

// resetDurable lowers the durable mark after a resync discarded the
// journal (the only time it moves backwards).
func (fs *FS) resetDurable() {
	fs.durable.Store(0)
	fs.durMu.Lock()
	close(fs.durCh)
	fs.durCh = make(chan struct{})
	fs.durMu.Unlock()
}

// ResyncKeys returns the key set kept by BeginResync (nil when none).
func (rep *Replica) ResyncKeys() ([][]byte, error) {
	fs := rep.fs
	v, err := fs.e.kv.Get(localKey(fs.id, locResyncKeys))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeKeyList(v)
}

// IngestRanges replaces ranges during a resync, in any order, with the
// source's keys there at seq. Ranges must not overlap. Nothing is written
// when a referenced block is missing (*MissingBlocksError).
func (rep *Replica) IngestRanges(ctx context.Context, seq, epoch uint64, t time.Time, ranges []SyncRange) error {
	fs := rep.fs
	for _, r := range ranges {
		if err := checkChunk(SyncChunk{Seq: seq, Epoch: epoch, Lo: r.Lo, Hi: r.Hi, Pairs: r.Pairs}); err != nil {
			return err
		}
	}
	var need int64
	for _, r := range ranges {
		need += mutationsBytes(r.Pairs)
	}
	if err := fs.e.admit(need); err != nil {
		return err
	}
	var missing []blocks.ID
	err := fs.do(ctx, opApply, "resync", func(tx *txn) error {
		tx.noJournal = true
		fs.takeRetryHold(tx)
		m := fs.mode
		if !m.SyncActive || !m.Resync {
			return fmt.Errorf("engine: resync ranges into %s: no resync in progress: %w", fs.name, ErrInvalid)
		}
		var present []blocks.ID
		for _, r := range ranges {
			mi, pr, err := fs.refBlocksMissing(tx, r.Pairs)
			if err != nil {
				return err
			}
			missing = append(missing, mi...)
			present = append(present, pr...)
		}
		if len(missing) > 0 {
			tx.keep = present // nothing is written: all of it waits for the retry
			return nil
		}
		for _, r := range ranges {
			if err := fs.replaceRange(tx, r.Lo, r.Hi, r.Pairs); err != nil {
				return err
			}
		}
		if m.SyncBase == 0 || seq < m.SyncBase {
			m.SyncBase = seq
		}
		m.ConsistentSeq = max(m.ConsistentSeq, seq)
		m.AppliedEpoch, m.AppliedTime = max(m.AppliedEpoch, epoch), t.UnixNano()
		tx.putMode(m)
		return nil
	})
	if err == nil && len(missing) > 0 {
		err = &MissingBlocksError{IDs: missing}
	}
	return err
}

// FinishResync ends a resync: every range now holds the source's keys at
// some seq in [base, top] (equal ranges were already equal there), so the
// replica replays the source's records from base+1 and is consistent from
// top on. An interrupted resync starts its pass over: base is the first
// snapshot of the pass that completed, whatever earlier passes ingested.
func (rep *Replica) FinishResync(ctx context.Context, base, top, epoch uint64, t time.Time) error {
	fs := rep.fs
	if base == 0 || top < base {
		return fmt.Errorf("engine: finish resync at %d..%d: %w", base, top, ErrInvalid)
	}
	return fs.do(ctx, opApply, "finish-resync", func(tx *txn) error {
		tx.noJournal = true
		m := fs.mode
		if !m.SyncActive || !m.Resync {
			if m.ConsistentSeq != 0 && m.AppliedSeq >= base {
				return nil // finished before (a retry)
			}
			return fmt.Errorf("engine: finish resync of %s: no resync in progress: %w", fs.name, ErrInvalid)
		}
		m.SyncActive, m.Resync, m.SyncCursor = false, false, nil
		m.SyncBase, m.AppliedSeq = base, base
		m.ConsistentSeq = max(m.ConsistentSeq, top)
		m.AppliedEpoch = max(m.AppliedEpoch, epoch)
		if m.AppliedTime == 0 {
			m.AppliedTime = t.UnixNano()
		}
		if fs.undo != nil && m.AppliedSeq >= m.ConsistentSeq {
			// Consistent: nothing to put back any more.
			if err := fs.dropUndo(tx, base); err != nil {
				return err
			}
		}
		tx.abs.Set(localKey(fs.id, locJTrunc), encodeU64(base+1))
		tx.abs.Delete(localKey(fs.id, locResyncKeys))
		tx.putMode(m)
		tx.advance = base
		return nil
	})
}

// RangeChecksum hashes the replicated keys in [lo, hi) of the current
// state, as Snapshot.Checksum does.
func (rep *Replica) RangeChecksum(ctx context.Context, lo, hi []byte) ([32]byte, error) {
	fs := rep.fs
	v := fs.readView()
	defer v.close()
	return checksumRange(fs, v.r, lo, hi)
}

func checksumRange(fs *FS, r kv.Reader, lo, hi []byte) ([32]byte, error) {
	var sum [32]byte
	it, err := r.NewIter(lo, hi)
	if err != nil {
		return sum, err
	}
	defer it.Close()
	h := blake3.New()
	var lb [binary.MaxVarintLen64]byte
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			return sum, fs.corrupt(err)
		}
		k := it.Key()
		h.Write(lb[:binary.PutUvarint(lb[:], uint64(len(k)))])
		h.Write(k)
		h.Write(lb[:binary.PutUvarint(lb[:], uint64(len(v)))])
		h.Write(v)
	}
	if err := it.Error(); err != nil {
		return sum, err
	}
	h.Sum(sum[:0])
	return sum, nil
}

// KeysTouched returns, sorted and without repeats, the replicated keys
// that the journal records from seq from to seq to (inclusive) mutate.
// ErrTruncated when the journal no longer reaches back to from.
func (rep *Replica) KeysTouched(ctx context.Context, from, to uint64) ([][]byte, error) {
	seen := map[string]struct{}{}
	for next := from; next <= to; {
		recs, err := rep.ReadJournal(ctx, next, 1024, 8<<20)
		if err != nil {
			return nil, err
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.Seq > to {
				break
			}
			for _, m := range r.Mutations {
				seen[string(m.Key)] = struct{}{}
			}
			if len(seen) > MaxResyncKeys {
				return nil, fmt.Errorf("engine: more than %d keys touched since %d: %w", MaxResyncKeys, from, ErrTooLarge)
			}
		}
		next = recs[len(recs)-1].Seq + 1
	}
	keys := make([][]byte, 0, len(seen))
	for k := range seen {
		keys = append(keys, []byte(k))
	}
	slices.SortFunc(keys, bytes.Compare)
	return keys, nil
}

func encodeKeyList(keys [][]byte) []byte {
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
	}
	return b
}

func decodeKeyList(b []byte) ([][]byte, error) {
	n, l := binary.Uvarint(b)
	if l <= 0 || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: resync key list", ErrCorrupt)
	}
	b = b[l:]
	keys := make([][]byte, 0, n)
	for range n {
		kl, l := binary.Uvarint(b)
		if l <= 0 || kl > uint64(len(b)-l) {
			return nil, fmt.Errorf("%w: resync key list", ErrCorrupt)
		}
		keys = append(keys, bytes.Clone(b[l:l+int(kl)]))
		b = b[l+int(kl):]
	}
	return keys, nil
}
