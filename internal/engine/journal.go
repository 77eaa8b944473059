package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// ReadJournal returns durable records from seq from on: at most maxRecords
// records and about maxBytes bytes (at least one record when any is
// durable). It never returns a record past the durable mark. ErrTruncated
// when from was truncated away.
func (rep *Replica) ReadJournal(_ context.Context, from uint64, maxRecords, maxBytes int) ([]*Record, error) {
	fs := rep.fs
	durable := fs.durable.Load()
	if from == 0 {
		from = 1
	}
	if from > durable {
		return nil, nil
	}
	if t := fs.truncatedBelow(); from < t {
		return nil, fmt.Errorf("engine: journal of %s from %d: truncated below %d: %w", fs.name, from, t, ErrTruncated)
	}
	it, err := fs.e.kv.NewIter(journalKey(fs.id, from), journalKey(fs.id, durable+1))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var recs []*Record
	size := 0
	want := from
	for ok := it.First(); ok && len(recs) < maxRecords && (size < maxBytes || len(recs) == 0); ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			return nil, fs.corrupt(err)
		}
		r, err := DecodeRecord(v)
		if err != nil {
			return nil, fs.corrupt(err)
		}
		if r.Seq != want {
			if len(recs) == 0 && r.Seq > want {
				return nil, fmt.Errorf("engine: journal of %s from %d starts at %d: %w", fs.name, from, r.Seq, ErrTruncated)
			}
			return nil, fs.corrupt(fmt.Errorf("%w: journal key %d holds record %d", ErrCorrupt, want, r.Seq))
		}
		want++
		size += len(v)
		recs = append(recs, r)
	}
	if len(recs) == 0 && it.Error() == nil {
		return nil, fmt.Errorf("engine: journal of %s from %d: %w", fs.name, from, ErrTruncated)
	}
	return recs, it.Error()
}

// JournalStart returns the lowest seq the journal can still hold (records
// below it were truncated).
func (rep *Replica) JournalStart() (uint64, error) {
	fs := rep.fs
	v, err := fs.e.kv.Get(localKey(fs.id, locJTrunc))
	if errors.Is(err, kv.ErrNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, err
	}
	t, err := decodeU64(v)
	return max(t, 1), err
}

func (fs *FS) truncatedBelow() uint64 {
	v, err := fs.e.kv.Get(localKey(fs.id, locJTrunc))
	if err != nil {
		return 0
	}
	t, _ := decodeU64(v)
	return t
}

// Truncate deletes journal records below seq below, but never a pinned
// record nor the newest one. It returns the new lower bound.
func (rep *Replica) Truncate(ctx context.Context, below uint64) (uint64, error) {
	fs := rep.fs
	var bound uint64
	err := fs.do(ctx, opAdmin, "truncate", func(tx *txn) error {
		tx.noJournal = true
		bound = min(below, fs.pinFloor(), fs.lastSeq)
		if bound <= fs.truncatedBelow() {
			bound = fs.truncatedBelow()
			return nil
		}
		tx.abs.DeleteRange(journalKey(fs.id, 0), journalKey(fs.id, bound))
		tx.abs.Set(localKey(fs.id, locJTrunc), encodeU64(bound))
		return nil
	})
	return bound, err
}

// MissingBlocksError lists blocks a record references that the replica
// does not have; the sender pushes them and retries.
type MissingBlocksError struct{ IDs []blocks.ID }

func (e *MissingBlocksError) Error() string {
	return fmt.Sprintf("%d referenced blocks are missing", len(e.IDs))
}

func (e *MissingBlocksError) Is(target error) bool { return target == ErrMissingBlocks }

// Applied returns a replica's applied point: epoch, seq and source time of
// the newest applied record.
func (rep *Replica) Applied() (epoch, seq uint64, at time.Time) {
	fs := rep.fs
	m := fs.modePub.Load()
	return m.AppliedEpoch, m.AppliedSeq, time.Unix(0, m.AppliedTime).UTC()
}

// stopApplyAt makes the applier stop after seq (0 resumes): later records
// are refused with ErrPaused until resumed, so a snapshot or checksum can
// be taken at exactly seq.
func (rep *Replica) stopApplyAt(seq uint64) { rep.fs.applyLimit.Store(seq) }

// Apply applies whole source transactions in order on a replica, with its
// applied point in the same durable batch. Records at or below the applied
// point are skipped (replay is idempotent); a gap is ErrGap; a record of an
// older epoch than one already applied is ErrEpoch. Records are applied up
// to the first one that references a block the replica lacks; then Apply
// returns the applied seq with a *MissingBlocksError listing that record's
// missing blocks (the sender pushes them and retries).
func (rep *Replica) Apply(ctx context.Context, recs []*Record) (uint64, error) {
	applied, _, wait, err := rep.ApplyAsync(ctx, recs)
	if werr := wait(); werr != nil {
		return 0, werr
	}
	return applied, err
}

// ApplyAsync is Apply that returns once the records are applied and
// readable, before the commit that holds them is durable: the replica's
// next records can be applied during that commit's sync instead of after
// it. wait returns once the commit is durable (its error, as Apply's
// when the sync fails); it must be called. Applied and Mode report the
// records only from then on. The returned seq is the point the records
// reached (readable, maybe not durable yet), readable when they became
// readable (this process's clock when the store's commit returned, before
// the caller was woken; zero when nothing was committed); a
// *MissingBlocksError, a gap or an older epoch are returned as by Apply.
func (rep *Replica) ApplyAsync(ctx context.Context, recs []*Record) (applied uint64, readable time.Time, wait func() error, err error) {
	fs := rep.fs
	var missing []blocks.ID
	if err := fs.e.admit(recordsBytes(recs)); err != nil {
		return 0, time.Time{}, func() error { return nil }, err
	}
	o := &op{kind: opApply, name: "apply"}
	o.fn = func(tx *txn) error {
		tx.noJournal = true
		fs.takeRetryHold(tx)
		m := fs.mode
		if m.SyncActive {
			return fmt.Errorf("engine: apply to %s: initial sync in progress: %w", fs.name, ErrInvalid)
		}
		limit := fs.applyLimit.Load()
		// Check order, epochs and blocks before writing anything.
		var todo []*Record
		next, epoch := m.AppliedSeq+1, m.AppliedEpoch
		paused := false
		for _, r := range recs {
			if r.Seq < next {
				continue
			}
			if r.Seq != next {
				return fmt.Errorf("engine: apply %d after %d: %w", r.Seq, next-1, ErrGap)
			}
			if r.Epoch < epoch {
				return fmt.Errorf("engine: apply record %d of epoch %d after epoch %d: %w", r.Seq, r.Epoch, epoch, ErrEpoch)
			}
			if limit != 0 && r.Seq > limit {
				paused = true
				break
			}
			var (
				present []blocks.ID
				err     error
			)
			if missing, present, err = fs.needBlocks(tx, r.AddedRefs); err != nil {
				return err
			}
			if len(missing) > 0 {
				// Records before r are applied; r waits for the
				// missing blocks, and its present ones wait with it.
				tx.keep = present
				break
			}
			todo = append(todo, r)
			next, epoch = r.Seq+1, r.Epoch
		}
		applied = m.AppliedSeq
		if len(todo) == 0 {
			if paused {
				return ErrPaused
			}
			return nil
		}
		// Until a resync has made the replica consistent, what the
		// records change is saved in the resync's undo (undo.go).
		capture := fs.capturing()
		for _, r := range todo {
			for _, mu := range r.Mutations {
				if capture {
					if _, err := fs.saveUndo(tx, mu.Key); err != nil {
						return err
					}
				}
				if mu.Delete {
					tx.abs.Delete(absKey(fs.id, mu.Key))
					continue
				}
				tx.abs.Set(absKey(fs.id, mu.Key), mu.Value)
				if string(mu.Key) == string(metaKey(metaSuper)) {
					if err := fs.adoptSuper(tx, mu.Value); err != nil {
						return err
					}
				}
			}
			tx.abs.Set(journalKey(fs.id, r.Seq), r.Encode())
			if capture {
				for _, id := range r.AddedRefs {
					tx.abs.Set(holderKey(fs.dom.id, id, fs.id), nil)
				}
				for _, id := range r.ZeroRefs {
					if err := fs.dropRef(tx, id, r.Seq); err != nil {
						return err
					}
				}
			} else {
				fs.applyRefEffects(tx.abs, r)
			}
			m.AppliedSeq, m.AppliedEpoch, m.AppliedTime = r.Seq, r.Epoch, r.Time.UnixNano()
		}
		if fs.undo != nil && m.AppliedSeq >= m.ConsistentSeq {
			if err := fs.dropUndo(tx, m.AppliedSeq); err != nil {
				return err
			}
		}
		tx.putModeDurable(m)
		applied = m.AppliedSeq
		tx.advance = applied
		return nil
	}
	wait, err = fs.doVisible(ctx, o)
	if err == nil && len(missing) > 0 {
		err = &MissingBlocksError{IDs: missing}
	}
	return applied, o.readable, wait, err
}

// needBlocks returns which of ids (the blocks a record, sync chunk or
// resync range references) the replica lacks, and which it has. Each id is
// put in flight before the store is asked, so that the collector cannot
// delete a present block between the look and the commit that references
// it.
//
// When some are missing, the caller does not apply what needs them and
// the sender pushes the missing blocks and retries. The caller then sets
// tx.keep to the present ones: they stay in flight until that retry
// (takeRetryHold). A present block may have no holder yet — a block an
// earlier record released and this one references again — and without
// the mark the collector could delete it while the missing ones travel,
// so that the retry would find it missing in turn.
func (fs *FS) needBlocks(tx *txn, ids []blocks.ID) (missing, present []blocks.ID, err error) {
	for _, id := range ids {
		fs.dom.addInflight(id)
		tx.hold = append(tx.hold, id)
		ok := false
		if fs.dom.blockStore() != nil {
			if ok, err = fs.dom.blockStore().Has(tx.ctx(), id); err != nil {
				return nil, nil, fmt.Errorf("%w: %w", ErrIO, err)
			}
		}
		if ok {
			present = append(present, id)
		} else {
			missing = append(missing, id)
		}
	}
	return missing, present, nil
}

// takeRetryHold starts a replica's apply, ingest or resync: the blocks kept
// for it by the previous one are released with tx (which marks again those
// it needs), and once tx commits its own tx.keep are kept for the next.
func (fs *FS) takeRetryHold(tx *txn) {
	tx.hold = append(tx.hold, fs.retryHold...)
	fs.retryHold = nil
	tx.onCommit = append(tx.onCommit, func() {
		fs.dom.addInflight(tx.keep...)
		fs.retryHold = tx.keep
	})
}

// adoptSuper learns the lineage keys of a replica from its first record (or
// its initial sync) and readies its block store.
func (fs *FS) adoptSuper(tx *txn, v []byte) error {
	sb, err := decodeSuper(v)
	if err != nil {
		return err
	}
	d := fs.dom
	d.recMu.Lock()
	defer d.recMu.Unlock()
	if d.rec.Pending {
		rec := d.rec
		rec.Pending = false
		rec.HashKey = sb.HashKey
		if d.sealer != nil {
			dek, err := fs.e.opts.Keyring.Unwrap(rec.KMSKeyID, rec.WrappedDEK)
			if err != nil {
				return err
			}
			if rec.HashKey, err = sealHashKey(dek, sb.HashKey); err != nil {
				return err
			}
		}
		if err := fs.e.initDomainStore(d, sb.HashKey); err != nil {
			return err
		}
		// The domain is no longer pending once its record is
		// committed: an apply that fails after this leaves it pending
		// (its record is dropped with it), to be adopted again.
		tx.abs.Set(domainKey(d.id), rec.encode())
		tx.onCommit = append(tx.onCommit, func() {
			d.recMu.Lock()
			d.rec = rec
			d.recMu.Unlock()
		})
	}
	tx.onCommit = append(tx.onCommit, func() { fs.superPub.Store(sb) })
	return nil
}

// HoldBlocks puts ids in flight on the replica's domain: the collector
// deletes none of them, whatever the holder keys say, until ReleaseBlocks
// (each hold released once). A receiver holds a pushed block from before
// its put until the record that references it is applied (then its holder
// keeps it) or the stream ends: a block an earlier record released and
// the next references again is otherwise a candidate for collection
// between its push and that record's apply, which then asks for it again.
func (rep *Replica) HoldBlocks(ids ...blocks.ID) { rep.fs.dom.addInflight(ids...) }

// ReleaseBlocks ends holds taken by HoldBlocks.
func (rep *Replica) ReleaseBlocks(ids ...blocks.ID) { rep.fs.dom.doneInflight(ids...) }

// PutBlock stores a block pushed by a source (verifying its id). Its name
// becomes durable with the next commit.
func (rep *Replica) PutBlock(ctx context.Context, id blocks.ID, data []byte) error {
	fs := rep.fs
	d := fs.dom
	if d.blockHasher() == nil {
		return fmt.Errorf("engine: %s: block before superblock: %w", fs.name, ErrInvalid)
	}
	if d.blockHasher().Sum(data) != id {
		return fmt.Errorf("%w: pushed block does not match its id %s", ErrCorrupt, id)
	}
	return rep.putBlock(ctx, id, data)
}

// PutBlockAuthentic stores a pushed block without computing its keyed
// hash: for a caller that already knows data to be block id as its source
// holds it — package replication, for a block an authenticated peer sent
// over an authenticated channel (TLS, or loopback) with a checksum that
// data passed. Scrub and verification still prove it by its keyed hash.
// Its name becomes durable with the next commit.
func (rep *Replica) PutBlockAuthentic(ctx context.Context, id blocks.ID, data []byte) error {
	if rep.fs.dom.blockHasher() == nil {
		return fmt.Errorf("engine: %s: block before superblock: %w", rep.fs.name, ErrInvalid)
	}
	return rep.putBlock(ctx, id, data)
}

func (rep *Replica) putBlock(ctx context.Context, id blocks.ID, data []byte) error {
	fs := rep.fs
	d := fs.dom
	if err := fs.e.admit(int64(len(data))); err != nil {
		return err
	}
	store := d.blockStore()
	put := store.Put
	if cp, ok := store.(blocks.ColdPutter); ok {
		// Nothing reads a pushed block soon (the replica's reads, a
		// failover): its pages leave the page cache once it is durable.
		put = cp.PutCold
	}
	if err := put(ctx, id, data); err != nil {
		return blockWriteErr(err)
	}
	return nil
}

// FetchLocal copies, among ids, the blocks this file system lacks but that
// another file system of this server with the same id key (its lineage, a
// clone, an older copy of it) holds, verifying each; it returns the ids
// still missing, which only the source can send. A replica created anew
// next to the original (a reverse replication) thus receives no block the
// region already has.
func (rep *Replica) FetchLocal(ctx context.Context, ids []blocks.ID) ([]blocks.ID, error) {
	fs := rep.fs
	own := fs.dom.keys.Load()
	if own == nil {
		return ids, nil
	}
	fs.e.mu.Lock()
	var siblings []*domain
	for _, d := range fs.e.domains {
		if k := d.keys.Load(); d != fs.dom && k != nil && k.idKey == own.idKey {
			siblings = append(siblings, d)
		}
	}
	fs.e.mu.Unlock()
	var missing []blocks.ID
	for _, id := range ids {
		if ok, err := own.store.Has(ctx, id); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrIO, err)
		} else if ok {
			continue
		}
		found := false
		for _, d := range siblings {
			data, err := d.getBlock(ctx, id)
			if err != nil {
				continue // absent there, or damaged: the source sends it
			}
			if err := rep.PutBlock(ctx, id, data); err != nil {
				return nil, err
			}
			found = true
			break
		}
		if !found {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// missingBlocks returns which of ids this file system's block store lacks.
func (rep *Replica) missingBlocks(ctx context.Context, ids []blocks.ID) ([]blocks.ID, error) {
	fs := rep.fs
	if fs.dom.blockStore() == nil {
		return append([]blocks.ID(nil), ids...), nil
	}
	var missing []blocks.ID
	for _, id := range ids {
		ok, err := fs.dom.blockStore().Has(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrIO, err)
		}
		if !ok {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// BlockView returns a block's plaintext, shared with the block cache: the
// caller must not modify it (shipping, which only reads it).
func (rep *Replica) BlockView(ctx context.Context, id blocks.ID) ([]byte, error) {
	fs := rep.fs
	b, err := fs.dom.getBlock(ctx, id)
	if err != nil {
		return nil, fs.corrupt(err)
	}
	return b, nil
}

// ShipBlock returns a block's plaintext to push to a destination, which
// verifies it against its id, and a hold on the memory it lies in: the
// caller must not modify it and releases h once it has sent it. It comes
// from the cache, or is read from the store into a buffer of the cache's
// pool and checked as its stored form allows (blocks.DecodeStored: a
// sealed block is authenticated by AES-GCM, a plaintext one checked by
// its CRC-32C, neither hashed again); such a
// block is not cached (the shipper reads it once), and its buffer goes
// back to the pool on release, so a sync of more than the cache touches
// no fresh memory per block.
func (rep *Replica) ShipBlock(ctx context.Context, id blocks.ID) ([]byte, Hold, error) {
	fs := rep.fs
	if b, h, ok := fs.dom.cache.getHeld(fs.dom.id, id); ok {
		return b, h, nil
	}
	bg, ok := fs.dom.blockStore().(blocks.BufGetter)
	if !ok {
		b, err := rep.BlockView(ctx, id)
		return b, Hold{}, err
	}
	mem := fs.dom.cache.pool.Get()
	b, inBuf, err := bg.GetInto(ctx, id, mem)
	if err != nil || !inBuf {
		fs.dom.cache.pool.Put(mem)
		if err != nil {
			return nil, Hold{}, fs.corrupt(err)
		}
		return b, Hold{}, nil
	}
	return b, fs.dom.cache.hold(mem), nil
}

// getBlock returns a block's plaintext (shipping, scrub).
func (rep *Replica) getBlock(ctx context.Context, id blocks.ID) ([]byte, error) {
	fs := rep.fs
	b, err := fs.dom.getBlock(ctx, id)
	if err != nil {
		return nil, fs.corrupt(err)
	}
	return append([]byte(nil), b...), nil
}

// Snapshot is a consistent view of a file system's replicated keys at a
// durable journal seq, for initial sync and verification. Blocks released
// after Seq are kept while it is open. It is read in one pass (each key
// once: a sync's chunks, a resync's or a verification's checksums), so
// while it is open the store's cache does not grow (kv.HoldCache).
type Snapshot struct {
	Seq    uint64
	Epoch  uint64    // epoch of the record at Seq
	Time   time.Time // source commit time of the record at Seq
	fs     *FS
	snap   kv.Snapshot
	pin    uint64
	unhold func()
}

// Snapshot takes a snapshot between two group commits, at the durable mark.
func (rep *Replica) Snapshot(ctx context.Context) (*Snapshot, error) {
	fs := rep.fs
	var s *Snapshot
	err := fs.do(ctx, opAdmin, "snapshot", func(tx *txn) error {
		tx.noJournal = true
		// Earlier transactions of this group are not committed yet: the
		// snapshot holds exactly the state after fs.lastSeq.
		s = &Snapshot{Seq: fs.lastSeq, Epoch: fs.mode.Epoch, fs: fs, snap: fs.e.kv.NewSnapshot()}
		s.pin = fs.addTempPin(fs.lastSeq + 1)
		return nil
	})
	if err == nil {
		s.unhold = kv.HoldCache(fs.e.kv)
	}
	if err != nil || s.Seq == 0 {
		return s, err
	}
	// The record at Seq is in the snapshot (same batch as its mutations;
	// truncation keeps the newest record).
	v, err := s.snap.Get(journalKey(fs.id, s.Seq))
	if errors.Is(err, kv.ErrNotFound) {
		// A replica right after its initial sync holds no record at Seq.
		m := fs.modePub.Load()
		s.Epoch, s.Time = m.AppliedEpoch, time.Unix(0, m.AppliedTime).UTC()
		return s, nil
	}
	if err == nil {
		var r *Record
		if r, err = DecodeRecord(v); err == nil {
			s.Epoch, s.Time = r.Epoch, r.Time
		}
	}
	if err != nil {
		s.Close()
		return nil, fs.corrupt(fmt.Errorf("engine: snapshot of %s at %d: record: %w", fs.name, s.Seq, err))
	}
	return s, nil
}

// Iter iterates the replicated keys in [lo, hi) (relative keys; nil hi =
// to the end of the file system).
func (s *Snapshot) Iter(lo, hi []byte) (kv.Iterator, error) {
	return s.fs.reader(s.snap).NewIter(lo, hi)
}

// Close releases the snapshot and its pin.
func (s *Snapshot) Close() error {
	if s.unhold != nil {
		s.unhold()
	}
	s.fs.dropTempPin(s.pin)
	return s.snap.Close()
}

// Checksum hashes the replicated keys in [lo, hi) of the snapshot: equal
// sums on two sides at the same seq mean equal state.
func (s *Snapshot) Checksum(lo, hi []byte) ([32]byte, error) {
	return checksumRange(s.fs, s.fs.reader(s.snap), lo, hi)
}

// Checksum returns the seq of a fresh snapshot and the checksum of the
// whole replicated state there.
func (rep *Replica) Checksum(ctx context.Context) (uint64, [32]byte, error) {
	s, err := rep.Snapshot(ctx)
	if err != nil {
		return 0, [32]byte{}, err
	}
	defer s.Close()
	sum, err := s.Checksum(nil, nil)
	return s.Seq, sum, err
}

func (fs *FS) addTempPin(seq uint64) uint64 {
	fs.pinMu.Lock()
	defer fs.pinMu.Unlock()
	fs.tempSeq++
	if fs.tempPins == nil {
		fs.tempPins = map[uint64]uint64{}
	}
	fs.tempPins[fs.tempSeq] = seq
	return fs.tempSeq
}

func (fs *FS) dropTempPin(id uint64) {
	fs.pinMu.Lock()
	delete(fs.tempPins, id)
	fs.pinMu.Unlock()
	fs.e.kickGC()
}

// RecoveryPoint is where a promoted replica's history stops: everything up
// to Seq (committed at the source at Time) is in it.
type RecoveryPoint struct {
	Seq      uint64
	Time     time.Time
	OldEpoch uint64
	NewEpoch uint64
	// Empty: the replica had no consistent state (its initial sync was
	// not finished) and was promoted as a new, empty file system
	// (PromoteEmpty): nothing of the source was recovered.
	Empty bool
	// Abandoned: the replica was being resynced and its resync was
	// abandoned (AbandonResync): it is back at its own state from before
	// the resync (Seq, Time, OldEpoch), and nothing of what the resync's
	// source wrote since the two histories forked is in it.
	Abandoned bool
	// Shared (Abandoned): the last seq the file system shares with the
	// resync's source when the source's epoch history had arrived (0:
	// not known here).
	Shared uint64
}

// Promoted returns the recovery point recorded when the file system, a
// replica before, was promoted (Promote, PromoteEmpty, AbandonResync),
// and false while it is a replica. For a file system that was never a
// replica it is the zero point. The control plane completes a failover
// with it when the process ended after the promotion and before its own
// record of it: Empty is a promotion that kept nothing (no recovery
// seq); Abandoned and Shared are AbandonResync's (a promotion recorded by
// an earlier version says neither).
func (rep *Replica) Promoted() (RecoveryPoint, bool) {
	m := rep.fs.modePub.Load()
	if m.Mode == ModeReplica {
		return RecoveryPoint{}, false
	}
	rp := RecoveryPoint{Seq: m.RecoverySeq, OldEpoch: m.AppliedEpoch, NewEpoch: m.Epoch, Empty: m.RecoverySeq == 0,
		Abandoned: m.Abandoned, Shared: m.Shared}
	if m.RecoveryTime != 0 {
		rp.Time = time.Unix(0, m.RecoveryTime).UTC()
	}
	return rp, true
}

// Promote makes a replica writable at a new epoch, durably, at a
// transaction boundary: its first record (seq applied+1) opens the new epoch
// in the replicated epoch history.
func (rep *Replica) Promote(ctx context.Context) (RecoveryPoint, error) {
	fs := rep.fs
	var rp RecoveryPoint
	err := fs.do(ctx, opAdmin, "promote", func(tx *txn) error {
		m := fs.mode
		if m.Mode != ModeReplica {
			return fmt.Errorf("engine: promote %s: %w", fs.name, ErrNotReplica)
		}
		if m.SyncActive || fs.superPub.Load() == nil || m.AppliedSeq < m.ConsistentSeq {
			return fmt.Errorf("engine: promote %s: no consistent state yet: %w", fs.name, ErrNotReady)
		}
		v, ok, err := tx.get(metaKey(metaEpochs))
		if err != nil {
			return err
		}
		if !ok {
			return fs.corrupt(fmt.Errorf("%w: no epoch history", ErrCorrupt))
		}
		hist, err := decodeEpochs(v)
		if err != nil {
			return fs.corrupt(err)
		}
		newEpoch := max(hist[len(hist)-1].Epoch, m.AppliedEpoch, m.Learned) + 1
		hist = append(hist, EpochStart{Epoch: newEpoch, StartSeq: m.AppliedSeq + 1})
		tx.set(metaKey(metaEpochs), encodeEpochs(hist))
		rp = RecoveryPoint{Seq: m.AppliedSeq, Time: time.Unix(0, m.AppliedTime).UTC(), OldEpoch: m.AppliedEpoch, NewEpoch: newEpoch}
		nm := modeRecord{
			Mode: ModePrimary, Epoch: newEpoch, Learned: newEpoch,
			AppliedEpoch: m.AppliedEpoch, AppliedSeq: m.AppliedSeq, AppliedTime: m.AppliedTime,
			RecoverySeq: m.AppliedSeq, RecoveryTime: m.AppliedTime,
		}
		fs.setModeLocked(nm)
		tx.abs.Set(localKey(fs.id, locMode), nm.encode())
		tx.onCommit = append(tx.onCommit, fs.maint.scanMerges)
		return nil
	})
	return rp, err
}

// PromoteEmpty makes a replica that has never had a consistent state to
// promote (its initial sync is unfinished, or the records its sync must
// replay are not all applied: Promote answers ErrNotReady) a
// writable, empty primary, as CreateFS would make it: what it ingested so
// far is discarded — it is no prefix of its source, only keys in key order
// (entries without their inodes) — and the blocks it referenced go to the
// collector. Its journal, pins and sync state are dropped; its first
// record (the next seq) holds a fresh superblock (new lineage and handle
// key; the block id key stays the domain's) and the root directory, and
// opens an epoch above every epoch it heard of and above minEpoch (the
// source's, when known), at least 2, so that a source that learns of the
// promotion fences itself as after a failover. Everything happens in one
// durable commit: a crash leaves either the old replica or the new file
// system. A replica that has a consistent state is refused with
// ErrInvalid (promote it; its state is never discarded here), and so is,
// with ErrNotReady, one being resynced that had a consistent state of its
// own, which the resync replaces range by range: discarding it could lose
// the only copy of the data (AbandonResync puts it back instead). A
// resync begun on an unfinished initial sync had none, and is promoted
// empty like the initial sync.
func (rep *Replica) PromoteEmpty(ctx context.Context, minEpoch uint64) (RecoveryPoint, error) {
	fs := rep.fs
	var rp RecoveryPoint
	err := fs.do(ctx, opAdmin, "promote-empty", func(tx *txn) error {
		m := fs.mode
		if m.Mode != ModeReplica {
			return fmt.Errorf("engine: promote %s empty: %w", fs.name, ErrNotReplica)
		}
		old := fs.superPub.Load()
		if !m.SyncActive && old != nil && m.AppliedSeq >= m.ConsistentSeq {
			return fmt.Errorf("engine: promote %s empty: it has a consistent state at %d: %w", fs.name, m.AppliedSeq, ErrInvalid)
		}
		if m.Resync && (fs.undo == nil || fs.undo.Consistent) {
			return fmt.Errorf("engine: promote %s empty: a resync replaces its earlier state (abandon the resync instead): %w", fs.name, ErrNotReady)
		}
		var histTop uint64
		if v, ok, err := tx.get(metaKey(metaEpochs)); err != nil {
			return err
		} else if ok {
			if hist, err := decodeEpochs(v); err == nil && len(hist) > 0 {
				histTop = hist[len(hist)-1].Epoch
			}
		}
		newEpoch := max(histTop, m.Epoch, m.AppliedEpoch, m.Learned, minEpoch, 1) + 1
		// The blocks an interrupted ingest or apply kept for its retry
		// are released with this transaction.
		fs.takeRetryHold(tx)
		if err := fs.replaceRange(tx, nil, nil, nil); err != nil {
			return err
		}
		tx.abs.DeleteRange(journalPrefix(fs.id), upper(journalPrefix(fs.id)))
		pins := localKey(fs.id, locPin)
		tx.abs.DeleteRange(pins, upper(pins))
		tx.abs.Delete(localKey(fs.id, locResyncKeys))
		if fs.undo != nil {
			// A resync of an unfinished initial sync: nothing to put back.
			tx.abs.DeleteRange(undoPrefix(fs.id), upper(undoPrefix(fs.id)))
			tx.abs.Delete(localKey(fs.id, locUndo))
			tx.onCommit = append(tx.onCommit, func() { fs.undo = nil })
		}
		// Nothing below the new file system's first record.
		tx.abs.Set(localKey(fs.id, locJTrunc), encodeU64(tx.seq))
		fs.meta.invalidate()
		tx.onCommit = append(tx.onCommit, func() {
			fs.pinMu.Lock()
			fs.pins = map[string]uint64{}
			fs.pinMu.Unlock()
		})

		bs, hashKey := DefaultBlockSize, randBytes(32)
		if old != nil {
			// The domain's block store is keyed by it already.
			bs, hashKey = old.BlockSize, old.HashKey
		}
		sb := &superblock{
			Version: superVersion, BlockSize: bs, HashAlg: 1, InlineMax: min(fs.e.opts.InlineMax, bs),
			Lineage: randBytes(16), HashKey: hashKey, MACKey: randBytes(32),
			Created: fs.e.clock().UnixNano(),
		}
		if err := fs.adoptSuper(tx, sb.encode()); err != nil {
			return err
		}
		if err := tx.mkfs(sb, 0o755, 0, 0); err != nil {
			return err
		}
		// mkfs opens epoch 1; this file system starts at newEpoch.
		tx.set(metaKey(metaEpochs), encodeEpochs([]EpochStart{{Epoch: newEpoch, StartSeq: tx.seq}}))
		// The mode last, as Promote: nothing after it can fail.
		nm := modeRecord{Mode: ModePrimary, Epoch: newEpoch, Learned: newEpoch}
		fs.setModeLocked(nm)
		tx.abs.Set(localKey(fs.id, locMode), nm.encode())
		rp = RecoveryPoint{OldEpoch: m.AppliedEpoch, NewEpoch: newEpoch, Empty: true}
		tx.onCommit = append(tx.onCommit, fs.maint.scanMerges)
		return nil
	})
	return rp, err
}

// Fence makes a primary refuse writes because a newer epoch exists
// elsewhere (soft fencing). The learned epoch is durable before Fence
// returns. A stop of the file system's own (learned not newer than its
// epoch) is Stop's, with its reason.
func (rep *Replica) Fence(ctx context.Context, learned uint64) error {
	fs := rep.fs
	return fs.setMode(ctx, "fence", func(m *modeRecord) error {
		if m.Mode == ModeReplica {
			return fmt.Errorf("engine: fence a replica: %w", ErrInvalid)
		}
		m.Mode = ModeFenced
		m.Learned = max(m.Learned, learned)
		return nil
	})
}

// Stop makes a primary refuse writes at its own epoch for reason s (a
// fenced file system keeps its fence and records s too). The reason is
// durable with the stop, in the same record: a restart finds both or
// neither. Resume(s) lifts it.
func (rep *Replica) Stop(ctx context.Context, s Stop) error {
	fs := rep.fs
	return fs.setMode(ctx, "stop", func(m *modeRecord) error {
		if m.Mode == ModeReplica {
			return fmt.Errorf("engine: stop a replica: %w", ErrInvalid)
		}
		m.Mode = ModeFenced
		m.Stops |= s
		return nil
	})
}

// Stops returns the reasons the file system stopped itself (Stop) that
// no Resume lifted yet.
func (rep *Replica) Stops() Stop { return rep.fs.modePub.Load().Stops }

// Unfence makes a fenced file system writable again at its own epoch
// (the operator's decision: every stop is lifted too).
func (rep *Replica) Unfence(ctx context.Context) error {
	fs := rep.fs
	return fs.setMode(ctx, "unfence", func(m *modeRecord) error {
		if m.Mode != ModeFenced {
			return nil
		}
		m.Mode, m.Stops = ModePrimary, 0
		return nil
	})
}

// Resume lifts the stop of reason s (Stop): the file system takes writes
// again if no other stop is left and it learned of no newer epoch (a
// fence by a newer epoch stays). A fence of the file system's own epoch
// that records no reason (written before the reasons were) is lifted by
// any Resume, as it was then.
func (rep *Replica) Resume(ctx context.Context, s Stop) error {
	fs := rep.fs
	if m := fs.modePub.Load(); m.Mode != ModeFenced || (m.Stops&s == 0 && m.Stops != 0) {
		return nil // nothing to write
	}
	return fs.setMode(ctx, "resume", func(m *modeRecord) error {
		if m.Mode != ModeFenced {
			return nil
		}
		m.Stops &^= s
		if m.Stops == 0 && m.Learned <= m.Epoch {
			m.Mode = ModePrimary
		}
		return nil
	})
}

// MakeReplica turns a file system into a replica continuing from its own
// last record (failback).
func (rep *Replica) MakeReplica(ctx context.Context) error {
	fs := rep.fs
	return fs.setMode(ctx, "demote", func(m *modeRecord) error {
		if m.Mode == ModeReplica {
			return nil
		}
		m.Mode, m.Stops = ModeReplica, 0
		m.AppliedSeq = fs.lastSeq
		m.AppliedEpoch = m.Epoch
		return nil
	})
}

func (fs *FS) setMode(ctx context.Context, name string, f func(*modeRecord) error) error {
	return fs.do(ctx, opAdmin, name, func(tx *txn) error {
		tx.noJournal = true
		m := fs.mode
		if err := f(&m); err != nil {
			return err
		}
		fs.setModeLocked(m)
		tx.abs.Set(localKey(fs.id, locMode), m.encode())
		return nil
	})
}

// EpochHistory returns the replicated epoch history.
func (rep *Replica) EpochHistory() ([]EpochStart, error) {
	fs := rep.fs
	v := fs.readView()
	defer v.close()
	b, err := v.r.Get(metaKey(metaEpochs))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fs.corrupt(err)
	}
	return decodeEpochs(b)
}

// recordsBytes estimates what applying records writes.
func recordsBytes(recs []*Record) int64 {
	n := int64(len(recs)) * metaBytes
	for _, r := range recs {
		for _, m := range r.Mutations {
			n += int64(len(m.Key) + len(m.Value))
		}
	}
	return n
}
