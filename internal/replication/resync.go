package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/blocks"
)

// Resync: making an existing file system of the same lineage an exact copy
// of the source (failback into the original), sending only differences.
// The destination has called engine.Replica.BeginResync (keeping the keys its
// own journal touched after the fork). The source takes one snapshot at
// seq S and sends, as ranges to replace: the keys its journal touched
// after the fork, the keys the destination asks for (its own), or — when
// either journal no longer reaches back to the fork — the content of every
// range whose checksum differs. Then it says done; the destination
// finishes at S once every request was answered and replays from S+1.

const (
	resyncRangeKeys = 256  // keys per checksummed range
	resyncSumsFrame = 512  // checksums per frame
	needPage        = 4096 // keys asked for per ack
)

// errResyncKeys: the key-set path is not possible (journal truncated).
var errResyncKeys = errors.New("replication: journals do not reach back to the fork")

// resync runs the source's side; it returns the ack that shows the
// destination consistent.
func (o *outbound) resync(ctx context.Context, s *stream, a *ack) (*ack, error) {
	snap, err := o.fs.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	defer snap.Close()
	if err := o.syncPin(snap.Seq+1, "resync"); err != nil {
		return nil, err
	}
	o.update(func(st *Status) {
		st.State, st.Message = StateEnabling, "resynchronising the destination (sending differences only)"
		st.Sync = SyncProgress{Active: true, Started: o.n.now()}
	})
	o.n.log.Info("resync started", "replication", o.spec.ID, "fs_id", o.spec.SourceFS, "dest_region", o.spec.DestRegion,
		"dest_fs", o.spec.DestFS, "seq", snap.Seq)
	send := func(ranges []engine.SyncRange) error {
		return o.sendRanges(ctx, s, snap, ranges)
	}
	path := "checksums"
	if keys, err := o.forkKeys(ctx, snap, a.Fork); err == nil {
		path = "journal"
		o.update(func(st *Status) { st.Sync.Method, st.Sync.KeysTotal = path, uint64(len(keys)) })
		var batch []engine.SyncRange
		for _, k := range keys {
			batch = append(batch, singleton(k))
			if len(batch) == needPage {
				if err := send(batch); err != nil {
					return nil, err
				}
				batch = nil
			}
		}
		if err := send(batch); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, errResyncKeys) {
		return nil, err
	} else if err := o.sendSums(ctx, s, snap); err != nil {
		return nil, err
	}
	o.n.log.Info("resync sent", "replication", o.spec.ID, "method", path, "seq", snap.Seq)
	o.update(func(st *Status) { st.Sync.Method = path })
	// The destination's own requests may have come with the first ack.
	if err := o.answer(ctx, s, snap, a); err != nil {
		return nil, err
	}
	done := resyncDone{base: snap.Seq, top: snap.Seq, epoch: snap.Epoch, time: snap.Time}
	if err := s.send(msgResyncDone, done.encode()); err != nil {
		return nil, err
	}
	for {
		select {
		case a := <-s.acks:
			if err := o.onAck(s, a); err != nil {
				return nil, err
			}
			if !a.Syncing && a.AppliedSeq >= snap.Seq {
				// The failback is done: the fork no longer needs keeping.
				o.fs.ClearPin(ForkPin)
				var p SyncProgress
				o.update(func(st *Status) {
					st.Sync.Active, st.Sync.Done, st.Sync.Finished = false, true, o.n.now()
					p = st.Sync
				})
				o.n.saveProgress(RoleSource, o.spec.ID, o.snapshot, true)
				o.logSyncDone("resync done", p, "method", p.Method, "keys", p.KeysDone, "seq", a.AppliedSeq)
				return a, nil
			}
			if err := o.answer(ctx, s, snap, a); err != nil {
				return nil, err
			}
		case err := <-s.errc:
			return nil, err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// forkKeys returns the keys the source's journal touched after the fork,
// up to the snapshot; errResyncKeys when that is not known.
func (o *outbound) forkKeys(ctx context.Context, snap *engine.Snapshot, fork uint64) ([][]byte, error) {
	if fork == 0 {
		return nil, errResyncKeys
	}
	start, err := o.fs.JournalStart()
	if err != nil {
		return nil, err
	}
	if start > fork+1 {
		return nil, errResyncKeys
	}
	keys, err := o.fs.KeysTouched(ctx, fork+1, snap.Seq)
	if errors.Is(err, engine.ErrTruncated) || errors.Is(err, engine.ErrTooLarge) {
		return nil, errResyncKeys
	}
	return keys, err
}

// answer sends what an ack asks for: blocks, keys and differing ranges.
func (o *outbound) answer(ctx context.Context, s *stream, snap *engine.Snapshot, a *ack) error {
	if len(a.Missing) > 0 {
		if err := o.pushBlocks(ctx, s, a.Missing, true); err != nil {
			return err
		}
	}
	var ranges []engine.SyncRange
	for _, k := range a.Need {
		ranges = append(ranges, singleton(k))
	}
	ranges = append(ranges, a.Differ...)
	return o.sendRanges(ctx, s, snap, ranges)
}

// singleton is the range holding exactly key k.
func singleton(k []byte) engine.SyncRange {
	return engine.SyncRange{Lo: bytes.Clone(k), Hi: append(bytes.Clone(k), 0)}
}

// sendRanges fills ranges with the snapshot's content and sends them.
func (o *outbound) sendRanges(ctx context.Context, s *stream, snap *engine.Snapshot, ranges []engine.SyncRange) error {
	m := &rangesMsg{seq: snap.Seq, epoch: snap.Epoch, time: snap.Time}
	size := 0
	flush := func() error {
		if len(m.ranges) == 0 {
			return nil
		}
		p := m.encode()
		if err := s.send(msgRanges, p); err != nil {
			return err
		}
		n := uint64(len(m.ranges))
		o.update(func(st *Status) {
			st.ShippedBytes += uint64(len(p))
			if st.Sync.Active {
				st.Sync.BytesDone += uint64(len(p))
				st.Sync.KeysDone += n
			}
		})
		m.ranges, size = nil, 0
		return nil
	}
	for _, r := range ranges {
		it, err := snap.Iter(r.Lo, r.Hi)
		if err != nil {
			return err
		}
		r.Pairs = nil
		for ok := it.First(); ok; ok = it.Next() {
			v, err := it.Value()
			if err != nil {
				it.Close()
				return err
			}
			r.Pairs = append(r.Pairs, engine.Mutation{Key: bytes.Clone(it.Key()), Value: bytes.Clone(v)})
			size += len(it.Key()) + len(v) + 8
		}
		err = it.Error()
		it.Close()
		if err != nil {
			return err
		}
		m.ranges = append(m.ranges, r)
		if size >= o.n.opts.ChunkBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// sendSums sends the checksums of consecutive ranges of the snapshot that
// together cover the whole key space.
func (o *outbound) sendSums(ctx context.Context, s *stream, snap *engine.Snapshot) error {
	var sums []rangeSum
	err := rangeChecksums(ctx, snap, func(lo, hi []byte, sum [32]byte) error {
		sums = append(sums, rangeSum{lo: lo, hi: hi, sum: sum})
		if len(sums) < resyncSumsFrame {
			return nil
		}
		err := s.send(msgRangeSums, encodeRangeSums(sums))
		sums = nil
		return err
	})
	if err != nil {
		return err
	}
	if len(sums) > 0 {
		return s.send(msgRangeSums, encodeRangeSums(sums))
	}
	return nil
}

// resyncRx is a destination's resync bookkeeping for one stream.
type resyncRx struct {
	toAsk       [][]byte           // own keys not asked for yet
	asked       map[string]bool    // own keys asked for, not answered
	differ      map[string]bool    // differing ranges (by lo) asked for, not answered
	waiting     []*rangesMsg       // ranges waiting for blocks
	blocksAsked map[blocks.ID]bool // blocks asked for by the waiting ranges
	done        *resyncDone
	newDiff     []engine.SyncRange // to report in the next ack
}

func (rx *receiver) startResync() error {
	keys, err := rx.in.fs.ResyncKeys()
	if err != nil {
		return err
	}
	rx.rs = &resyncRx{toAsk: keys, asked: map[string]bool{}, differ: map[string]bool{}}
	return nil
}

// handleResync processes a resync message.
func (rx *receiver) handleResync(f frame) error {
	rs := rx.rs
	switch f.typ {
	case msgRanges:
		m, err := decodeRanges(f.p)
		if err != nil {
			return err
		}
		rs.waiting = append(rs.waiting, m)
		return rx.ingestWaiting()
	case msgRangeSums:
		sums, err := decodeRangeSums(f.p)
		if err != nil {
			return err
		}
		for _, s := range sums {
			got, err := rx.in.fs.RangeChecksum(rx.ctx, s.lo, s.hi)
			if err != nil {
				return err
			}
			if got != s.sum {
				rs.differ[rangeKey(s.lo, s.hi)] = true
				rs.newDiff = append(rs.newDiff, engine.SyncRange{Lo: s.lo, Hi: s.hi})
			}
		}
	case msgResyncDone:
		d, err := decodeResyncDone(f.p)
		if err != nil {
			return err
		}
		rs.done = d
	}
	return nil
}

// ingestWaiting ingests the waiting ranges whose blocks are present.
func (rx *receiver) ingestWaiting() error {
	rs := rx.rs
	for len(rs.waiting) > 0 {
		m := rs.waiting[0]
		err := rx.withLocalBlocks(func() error {
			return rx.in.fs.IngestRanges(rx.ctx, m.seq, m.epoch, m.time, m.ranges)
		})
		var mb *engine.MissingBlocksError
		if errors.As(err, &mb) {
			if rs.blocksAsked == nil {
				rs.blocksAsked = map[blocks.ID]bool{}
			}
			for _, id := range mb.IDs {
				if !rs.blocksAsked[id] {
					rs.blocksAsked[id] = true
					rx.missing = append(rx.missing, id)
					rx.askRewind = true // as ever (the source pushes them and waits)
				}
			}
			return nil // retried when blocks arrive
		}
		if err != nil {
			return rx.outcome(err)
		}
		rs.waiting = rs.waiting[1:]
		for _, r := range m.ranges {
			delete(rs.differ, rangeKey(r.Lo, r.Hi))
			if len(r.Hi) == len(r.Lo)+1 && bytes.HasPrefix(r.Hi, r.Lo) && r.Hi[len(r.Hi)-1] == 0 {
				delete(rs.asked, string(r.Lo))
			}
		}
	}
	rs.blocksAsked = nil
	return nil
}

// rangeKey names a range exactly (a singleton [k, k‖0) and a range
// starting at k are different requests).
func rangeKey(lo, hi []byte) string {
	return fmt.Sprintf("%d:%s|%t|%s", len(lo), lo, hi != nil, hi)
}

// finishResync ends the resync once the source is done and every request
// was answered.
func (rx *receiver) finishResync() error {
	rs := rx.rs
	if rs.done == nil || len(rs.toAsk) > 0 || len(rs.asked) > 0 || len(rs.differ) > 0 || len(rs.waiting) > 0 {
		return nil
	}
	d := rs.done
	if err := rx.in.fs.FinishResync(rx.ctx, d.base, d.top, d.epoch, d.time); err != nil {
		return rx.outcome(err)
	}
	rx.rs = nil
	rx.log.Debug("resync finished", "seq", d.base)
	return nil
}

// resyncAck adds the resync requests to an ack.
func (rx *receiver) resyncAck(a *ack) {
	rs := rx.rs
	a.Resync, a.Fork = true, rx.in.spec.Fork
	for len(rs.toAsk) > 0 && len(a.Need) < needPage {
		k := rs.toAsk[0]
		rs.toAsk = rs.toAsk[1:]
		rs.asked[string(k)] = true
		a.Need = append(a.Need, k)
	}
	a.Differ, rs.newDiff = rs.newDiff, nil
}

// ForkPoint returns the last seq that two file systems of one lineage
// share (engine.ForkPoint).
func ForkPoint(local, remote []engine.EpochStart, localLast, remoteLast uint64) uint64 {
	return engine.ForkPoint(local, remote, localLast, remoteLast)
}

// PrepareResync readies fs, an existing file system of the source's
// lineage, to be resynced from a source whose epoch history and durable
// seq are given: it finds the fork point and the keys fs's own journal
// touched after it (kept for the source to send back; unknown when fs's
// journal no longer reaches back, and then range checksums are compared),
// and begins the resync. The caller must have kept what it wants of fs's
// divergent state (a clone, a loss report) before. It returns the fork
// point, for InboundSpec.Fork.
func PrepareResync(ctx context.Context, fs *engine.Replica, remote []engine.EpochStart, remoteLast uint64) (uint64, error) {
	local, err := fs.EpochHistory()
	if err != nil {
		return 0, err
	}
	last := fs.DurableSeq()
	fork := ForkPoint(local, remote, last, remoteLast)
	var keys [][]byte
	if fork > 0 {
		keys, err = fs.KeysTouched(ctx, fork+1, last)
		switch {
		case err == nil:
			if keys == nil {
				keys = [][]byte{}
			}
		case errors.Is(err, engine.ErrTruncated), errors.Is(err, engine.ErrTooLarge):
			keys, fork = nil, 0
		default:
			return 0, err
		}
	}
	if err := fs.BeginResync(ctx, keys); err != nil {
		return 0, err
	}
	return fork, nil
}

// rangeBounds cuts a snapshot's keys into ranges of resyncRangeKeys keys:
// the first key of each range after the first.
func rangeBounds(snap *engine.Snapshot) ([][]byte, error) {
	it, err := snap.Iter(nil, nil)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var bounds [][]byte
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n%resyncRangeKeys == 0 && n > 0 {
			bounds = append(bounds, bytes.Clone(it.Key()))
		}
		n++
	}
	return bounds, it.Error()
}

// rangeChecksums calls f with the checksum of each of the consecutive
// ranges of the snapshot (resyncRangeKeys keys each) that together cover
// the whole key space, in order; hi is nil for the last range.
func rangeChecksums(ctx context.Context, snap *engine.Snapshot, f func(lo, hi []byte, sum [32]byte) error) error {
	bounds, err := rangeBounds(snap)
	if err != nil {
		return err
	}
	var lo []byte
	for i := 0; i <= len(bounds); i++ {
		var hi []byte
		if i < len(bounds) {
			hi = bounds[i]
		}
		sum, err := snap.Checksum(lo, hi)
		if err != nil {
			return err
		}
		if err := f(lo, hi, sum); err != nil {
			return err
		}
		lo = hi
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}
