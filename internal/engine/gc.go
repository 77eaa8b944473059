package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// Block life cycle. A block file is deleted only when all of these hold:
//   - no holder key 'h' dom id * remains: no file system of the domain
//     (clones included) references it in its committed state;
//   - it is not in flight: no writer has written or deduplicated against it
//     without having committed yet;
//   - the seq at which its count reached zero is at or below every pin of
//     that file system (replication destinations and initial syncs that may
//     still need it);
//   - no reader that could still hold an older reference is active (read
//     epochs).
// Candidates come from the release queue 'g' (written in the same batch as
// the record that dropped the last reference) and from blocks written by
// transactions that failed (kept in memory; a crash leaves them to the
// orphan sweep).

// gcEntry is the value of a release queue key: fsid ‖ seq ‖ tag (store
// format 3; format 2 wrote fsid ‖ seq, still read).
type gcEntry struct {
	fsid uint64
	seq  uint64
}

// releaseValue returns the value of a release queue entry of the domain
// for fsid at seq, tagged unlike any other the domain's process writes: a
// pass tells a later release of a block from the one it took by comparing
// values (laterRelease, and the deletion of the entries it took), and
// (fsid, seq) alone repeats: replaceRange and purgeFS release at seq 0 (a
// replica that releases a block, references it again and releases it again
// writes the same value twice), and a replica that resyncs replays seqs it
// had applied. The domain's tags start at a random point (openDomain) so
// that a value written by an earlier run does not come back either.
func (d *domain) releaseValue(fsid, seq uint64) []byte {
	return be64(be64(be64(make([]byte, 0, 24), fsid), seq), d.releaseTags.Add(1))
}

func decodeGCEntry(v []byte) (gcEntry, error) {
	if len(v) != 24 && len(v) != 16 {
		return gcEntry{}, fmt.Errorf("%w: release queue entry", ErrCorrupt)
	}
	return gcEntry{fsid: binary.BigEndian.Uint64(v), seq: binary.BigEndian.Uint64(v[8:])}, nil
}

// queueCandidate remembers a block that may be unreferenced.
func (e *Engine) queueCandidate(d *domain, id blocks.ID) {
	d.mu.Lock()
	d.retired = append(d.retired, retired{epoch: math.MaxUint64, id: id})
	d.mu.Unlock()
	e.kickGC()
}

func (e *Engine) kickGC() {
	select {
	case e.gcKick <- struct{}{}:
	default:
	}
}

func (e *Engine) gcLoop() {
	defer e.wg.Done()
	t := time.NewTicker(e.opts.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		case <-e.gcKick:
		}
		if _, err := e.CollectGarbage(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
			e.log.Warn("block collection", "err", err)
		}
	}
}

// CollectGarbage runs one collection pass over every domain and returns the
// number of block files deleted.
func (e *Engine) CollectGarbage(ctx context.Context) (int, error) {
	e.gcMu.Lock()
	defer e.gcMu.Unlock()
	e.mu.Lock()
	doms := make([]*domain, 0, len(e.domains))
	for id, d := range e.domains {
		if e.ownsLocked(id) {
			doms = append(doms, d)
		}
	}
	e.mu.Unlock()
	e.m.gcRuns.Inc()
	total := 0
	defer func() { e.m.gcDeleted.Add(float64(total)) }()
	for _, d := range doms {
		n, err := e.collectDomain(ctx, d)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (e *Engine) collectDomain(ctx context.Context, d *domain) (int, error) {
	st := d.blockStore()
	if st == nil {
		return 0, nil
	}
	d.gcMu.Lock()
	defer d.gcMu.Unlock()
	if !e.mayDelete(d) {
		return 0, nil
	}
	before := st.Stats().DeletedBytes
	defer func() { e.m.gcReclaimed.Add(float64(st.Stats().DeletedBytes - before)) }()
	total := 0
	for {
		n, more, err := e.collectBatch(ctx, d)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

// collectBatch handles up to BatchEntries released blocks of a domain;
// more reports that a full batch was taken.
func (e *Engine) collectBatch(ctx context.Context, d *domain) (deleted int, more bool, err error) {
	// 1. Move queue entries whose pins allow it into the retired list.
	p := gcPrefix(d.id)
	it, err := e.kv.NewIter(p, upper(p))
	if err != nil {
		return 0, false, err
	}
	var ready []blocks.ID
	var readyKeys, readyVals [][]byte
	pinned := 0 // queue entries left for a later pass
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			it.Close()
			return 0, false, err
		}
		ge, err := decodeGCEntry(v)
		if err != nil {
			it.Close()
			return 0, false, err
		}
		if ge.seq >= e.releaseFloor(ge.fsid) {
			pinned++
			continue
		}
		id, err := blocks.IDFromBytes(it.Key()[len(p):])
		if err != nil {
			it.Close()
			return 0, false, fmt.Errorf("%w: release queue key: %v", ErrCorrupt, err)
		}
		ready = append(ready, id)
		readyKeys = append(readyKeys, append([]byte(nil), it.Key()...))
		readyVals = append(readyVals, append([]byte(nil), v...))
		if len(ready) >= e.opts.BatchEntries {
			break
		}
	}
	if err := it.Close(); err != nil {
		return 0, false, err
	}
	if len(ready) > 0 {
		if err := e.releasesDurable(d); err != nil {
			return 0, false, err
		}
	}
	taken := make(map[blocks.ID][]byte, len(ready))
	for i, id := range ready {
		taken[id] = readyVals[i]
	}
	d.mu.Lock()
	for _, id := range ready {
		d.retired = append(d.retired, retired{epoch: d.epoch, id: id})
	}
	// Later readers cannot see references older than this point.
	d.epoch++
	oldest := d.epoch
	for ep := range d.readers {
		oldest = min(oldest, ep)
	}
	var due, keep []retired
	for _, r := range d.retired {
		if r.epoch == math.MaxUint64 {
			// Candidates from failed writes: stamp them now.
			r.epoch = d.epoch - 1
		}
		if r.epoch < oldest {
			due = append(due, r)
		} else {
			keep = append(keep, r)
		}
	}
	d.retired = keep
	d.mu.Unlock()

	// 2. Delete what is still unreferenced and not in flight.
	more = len(ready) >= e.opts.BatchEntries
	for i, r := range due {
		if !e.mayDelete(d) {
			// Another node may own the domain by now (its blocks, its
			// references): leave the rest, and the queue entries, for
			// whoever owns it once ownership is sure again.
			d.mu.Lock()
			d.retired = append(d.retired, due[i:]...)
			d.mu.Unlock()
			e.log.Warn("block collection paused: ownership not surely valid", "domain", d.id, "left", len(due)-i)
			return deleted, false, nil
		}
		// The holders, the queue entry and the writers in flight are
		// looked at under d.mu, with the deletion: a writer registers in
		// flight under it before it looks for the block, so none can look,
		// commit its reference and leave between the holder check and the
		// in-flight check (the block deleted under a durable reference);
		// one that comes after the deletion writes the block again.
		d.mu.Lock()
		keep, err := e.stillNeeded(d, r.id, taken[r.id])
		if err != nil || keep {
			d.mu.Unlock()
			if err != nil {
				return deleted, false, err
			}
			continue
		}
		if d.inflight[r.id] > 0 {
			// A writer is using it: look again after its commit.
			d.retired = append(d.retired, retired{epoch: d.epoch, id: r.id})
			d.mu.Unlock()
			continue
		}
		err = d.blockStore().Delete(ctx, r.id)
		d.mu.Unlock()
		if err != nil {
			return deleted, false, fmt.Errorf("delete block %s: %w", r.id, err)
		}
		d.cache.drop(d.id, r.id)
		deleted++
	}
	if !more {
		d.mu.Lock()
		d.gcBacklog.Store(int64(pinned + len(d.retired)))
		d.mu.Unlock()
	}
	// 3. Forget processed queue entries (not synced: a lost delete is
	// redone, a redone delete is a no-op), but not one a later release of
	// the block has rewritten since step 1: that release is not handled
	// yet.
	if len(readyKeys) > 0 {
		b := e.kv.NewBatch()
		for i, k := range readyKeys {
			v, err := e.kv.Get(k)
			if errors.Is(err, kv.ErrNotFound) {
				continue
			}
			if err != nil {
				b.Close()
				return deleted, false, err
			}
			if bytes.Equal(v, readyVals[i]) {
				b.Delete(k)
			}
		}
		err := b.Commit(false)
		b.Close()
		if err != nil {
			return deleted, false, err
		}
	}
	return deleted, more, nil
}

// releasesDurable makes the releases a pass took from the queue durable
// before it acts on them. A batch is visible before its sync (Pebble's,
// and the committer's CommitAsync), and a release queued at seq 0 has no
// durable mark to wait for (replaceRange drops a replica's references in
// ingest, resync, RestartSync and PromoteEmpty; purgeFS those of a file
// system that is gone): deleting its block before that commit is durable
// would leave, after a crash, the references it dropped naming a block
// that is gone. A synced commit makes every batch committed before it
// durable, the releases read by the pass included. It deletes the queue's
// bare prefix, a key never written (Pebble commits nothing for an empty
// batch), under the domain's keys as the pass's own batch does.
func (e *Engine) releasesDurable(d *domain) error {
	b := e.kv.NewBatch()
	defer b.Close()
	b.Delete(gcPrefix(d.id))
	return b.Commit(true)
}

// mayDelete reports whether this engine may delete blocks of d: while its
// ownership has surely not run out (Options.Valid, when set) and, on a
// store shared domain by domain (Options.Shared), while it has d attached.
func (e *Engine) mayDelete(d *domain) bool {
	if e.opts.Shared && !e.owns(d.id) {
		return false
	}
	return e.opts.Valid == nil || e.opts.Valid(d.id)
}

// stillNeeded reports whether a block the pass may delete is held or has
// a later release (held, laterRelease). The caller holds d.mu and checks
// the blocks in flight next.
func (e *Engine) stillNeeded(d *domain, id blocks.ID, took []byte) (bool, error) {
	if held, err := e.held(d, id); err != nil || held {
		return held, err
	}
	return e.laterRelease(d, id, took)
}

// held reports whether any file system of the domain holds id. The
// collector checks it and then inflight under d.mu, and writers register
// in flight under d.mu before they look for a block, so a block is never
// deleted under a writer that is about to reference it or has just
// referenced it.
func (e *Engine) held(d *domain, id blocks.ID) (bool, error) {
	p := holderPrefix(d.id, id)
	it, err := e.kv.NewIter(p, upper(p))
	if err != nil {
		return false, err
	}
	defer it.Close()
	return it.First(), it.Error()
}

// laterRelease reports whether the block's release queue holds an entry
// other than the one this pass took for it (took: nil when the block was
// retired by an earlier pass, whose entry is gone). held answers from the
// visible state, and a file system's release of its last reference
// (holder gone, queue entry rewritten: one batch) is visible before it is
// durable; releasesDurable only covered the entries the pass had read.
// When such a release commits between the queue scan and held, the block
// stays for a later pass, which makes that release durable first: deleted
// now, a crash could bring the reference back naming a deleted block.
func (e *Engine) laterRelease(d *domain, id blocks.ID, took []byte) (bool, error) {
	v, err := e.kv.Get(gcKey(d.id, id))
	if errors.Is(err, kv.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !bytes.Equal(v, took), nil
}

// releaseFloor returns the lowest seq whose released blocks must stay for
// fsid: its pins, and anything past its durable mark (Pebble makes a batch
// visible before its WAL sync: a release seen early could be undone by a
// crash). MaxUint64 when the file system is gone.
func (e *Engine) releaseFloor(fsid uint64) uint64 {
	e.mu.Lock()
	fs := e.fss[fsid]
	e.mu.Unlock()
	if fs == nil {
		return math.MaxUint64
	}
	return min(fs.pinFloor(), fs.durable.Load()+1)
}

// SetPin pins journal records and released blocks from seq on: records with
// seq >= pin are kept, and blocks released at seq >= pin are not deleted.
// Replication sets one pin per destination (its acknowledged seq + 1) and
// per initial sync. Pins are durable.
func (rep *Replica) SetPin(name string, seq uint64) error {
	fs := rep.fs
	if name == "" || strings.ContainsRune(name, 0) {
		return fmt.Errorf("engine: pin name %q: %w", name, ErrInvalid)
	}
	fs.pinMu.Lock()
	defer fs.pinMu.Unlock()
	b := fs.e.kv.NewBatch()
	defer b.Close()
	b.Set(localKey(fs.id, locPin, []byte(name)...), encodeU64(seq))
	if err := b.Commit(true); err != nil {
		return fs.e.failed(err)
	}
	fs.pins[name] = seq
	return nil
}

// ClearPin removes a pin.
func (rep *Replica) ClearPin(name string) error {
	fs := rep.fs
	fs.pinMu.Lock()
	defer fs.pinMu.Unlock()
	b := fs.e.kv.NewBatch()
	defer b.Close()
	b.Delete(localKey(fs.id, locPin, []byte(name)...))
	if err := b.Commit(true); err != nil {
		return fs.e.failed(err)
	}
	delete(fs.pins, name)
	fs.e.kickGC()
	return nil
}

// Pins returns a copy of the pins.
func (rep *Replica) Pins() map[string]uint64 {
	fs := rep.fs
	fs.pinMu.Lock()
	defer fs.pinMu.Unlock()
	m := make(map[string]uint64, len(fs.pins))
	for k, v := range fs.pins {
		m[k] = v
	}
	return m
}

func (fs *FS) pinFloor() uint64 {
	fs.pinMu.Lock()
	defer fs.pinMu.Unlock()
	floor := uint64(math.MaxUint64)
	for _, s := range fs.pins {
		floor = min(floor, s)
	}
	for _, s := range fs.tempPins {
		floor = min(floor, s)
	}
	return floor
}

func (fs *FS) loadPins() error {
	p := localKey(fs.id, locPin)
	return kv.Scan(fs.e.kv, p, upper(p), func(k, v []byte) error {
		s, err := decodeU64(v)
		if err != nil {
			return err
		}
		fs.pins[string(k[len(p):])] = s
		return nil
	})
}

// tempRemover is a block store that can leave partial writes behind (a
// block directory's temporary files, an object store's unfinished
// multipart uploads) and remove them.
type tempRemover interface {
	RemoveTemps(ctx context.Context) (int, error)
}

// sweepOrphans runs after an unclean shutdown, before any file system is
// open: it removes partial writes and blocks that no file system holds
// (written by transactions that never committed, such as the uploads of a
// node killed before its metadata commit on a shared object store). On a
// shared store it deletes only while Options.Valid holds (the domain may
// belong to another node otherwise, who may have deduplicated against a
// block it sees unreferenced here); what it leaves waits for the next
// unclean open.
func (e *Engine) sweepOrphans(ctx context.Context) error {
	for _, d := range e.domains {
		st := d.blockStore()
		if st == nil {
			continue
		}
		if tr, ok := st.(tempRemover); ok {
			n, err := tr.RemoveTemps(ctx)
			if err != nil {
				return fmt.Errorf("engine: sweep domain %d: %w", d.id, err)
			}
			if n > 0 {
				e.log.Info("removed partial block writes after an unclean shutdown", "domain", d.id, "count", n)
			}
		}
		var orphans []blocks.ID
		err := st.Walk(ctx, func(id blocks.ID) error {
			held, err := e.held(d, id)
			if err != nil {
				return err
			}
			if held {
				return nil
			}
			// A queued release may be pinned by a destination: leave it.
			if _, err := e.kv.Get(gcKey(d.id, id)); err == nil {
				return nil
			} else if !errors.Is(err, kv.ErrNotFound) {
				return err
			}
			orphans = append(orphans, id)
			return nil
		})
		if err != nil {
			return fmt.Errorf("engine: sweep domain %d: %w", d.id, err)
		}
		for i, id := range orphans {
			if e.opts.Valid != nil && !e.opts.Valid(d.id) {
				e.log.Warn("orphan sweep stopped: ownership not surely valid", "domain", d.id, "left", len(orphans)-i)
				orphans = orphans[:i]
				break
			}
			if err := st.Delete(ctx, id); err != nil {
				return fmt.Errorf("engine: sweep domain %d: %w", d.id, err)
			}
		}
		if len(orphans) > 0 {
			e.log.Info("removed orphan blocks after an unclean shutdown", "domain", d.id, "count", len(orphans))
		}
	}
	return nil
}
