package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// opKind says in which modes an operation may run.
type opKind uint8

const (
	opMutate opKind = iota // client mutation: primary only, journaled
	opApply                // replica apply: replica only, writes records itself
	opAdmin                // mode changes and maintenance: any mode
)

// op is a unit of work queued to the committer.
type op struct {
	kind opKind
	name string
	fn   func(tx *txn) error
	// inflight are block ids the submitter registered before queueing;
	// the committer releases them after the group commit.
	inflight []blocks.ID
	done     chan struct{}
	err      error
	seq      uint64 // journal seq of the record, 0 when none
	// visible, when not nil, is closed once the operation's group is
	// committed to the store (readable), before its sync: the committer
	// runs the next such operation during that sync (applyPipelined).
	// txErr is the operation's own outcome, and readable when its group
	// was committed to the store (zero: nothing was), both set before
	// visible closes.
	visible  chan struct{}
	txErr    error
	readable time.Time
	// lazy: a client mutation answered once visible whose group may be
	// committed without a sync of its own (see pending.lazy); cleared
	// when its transaction says it must be durable (txn.needSync).
	lazy bool
}

// do queues fn to the committer and waits for its durable outcome.
func (fs *FS) do(ctx context.Context, kind opKind, name string, fn func(tx *txn) error) error {
	_, err := fs.doOp(ctx, &op{kind: kind, name: name, fn: fn})
	return err
}

func (fs *FS) doOp(ctx context.Context, o *op) (uint64, error) {
	if err := fs.enqueue(ctx, o); err != nil {
		return 0, err
	}
	// Once queued the operation runs; wait for its durable outcome even if
	// ctx ends, so that a reply never claims less than what happened.
	<-o.done
	return o.seq, o.err
}

// doVisible queues o to run in a pipelined group of its kind and returns
// once that group is committed to the store, before its sync: a
// replica's apply (applyPipelined) or a client mutation (run). err is the
// operation's own outcome (or why it did not run); wait returns once the
// group is durable, with the error that stopped it from becoming durable
// (nil when it did, or when the operation did not run). wait must be
// called either way. o.readable is then when the group became readable
// (the committer's clock when the store's commit returned; zero when
// nothing was committed).
func (fs *FS) doVisible(ctx context.Context, o *op) (wait func() error, err error) {
	o.visible = make(chan struct{})
	wait = func() error {
		<-o.done
		if o.err != nil && o.err != o.txErr {
			return o.err // the commit failed
		}
		return nil
	}
	if o.kind == opApply && fs.runInline(o) {
		// Its group ended here: committed (visible closed) or failed
		// (answered, done closed).
		select {
		case <-o.visible:
			return wait, o.txErr
		default:
			return wait, o.err
		}
	}
	if err := fs.enqueue(ctx, o); err != nil {
		return func() error { return nil }, err
	}
	select {
	case <-o.visible:
		return wait, o.txErr
	case <-o.done:
		return wait, o.err
	}
}

// runInline runs o, an operation of a pipelined group of its own (a
// replica's apply, doVisible), on the caller's goroutine when the
// committer is idle — waiting on an empty queue, no group under way —
// and reports whether it did; otherwise (or when the file system is
// closed or failed: enqueue says why) o is for the queue. o's group is
// then ended as the committer would end it (applyPipelined): readable
// when this returns, synced and answered by the finisher. The caller
// saves two goroutine hand-offs per apply (to the committer, and back
// when visible), each a wake-up waiting for a CPU on a loaded machine
// (lag23). Holding closeMu shared keeps the file system open meanwhile,
// as an enqueue does.
func (fs *FS) runInline(o *op) bool {
	fs.closeMu.RLock()
	defer fs.closeMu.RUnlock()
	if fs.closed || fs.e.Err() != nil || fs.dom.keyError() != nil || len(fs.queue) > 0 {
		return false
	}
	if !fs.runMu.TryLock() {
		return false // the committer is running something
	}
	defer fs.runMu.Unlock()
	if len(fs.queue) > 0 {
		return false // queued before o: theirs is the turn
	}
	o.done = make(chan struct{})
	fs.stats.queued.Add(1)
	fs.stats.inline.Add(1)
	fs.applyPipelined([]*op{o})
	return true
}

// enqueue hands o to the committer.
func (fs *FS) enqueue(ctx context.Context, o *op) error {
	o.done = make(chan struct{})
	fs.closeMu.RLock()
	if fs.closed {
		fs.closeMu.RUnlock()
		fs.dom.doneInflight(o.inflight...)
		return ErrClosed
	}
	if err := fs.e.Err(); err != nil {
		fs.closeMu.RUnlock()
		fs.dom.doneInflight(o.inflight...)
		return err
	}
	if err := fs.dom.keyError(); err != nil {
		fs.closeMu.RUnlock()
		fs.dom.doneInflight(o.inflight...)
		return err
	}
	select {
	case fs.queue <- o:
		fs.stats.queued.Add(1)
	case <-ctx.Done():
		fs.closeMu.RUnlock()
		fs.dom.doneInflight(o.inflight...)
		return ctx.Err()
	}
	fs.closeMu.RUnlock()
	return nil
}

// run is the committer loop.
//
// Groups of client mutations are pipelined: while one group's sync is
// under way (the finisher waits for it), the committer runs the
// operations that arrive against the next group's batch, and ends that
// group as soon as the sync is done (or the group is full, or holds half
// of many submitters: see splitAt), so that the transactions' CPU
// overlaps the sync and one sync still covers what arrived during the
// previous one. An ended group goes to the applier, which commits it to
// the store (Pebble's WAL write and memtable apply) while the committer
// runs the next group's transactions over its writes (groupBase), and
// then to the finisher, which answers each group's callers, in order,
// only once it is durable. Any other operation
// (replica apply, snapshots, mode changes, maintenance: they read the
// durable mark or act outside the store) waits until every pipelined
// group is durable and answered, and runs in a group of its own kind
// synchronously.
func (fs *FS) run() {
	fs.pipe = make(chan *pending, pipeDepth)
	fs.applyQ = make(chan *pending, pipeDepth)
	fs.synced = make(chan struct{}, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var prevDurable time.Time
		// carried: lazy groups committed without a sync, in order, not
		// answered yet: the next sync makes them durable.
		var carried []*pending
		// bound: fires Options.LazySyncDelay after the first lazy group
		// carried, when no later sync came: the log is synced for them
		// then.
		bound := time.NewTimer(fs.e.opts.LazySyncDelay)
		bound.Stop()
		defer bound.Stop()
		for {
			var p *pending
			select {
			case q, ok := <-fs.pipe:
				if !ok {
					fs.finishCarried(carried, nil)
					return
				}
				p = q
			case <-bound.C:
				carried = fs.finishCarried(carried, nil)
				continue
			}
			if p.barrier != nil {
				carried = fs.finishCarried(carried, nil)
				close(p.barrier)
				continue
			}
			if p.lazy && p.err == nil && p.wait == nil && fs.e.Err() == nil {
				fs.lazyHeld.Add(1)
				if len(carried) == 0 {
					bound.Reset(fs.e.opts.LazySyncDelay)
				}
				carried = append(carried, p)
				fs.piped.Add(-1)
				select {
				case fs.synced <- struct{}{}:
				default:
				}
				continue
			}
			if len(carried) > 0 {
				carried = fs.finishCarried(carried, p)
			}
			fs.finishGroup(p)
			if !p.durableAt.IsZero() {
				// The group's own sync: from its commit, or from the
				// end of the previous group's sync if that was later.
				from := p.applied
				if prevDurable.After(from) {
					from = prevDurable
				}
				fs.syncTime.Store(ewma(fs.syncTime.Load(), int64(p.durableAt.Sub(from))))
				prevDurable = p.durableAt
			}
			if !p.start.IsZero() {
				fs.lastCommit.Store(int64(time.Since(p.start)))
			}
			fs.piped.Add(-1)
			select {
			case fs.synced <- struct{}{}:
			default:
			}
		}
	}()
	go func() {
		defer close(fs.pipe)
		for p := range fs.applyQ {
			fs.applyGroup(p)
		}
	}()
	defer func() {
		close(fs.applyQ)
		<-finished
		close(fs.done)
	}()
	maxGroup := fs.e.opts.MaxGroup
	// prev is the size of the last group, peak the largest of the recent
	// ones: see the wait below. writers is the most operations recently
	// handed to the committer and not yet answered, work the committer's
	// time per operation (ns, a moving average): see splitAt.
	var prev, peak, peakAge, writers, writersAge int
	var work int64
	var next *op // taken from the queue, not yet run
	// The committer holds runMu except while it waits for an operation
	// with none in hand (see runInline); start took it for this goroutine.
	defer fs.runMu.Unlock()
	for {
		o := next
		next = nil
		if o == nil {
			fs.runMu.Unlock()
			select {
			case o = <-fs.queue:
				fs.runMu.Lock()
			case <-fs.stop:
				fs.runMu.Lock()
				// Nothing can be queued after stop: drain what was.
				for {
					select {
					case o := <-fs.queue:
						fs.commitGroup([]*op{o})
					default:
						return
					}
				}
			}
		}
		if o.visible != nil && o.kind == opApply {
			// A replica's apply: the applies queued now share its
			// group, which is committed without waiting for the
			// previous group's sync (see applyPipelined).
			group := []*op{o}
		applies:
			for len(group) < maxGroup {
				select {
				case o := <-fs.queue:
					if o.visible == nil || o.kind != opApply {
						next = o
						break applies
					}
					group = append(group, o)
				default:
					break applies
				}
			}
			fs.applyPipelined(group)
			continue
		}
		if o.kind != opMutate {
			// Others of its kind queued now share its group.
			group := []*op{o}
		others:
			for len(group) < maxGroup {
				select {
				case o := <-fs.queue:
					if o.kind == opMutate {
						next = o
						break others
					}
					group = append(group, o)
				default:
					break others
				}
			}
			fs.commitGroup(group)
			continue
		}
		p := fs.beginGroup(true)
		t0 := time.Now()
		fs.addOp(p, o)
		visible, lazy := o.visible != nil, o.lazy
		busy := time.Since(t0)
		var timer *time.Timer
		var deadline <-chan time.Time
		// An operation's work is the committer's and the applier's.
		split := splitAt(writers, maxGroup, time.Duration(work+fs.applyWork.Load()), time.Duration(fs.syncTime.Load()))
		splitHit := false
	collect:
		for len(p.group) < maxGroup {
			if len(p.group) >= split && fs.piped.Load() < maxSplitPiped {
				// Half of the active submitters are in: commit now, so
				// that the other half's transactions run during this
				// group's sync instead of after it.
				splitHit = true
				break collect
			}
			if timer == nil && fs.piped.Load() == 0 && prev > 1 && peak > 1 {
				// Several submitters are active (the last group had more
				// than one operation), and some are between a reply and
				// their next call: once no sync is under way, wait a
				// little (at most half a commit) for up to as many as the
				// recent peak, so that one sync covers them all instead of
				// every other one. A lone submitter never waits.
				timer = time.NewTimer(min(time.Duration(fs.lastCommit.Load())/2, maxGroupWait))
				deadline = timer.C
			}
			// more stays nil when a sync ends or the wait is over: look again.
			var more *op
			switch {
			case fs.piped.Load() > 0:
				// The previous group syncs: run what arrives meanwhile.
				select {
				case more = <-fs.queue:
				case <-fs.synced:
				}
			case deadline != nil && len(p.group) < peak:
				select {
				case more = <-fs.queue:
				case <-fs.synced:
				case <-deadline:
					deadline = nil
				}
			default:
				select {
				case more = <-fs.queue:
				default:
					break collect
				}
			}
			if more == nil {
				continue
			}
			if more.kind != opMutate {
				next = more
				break collect
			}
			t0 := time.Now()
			fs.addOp(p, more)
			busy += time.Since(t0)
			visible = visible || more.visible != nil
			lazy = lazy && more.lazy
		}
		if timer != nil {
			timer.Stop()
		}
		prev = len(p.group)
		if peakAge++; prev >= peak || peakAge > 64 {
			peak, peakAge = prev, 0
		}
		// Handed over and not answered: this group, the groups syncing
		// and what is queued.
		w := int(fs.stats.queued.Load() - fs.stats.answered.Load())
		if writersAge++; w >= writers || writersAge > 64 {
			writers, writersAge = w, 0
		}
		// Handed to the applier, the group's commit overlaps the
		// transactions of the operations that arrive meanwhile: those
		// queued now, or the other half of a split. Otherwise (a lone
		// submitter, or every submitter in this group, all waiting for
		// it) the committer has nothing to do meanwhile, and commits it
		// itself, as before the applier: a hand-off would only add a
		// wake-up to the group's wait.
		p.inline = !splitHit && len(fs.queue) == 0
		// A lone submitter's group (the recent groups held one
		// operation each and none is syncing): nothing runs during its
		// sync, so the committer waits for the sync and answers it
		// itself. Through the finisher, the caller's wait took one more
		// goroutine hand-off (committer, finisher, caller), and on this
		// VM each costs a thread wake-up (create12).
		// A caller answered once its group is readable (doVisible) is
		// not made to wait for the sync: such a group goes to the
		// finisher.
		// Nor is one behind lazy groups the finisher holds: it answers
		// them once this group's sync is done, before this group.
		p.await = p.inline && prev == 1 && peak == 1 && fs.piped.Load() == 0 && !visible && fs.lazyHeld.Load() == 0
		// A group of such callers only, none of which needs it durable
		// now, is committed without a sync: the next sync covers it (the
		// finisher answers it then), one sync where there were two.
		p.lazy = lazy && kv.CanSyncLog(fs.e.kv)
		t0 = time.Now()
		fs.endGroup(p, true)
		busy += time.Since(t0)
		work = ewma(work, int64(busy)/int64(len(p.group)))
	}
}

// maxGroupWait bounds how long the committer waits for more operations
// before a group commit.
const maxGroupWait = 500 * time.Microsecond

// pipeDepth bounds the groups committed and waiting for their sync.
const pipeDepth = 4

// Splitting groups. In a closed loop (each submitter waits for its answer
// before its next call) every submitter is in the same group: its
// transactions run while no sync is under way, and the sync while the
// committer has nothing to do, so a round costs the group's work plus a
// sync. Split in two halves, one half's transactions run during the other
// half's sync, and a round costs about two halves' work or two syncs,
// whichever is more: a gain while a sync takes less than the whole
// group's work. So once at least minSplitWriters operations are handed
// over at a time and the recent syncs were shorter than their work, a
// group is committed as soon as half of them are in it, while at most
// maxSplitPiped-1 other groups sync. With fewer submitters the syncs that
// larger groups save are worth more than the overlap (each commit costs
// CPU, on 2 cores).
const (
	minSplitWriters = 16
	maxSplitPiped   = 2
)

// splitAt returns the size at which a pipelined group is committed
// without waiting for its turn, given the most operations recently handed
// to the committer and not yet answered, the time per operation of the
// committer and the applier together (both are on a group's way to its
// sync) and the recent syncs' time.
func splitAt(writers, maxGroup int, work, sync time.Duration) int {
	if writers < minSplitWriters || sync >= work*time.Duration(writers) {
		return maxGroup
	}
	return (writers + 1) / 2
}

// ewma moves a moving average a sixteenth of the way towards x (x when
// the average is still 0).
func ewma(avg, x int64) int64 {
	if avg == 0 {
		return x
	}
	return avg + (x-avg)/16
}

// pending is a group committed to the store whose sync may not be done
// yet: the finisher waits for it, then answers the group's callers. A
// barrier (drain) carries only a channel the finisher closes.
type pending struct {
	group []*op
	txs   []*txn
	seq   uint64 // the file system's last seq after the group
	b     kv.Batch
	// ov holds a pipelined group's writes of the file system's keys
	// (relative), one final value per key, over the batch: its
	// transactions read each other's writes from it, and the batch gets
	// them once, when the group ends. A group of mkdirs in one directory
	// rewrites the directory's inode and the file system's counters in
	// every transaction; written through, each version was inserted into
	// the batch's index and Pebble's memtable (3 of the 7 keys of a
	// mkdir). Nil for other groups (replica apply, ingest and resync
	// write the file system's keys straight into the batch).
	ov      *kv.Overlay
	wait    func() error // nil: nothing to wait for (empty batch, or waited)
	start   time.Time
	barrier chan struct{}
	// applied: when the batch was committed to the store (its sync
	// started); durableAt: when its sync was done (zero: no sync)
	applied, durableAt time.Time
	// stored: the applier is done with the group (committed it to the
	// store, or refused it: err), before it hands it to the finisher.
	stored atomic.Bool
	// err: why the applier did not commit the group; the finisher
	// answers its callers with it.
	err error
	// inline: a group of client mutations that the committer commits
	// itself when the applier is idle (see run).
	inline bool
	// await: an inline group of a lone submitter, whose sync the
	// committer waits for and which it answers itself (see run).
	await bool
	// lazy: a group whose callers were answered once it was visible
	// (doVisible) and none of which needs it durable before a later
	// change: committed without a sync, it becomes durable with the next
	// synced group (or the log's sync at a drain: finishCarried), which
	// the finisher waits for before it answers it. Only on a store whose
	// unsynced commits a later sync covers (kv.LogSyncer).
	lazy bool
}

// commitGroup runs a group of operations that are not pipelined (see run)
// once every pipelined group is durable, each as its own journaled
// transaction against one batch, commits them with one synced write and
// answers them.
func (fs *FS) commitGroup(group []*op) {
	fs.drain()
	p := fs.beginGroup(false)
	for _, o := range group {
		fs.addOp(p, o)
	}
	fs.endGroup(p, false)
}

// applyPipelined commits a group of a replica's applies (doVisible) like a
// group of client mutations: readable once committed to the store, synced
// by the finisher while the committer runs the next group, answered once
// durable. A replica's reader then sees the records that arrive during a
// sync as soon as they are applied, instead of one sync later: the state
// it sees is still the source's at some seq (records apply whole, in
// order, and were durable at the source), and what the replica reports
// as applied — acks, LastReplicatedTimestamp, a promotion's recovery
// point — is published only once durable (onDurable; a promotion drains
// the pipeline first). Pebble makes a synced batch readable before its
// sync anyway; this only stops the next batch from waiting for it.
func (fs *FS) applyPipelined(group []*op) {
	if len(fs.inStore) > 0 {
		// Client mutations ran before (this is a primary, and the
		// applies will be refused, or it was one): this group's
		// transactions read the store, and it goes to the finisher
		// after those groups.
		fs.drain()
		fs.inStore = fs.inStore[:0]
	}
	p := fs.beginGroup(false)
	for _, o := range group {
		fs.addOp(p, o)
	}
	fs.endGroup(p, true)
}

// beginGroup starts a group against a new batch; a pipelined group (of
// client mutations) collects its writes of the file system's keys in its
// overlay, over the groups the applier has not committed yet
// (groupBase).
func (fs *FS) beginGroup(pipelined bool) *pending {
	p := &pending{b: fs.e.kv.NewBatch(), seq: fs.lastSeq}
	if pipelined {
		p.ov = kv.NewOverlay(fs.groupBase())
	}
	return p
}

// groupBase returns what a new group of client mutations reads its file
// system's keys from: the store, under the overlays of the groups handed
// to the applier and not yet committed to the store, the newest on top.
// Each such overlay holds its group's final value of every key the group
// wrote, and nothing but the committer writes the file system's keys,
// so the store read under them is the state after the last of them,
// whether or not the applier has committed any of them meanwhile. The
// groups the applier is done with leave the chain: the oldest remaining
// overlay is put over the store itself (the group it was written over is
// in the store now, with the same values).
func (fs *FS) groupBase() kv.Reader {
	n := 0
	for n < len(fs.inStore) && fs.inStore[n].stored.Load() {
		n++
	}
	fs.inStore = slices.Delete(fs.inStore, 0, n)
	var store kv.Reader = fs.reader(fs.e.kv)
	if len(fs.inStore) == 0 {
		return store
	}
	fs.inStore[0].ov.Rebase(store)
	return fs.inStore[len(fs.inStore)-1].ov
}

// addOp runs o as the group's next transaction.
func (fs *FS) addOp(p *pending, o *op) {
	fs.stats.ran.Add(1)
	p.group = append(p.group, o)
	if err := fs.e.Err(); err != nil {
		o.err, o.txErr = err, err // not run: its own outcome too (doVisible)
		return
	}
	if r := fs.refused.Load(); r != nil && p.ov != nil {
		o.err = *r // would read a refused group's writes
		return
	}
	tx := fs.newTxn(p.b, p.ov, p.seq+1)
	o.err = fs.runTxn(tx, o, p.b)
	o.txErr = o.err
	if tx.needSync {
		o.lazy = false
	}
	// Blocks this transaction wrote or needs stay in flight until the
	// commit.
	o.inflight = append(o.inflight, tx.put...)
	o.inflight = append(o.inflight, tx.hold...)
	if o.err != nil {
		fs.releaseUnused(tx.put, nil)
		return
	}
	switch {
	case tx.rec != nil:
		p.seq = tx.rec.Seq
		o.seq = p.seq
	case tx.resetSeq:
		p.seq = tx.advance
	case tx.advance > p.seq:
		p.seq = tx.advance
	}
	p.txs = append(p.txs, tx)
}

// endGroup commits the group's batch with one synced write. A group of
// client mutations (with an overlay) goes to the applier, which commits
// it; another pipelined group goes to the finisher once committed; any
// other is waited for and answered here.
func (fs *FS) endGroup(p *pending, pipelined bool) {
	if p.ov != nil {
		if !p.inline || fs.stats.handed.Load() != fs.forwarded.Load() || fs.refused.Load() != nil {
			fs.handOver(p)
			return
		}
		// The applier has handed every group to the finisher: this one
		// follows them there.
		writeAbs(p.b, fs.prefix, p.ov)
	}
	if err := fs.commitBatch(p); err != nil {
		fs.failPending(p, err)
		return
	}
	if (!pipelined || p.await) && p.wait != nil {
		// Durable before the callbacks, as the replica's and admin
		// operations expect.
		err := p.wait()
		p.wait = nil
		if err != nil {
			fs.failPending(p, fmt.Errorf("commit: %w", err))
			return
		}
	}
	// The next group reads this one's writes and allocates after it.
	fs.lastSeq = p.seq
	for _, tx := range p.txs {
		for _, f := range tx.onCommit {
			f()
		}
	}
	if !pipelined || p.await {
		if p.await && !p.applied.IsZero() {
			p.durableAt = time.Now()
			fs.syncTime.Store(ewma(fs.syncTime.Load(), int64(p.durableAt.Sub(p.applied))))
			fs.stats.awaited.Add(1)
		}
		fs.finishGroup(p)
		if !p.start.IsZero() {
			fs.lastCommit.Store(int64(time.Since(p.start)))
		}
		return
	}
	fs.piped.Add(1)
	for _, o := range p.group {
		o.readable = p.applied // before the finisher may answer it
	}
	// The finisher gets the group before its visible waiters are woken,
	// when the pipe has room: the goroutine woken last runs first once
	// the committer waits (the runtime's run-next slot), and the waiter
	// (a replica's stream, whose records are readable now) should not
	// queue behind the finisher and the store's WAL writer, woken by the
	// commit, whose write and sync can hold the thread for milliseconds.
	// A full pipe (pipeDepth groups syncing) does not delay the waiters.
	select {
	case fs.pipe <- p:
		fs.wakeVisible(p)
	default:
		fs.wakeVisible(p)
		fs.pipe <- p
	}
}

// wakeVisible tells a committed group's doVisible callers that it is
// readable. Groups are woken in commit order (by the committer, or by the
// applier while it commits every group), so the last client mutation
// woken is the newest (SyncVisible).
func (fs *FS) wakeVisible(p *pending) {
	for _, o := range p.group {
		if o.visible != nil {
			if o.kind == opMutate {
				fs.lastVisible.Store(o)
			}
			close(o.visible)
		}
	}
}

// SyncVisible returns once every client mutation answered before its
// sync (CreateVisible) before this call is durable, or with the failure
// that stopped one from becoming durable (the engine is stopped then).
// Groups become durable in commit order, so it waits for the last one.
// Without such a mutation pending it returns at once.
func (fs *FS) SyncVisible(ctx context.Context) error {
	o := fs.lastVisible.Load()
	if o == nil {
		return nil
	}
	select {
	case <-o.done:
	default:
		// Its group may wait for a sync that nothing else brings (a
		// lazy group): an operation of another kind drains the
		// pipeline first, which syncs the log for it (finishCarried).
		if err := fs.do(ctx, opAdmin, "sync visible", func(*txn) error { return nil }); err != nil {
			return err
		}
		select {
		case <-o.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if o.err != nil && o.err != o.txErr {
		return o.err
	}
	return nil
}

// commitBatch commits the group's batch, if it holds anything, with a
// synced write whose wait it leaves in p.wait, after the block files it
// references are durable.
func (fs *FS) commitBatch(p *pending) error {
	if p.b.Empty() {
		return nil
	}
	if err := fs.syncBlocks(); err != nil {
		return fmt.Errorf("sync block directories: %w", err)
	}
	if p.lazy {
		// Not a durable commit: p.start stays zero (not counted).
		if err := p.b.Commit(false); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		p.applied = time.Now()
		return nil
	}
	p.start = time.Now()
	wait, err := kv.CommitAsync(p.b)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	p.wait = wait
	p.applied = time.Now()
	return nil
}

// handOver gives an ended group of client mutations to the applier. The
// next group allocates after it and reads its writes through its overlay
// (groupBase), which nothing writes from now on.
func (fs *FS) handOver(p *pending) {
	p.ov.Freeze()
	fs.lastSeq = p.seq
	fs.piped.Add(1)
	fs.inStore = append(fs.inStore, p)
	fs.stats.handed.Add(1)
	fs.applyQ <- p
}

// applyGroup is the applier's work on a group handed over (or a
// barrier): it commits the group's writes to the store, in the order the
// committer ended the groups, and hands it to the finisher.
func (fs *FS) applyGroup(p *pending) {
	if p.barrier == nil {
		if fs.storeGroup(p) {
			fs.wakeVisible(p)
		}
		p.stored.Store(true)
	}
	fs.pipe <- p
	if p.barrier == nil {
		fs.forwarded.Add(1)
	}
}

// storeGroup commits a handed-over group to the store; it reports whether
// it did (the group is readable).
func (fs *FS) storeGroup(p *pending) bool {
	if len(p.group) > 0 {
		t0 := time.Now()
		defer func() {
			fs.applyWork.Store(ewma(fs.applyWork.Load(), int64(time.Since(t0))/int64(len(p.group))))
		}()
	}
	if fs.e.Err() != nil {
		return false // an earlier group failed and this one read its writes: the finisher answers
	}
	if r := fs.refused.Load(); r != nil {
		p.err = *r
		return false
	}
	writeAbs(p.b, fs.prefix, p.ov)
	if err := fs.commitBatch(p); err != nil {
		// Fatal (the finisher answers with the engine's error) unless
		// another node took the file system over: then this group and
		// every later one, which read its writes, are refused.
		err = fs.e.failed(err)
		p.err = err
		p.wait = nil
		if fs.e.Err() == nil {
			fs.refused.CompareAndSwap(nil, &err)
		}
		return false
	}
	for _, tx := range p.txs {
		for _, f := range tx.onCommit {
			f()
		}
	}
	return true
}

// drain waits until every pipelined group is durable and answered.
func (fs *FS) drain() {
	if fs.piped.Load() == 0 && fs.lazyHeld.Load() == 0 {
		return
	}
	b := &pending{barrier: make(chan struct{})}
	fs.applyQ <- b
	<-b.barrier
}

// finishCarried answers the lazy groups carried (committed without a
// sync, in order) once they are durable: by next's sync, which it waits
// for (next is then finished as usual, its wait done), or, when next is
// nil or has nothing to sync, by a sync of the store's log. A failed
// sync fails them as it fails a group. It returns carried emptied.
func (fs *FS) finishCarried(carried []*pending, next *pending) []*pending {
	if len(carried) == 0 {
		return carried
	}
	var err error
	switch {
	case next != nil && next.wait != nil:
		if err = next.wait(); err != nil {
			// next fails with it (finishGroup: its wait is the error).
			w := err
			next.wait = func() error { return w }
		} else {
			next.wait = nil
			next.durableAt = time.Now()
		}
	case fs.e.Err() == nil:
		_, err = kv.SyncLog(fs.e.kv)
	}
	for _, c := range carried {
		if err != nil {
			fs.failPending(c, fmt.Errorf("commit: %w", err))
			continue
		}
		fs.finishGroup(c)
	}
	fs.lazyHeld.Add(-int64(len(carried)))
	return carried[:0]
}

// finishGroup waits for a committed group's sync and answers its callers.
func (fs *FS) finishGroup(p *pending) {
	if p.wait != nil {
		if err := p.wait(); err != nil {
			fs.failPending(p, fmt.Errorf("commit: %w", err))
			return
		}
		p.durableAt = time.Now()
	}
	if p.b != nil {
		p.b.Close()
	}
	err := p.err
	if err == nil {
		// An earlier group's commit or sync failed: this one read its
		// writes.
		err = fs.e.Err()
	}
	if err != nil {
		for _, o := range p.group {
			o.err, o.seq = err, 0
		}
		fs.answer(p.group)
		return
	}
	if !p.start.IsZero() {
		fs.stats.commits.Add(1)
		fs.stats.groupOps.Add(uint64(len(p.group)))
		fs.e.m.observeCommit(len(p.group), time.Since(p.start))
	}
	for _, tx := range p.txs {
		for _, f := range tx.onDurable {
			f()
		}
	}
	for _, tx := range p.txs {
		if tx.rec != nil {
			fs.stats.records.Add(1)
			fs.releaseUnused(tx.put, tx.rec.AddedRefs)
		}
	}
	fs.publishDurable(p.seq)
	fs.answer(p.group)
}

// answer releases the group's blocks in flight and wakes its callers.
func (fs *FS) answer(group []*op) {
	for _, o := range group {
		fs.dom.doneInflight(o.inflight...)
		fs.stats.answered.Add(1)
		close(o.done)
	}
}

// failPending stops the engine with err and answers the group with it.
func (fs *FS) failPending(p *pending, err error) {
	fs.failGroup(p.group, err)
	if p.b != nil {
		p.b.Close()
	}
	fs.answer(p.group)
}

func (fs *FS) syncBlocks() error {
	if fs.dom.blockStore() == nil {
		return nil
	}
	return fs.dom.blockStore().Sync(fs.ctx)
}

func (fs *FS) failGroup(group []*op, err error) {
	err = fs.e.failed(err)
	for _, o := range group {
		o.err = err
		o.seq = 0
	}
}

// releaseUnused hands blocks that were written but are not referenced by a
// committed record to the collector (they are orphans otherwise).
func (fs *FS) releaseUnused(put, referenced []blocks.ID) {
	for _, id := range put {
		if !slices.Contains(referenced, id) {
			fs.e.queueCandidate(fs.dom, id)
		}
	}
}

// runTxn executes one operation in tx and, on success, moves its writes into
// the group's batch b with its journal record. Only a transaction that
// succeeds writes anything into b: the operation reaches neither b nor
// the group's overlay (its writes stay in tx.ov and tx.abs until then),
// so a failed operation leaves nothing in the group it shared.
func (fs *FS) runTxn(tx *txn, o *op, b kv.Batch) error {
	switch o.kind {
	case opMutate:
		if fs.mode.Mode != ModePrimary {
			return ErrReadOnly
		}
	case opApply:
		if fs.mode.Mode != ModeReplica {
			return fmt.Errorf("engine: %s to %s (%v): %w", o.name, fs.name, fs.mode.Mode, ErrNotReplica)
		}
	}
	tx.summary.Op = o.name
	if err := o.fn(tx); err != nil {
		return err
	}
	return tx.commit(b)
}

// txn is one transaction inside a group: reads see the group's earlier
// transactions and its own writes; writes reach the batch only on success
// (commit, after its last error). A transaction has no access to the
// group's batch: a failed one's writes, of the file system's keys (ov)
// and of any other (abs), are dropped with it, never committed with the
// group (a client told of an error must find nothing of its operation
// applied, and no error path can leave half of its writes behind).
type txn struct {
	fs *FS
	// abs holds the writes of absolute keys (the server's, the domain's,
	// the file system's local keys and journal, holders, the release
	// queue; a replica's apply and sync write the file system's keys
	// here too), over the group's batch: reads through it see the
	// group's earlier transactions and these writes.
	abs     *kv.Overlay
	ov      *kv.Overlay // relative keys, over the group's overlay or abs
	group   *kv.Overlay // the group's overlay (nil: writes go to the batch)
	seq     uint64      // the seq this transaction's record gets
	now     time.Time
	summary OpSummary
	refs    map[blocks.ID]int64
	dBytes  int64
	dFiles  int64
	put     []blocks.ID // blocks written by this transaction (in flight)
	// hold: blocks this transaction only needs present (a replica's
	// apply, ingest or resync), in flight until the commit; unlike put,
	// a failed transaction does not hand them to the collector, since it
	// did not write them.
	hold []blocks.ID
	// keep: blocks of hold that stay in flight after the commit, for the
	// retry of an apply that found others missing (FS.retryHold)
	keep []blocks.ID
	// noJournal: the transaction writes no record (local-only changes).
	noJournal bool
	rec       *Record
	onCommit  []func()
	// onDurable runs once the group's commit is durable, before its
	// callers are answered (in commit order)
	onDurable []func()
	// generation state, adopted by the file system on success; bootSeq
	// is the seq of the record that bumped the boot counter in use
	boot, genCounter, bootSeq uint64
	// copied: blocks referenced by copied reference counts (clones)
	copied map[blocks.ID]bool
	// extents counts the pending extents this transaction wrote
	extents uint64
	// next is the next inode number as this transaction leaves it (0 =
	// untouched)
	next uint64
	// advance: the seq the file system reaches when this transaction
	// commits without a record of its own (replica apply)
	advance uint64
	// resetSeq: the file system's seq becomes advance even when that is
	// lower (a resync begins or is abandoned: the journal starts over).
	resetSeq bool
	// needSync: the operation's caller waits for it to be durable even
	// if it was queued to be answered once visible (op.lazy)
	needSync bool
}

// newTxn starts a transaction of a group over batch b; group is the
// group's overlay, or nil when the transaction's writes of the file
// system's keys go into b (on success).
func (fs *FS) newTxn(b kv.Batch, group *kv.Overlay, seq uint64) *txn {
	// One pair of overlays serves the committer's transactions in turn: a
	// transaction's writes leave them when it commits (or are dropped
	// with it), and nothing reads them after its operation has run.
	if fs.txAbs == nil {
		fs.txAbs = kv.NewOverlay(b)
	} else {
		fs.txAbs.Reuse(b)
	}
	var base kv.Reader = fs.reader(fs.txAbs)
	if group != nil {
		base = group
	}
	if fs.txOv == nil {
		fs.txOv = kv.NewOverlay(base)
	} else {
		fs.txOv.Reuse(base)
	}
	return &txn{
		fs: fs, abs: fs.txAbs, ov: fs.txOv, group: group, seq: seq, now: fs.e.clock(),
		boot: fs.boot, genCounter: fs.genCounter, bootSeq: fs.bootSeq,
	}
}

func (tx *txn) ctx() context.Context { return tx.fs.ctx }

// get returns the value of a relative key; found=false when absent.
func (tx *txn) get(key []byte) ([]byte, bool, error) {
	v, err := tx.ov.Get(key)
	if errors.Is(err, kv.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, tx.fs.corrupt(err)
	}
	return v, true, nil
}

func (tx *txn) set(key, value []byte) { tx.ov.Set(key, value) }
func (tx *txn) del(key []byte)        { tx.ov.Delete(key) }

// setOwned is set of a value the transaction built for it and never
// changes again: the overlay takes it over without a copy (see
// kv.Overlay.SetOwned).
func (tx *txn) setOwned(key, value []byte) { tx.ov.SetOwned(key, value) }

// iter iterates relative keys in [lo, hi) seeing this transaction's writes.
func (tx *txn) iter(lo, hi []byte) (kv.Iterator, error) { return tx.ov.NewIter(lo, hi) }

func (tx *txn) note(inos []uint64, names ...string) {
	tx.summary.Inos = append(tx.summary.Inos, inos...)
	tx.summary.Names = append(tx.summary.Names, names...)
}

// ref changes the reference count of a block by delta.
func (tx *txn) ref(id blocks.ID, delta int64) {
	if tx.refs == nil {
		tx.refs = map[blocks.ID]int64{}
	}
	tx.refs[id] += delta
}

func (tx *txn) usage(dBytes, dFiles int64) {
	tx.dBytes += dBytes
	tx.dFiles += dFiles
}

// writeBlock stores data as a block (in flight until the group commits) and
// returns its id.
func (tx *txn) writeBlock(data []byte) (blocks.ID, error) {
	d := tx.fs.dom
	id := d.blockHasher().Sum(data)
	d.addInflight(id)
	tx.put = append(tx.put, id)
	if err := d.blockStore().Put(tx.ctx(), id, data); err != nil {
		return id, blockWriteErr(err)
	}
	return id, nil
}

func blockWriteErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return fmt.Errorf("%w: %w", ErrIO, err)
}

// commit finalises reference counts, usage and the journal record, and
// moves everything into the group's batch b (or overlay): the only writes
// into b, after the transaction's last error.
func (tx *txn) commit(b kv.Batch) error {
	var added, zero []blocks.ID
	ids := make([]blocks.ID, 0, len(tx.refs))
	for id, d := range tx.refs {
		if d != 0 {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b blocks.ID) int { return bytes.Compare(a[:], b[:]) })
	for _, id := range ids {
		d := tx.refs[id]
		var n uint64
		v, ok, err := tx.get(refKey(id))
		if err != nil {
			return err
		}
		if ok {
			if n, err = decodeU64(v); err != nil {
				return tx.fs.corrupt(err)
			}
		}
		nn := int64(n) + d
		if nn < 0 {
			return tx.fs.corrupt(fmt.Errorf("%w: reference count of block %s below zero", ErrCorrupt, id))
		}
		if nn == 0 {
			tx.del(refKey(id))
			zero = append(zero, id)
		} else {
			tx.set(refKey(id), encodeU64(uint64(nn)))
		}
		if d > 0 {
			added = append(added, id)
		}
	}
	for id := range tx.copied {
		if tx.refs[id] <= 0 {
			added = append(added, id)
		}
	}
	slices.SortFunc(added, func(a, b blocks.ID) int { return bytes.Compare(a[:], b[:]) })
	var usage *usageRec
	if tx.dBytes != 0 || tx.dFiles != 0 {
		u, err := tx.loadUsage()
		if err != nil {
			return err
		}
		u.bytes = addClamp(u.bytes, tx.dBytes)
		u.files = addClamp(u.files, tx.dFiles)
		tx.set(metaKey(metaUsage), u.encode())
		usage = &u
	}
	// Later transactions of the group allocate after this one. A failed
	// group commit stops the engine, so adopting on success is safe.
	adopt := func() {
		tx.fs.boot, tx.fs.genCounter, tx.fs.bootSeq = tx.boot, tx.genCounter, tx.bootSeq
		if tx.next != 0 {
			tx.fs.meta.next = tx.next
		}
		if usage != nil {
			tx.fs.meta.usage, tx.fs.meta.usageOK = *usage, true
		}
	}
	if tx.noJournal {
		tx.flush(b)
		adopt()
		return nil
	}
	if tx.ov.Len() == 0 {
		tx.abs.ApplyTo(b)
		return nil // no change of the file system's keys: no record
	}
	rec := &Record{
		Epoch: tx.fs.mode.Epoch, Seq: tx.seq, Time: tx.now, Op: tx.summary,
		AddedRefs: added, ZeroRefs: zero,
		Mutations: make([]Mutation, 0, tx.ov.Len()),
	}
	// The mutations share the overlay's keys and values: nothing changes
	// them in place (flush hands the same bytes on, and the batch copies
	// what it is given).
	tx.ov.Writes(func(k, v []byte, deleted bool) {
		m := Mutation{Key: k, Delete: deleted}
		if !deleted {
			m.Value = v
		}
		rec.Mutations = append(rec.Mutations, m)
	})
	// The record is encoded into the committer's buffer: the batch copies
	// it (kv.Batch.Set), and nothing else keeps it. A new buffer per
	// record was an allocation of its size per transaction — for a small
	// file's write, more than its data.
	enc := rec.AppendEncode(tx.fs.recBuf[:0])
	if cap(enc) <= maxKeptRecordBuf {
		tx.fs.recBuf = enc[:0]
	}
	if len(enc) > tx.fs.e.opts.MaxRecordBytes {
		return fmt.Errorf("engine: %s: record of %d bytes: %w", tx.summary.Op, len(enc), ErrTooLarge)
	}
	tx.flush(b)
	b.Set(journalKey(tx.fs.id, rec.Seq), enc)
	tx.fs.applyRefEffects(b, rec)
	tx.rec = rec
	adopt()
	return nil
}

// maxKeptRecordBuf bounds the committer's record buffer kept between
// transactions: a larger record (a big write's pending extents) gets its
// own, dropped after it.
const maxKeptRecordBuf = 64 << 10

// flush writes the writes of absolute keys into b, then moves those of
// the file system's keys into the group's overlay, or writes them into b
// under the file system's prefix (later: they win where both wrote a key).
func (tx *txn) flush(b kv.Batch) {
	tx.abs.ApplyTo(b)
	if tx.group != nil {
		tx.ov.MoveTo(tx.group)
		return
	}
	writeAbs(b, tx.fs.prefix, tx.ov)
}

// writeAbs writes the overlay's writes of relative keys into b under
// prefix (one key buffer: the batch copies what it is given).
func writeAbs(b kv.Batch, prefix []byte, ov *kv.Overlay) {
	k := make([]byte, 0, 64)
	ov.Writes(func(rel, v []byte, deleted bool) {
		k = append(append(k[:0], prefix...), rel...)
		if deleted {
			b.Delete(k)
		} else {
			b.Set(k, v)
		}
	})
}

// writer takes writes: a group's batch, or a transaction's abs.
type writer interface {
	Set(key, value []byte)
	Delete(key []byte)
}

// applyRefEffects maintains the server-local holder keys and release queue
// that follow from a record's reference changes (same batch as the record).
func (fs *FS) applyRefEffects(b writer, rec *Record) {
	for _, id := range rec.AddedRefs {
		b.Set(holderKey(fs.dom.id, id, fs.id), nil)
	}
	for _, id := range rec.ZeroRefs {
		b.Delete(holderKey(fs.dom.id, id, fs.id))
		b.Set(gcKey(fs.dom.id, id), fs.dom.releaseValue(fs.id, rec.Seq))
	}
}

func addClamp(v uint64, d int64) uint64 {
	if d < 0 && uint64(-d) > v {
		return 0
	}
	return uint64(int64(v) + d)
}

// newGen returns a generation number that no (inode, generation) pair of
// this lineage has used: epoch ‖ boot counter ‖ counter. The boot counter
// is bumped (in this transaction) the first time after open and whenever
// the counter runs out.
func (tx *txn) newGen() (uint64, error) {
	if tx.boot == 0 || tx.genCounter >= 1<<24-1 {
		var b uint64
		v, ok, err := tx.get(metaKey(metaBoot))
		if err != nil {
			return 0, err
		}
		if ok {
			if b, err = decodeU64(v); err != nil {
				return 0, tx.fs.corrupt(err)
			}
		}
		tx.boot = b + 1
		tx.genCounter = 0
		tx.bootSeq = tx.seq
		tx.set(metaKey(metaBoot), encodeU64(tx.boot))
	}
	tx.genCounter++
	return (tx.fs.mode.Epoch&0xffff)<<48 | (tx.boot&0xffffff)<<24 | tx.genCounter, nil
}

// genDurable reports whether the boot counter of the generations this
// transaction hands out is durable: the record that bumped it is. Until
// it is, a crash can undo the bump, and the next boot hands out the same
// generations again (with the same inode numbers, whose counter is undone
// too): an inode made meanwhile and lost in the crash would come back as
// another file with the same (inode, generation), and a client's handle
// of the lost one would name that file instead of being stale.
func (tx *txn) genDurable() bool {
	return tx.boot != 0 && tx.bootSeq != tx.seq && tx.fs.durable.Load() >= tx.bootSeq
}

// usageRec is the 'M' "usage" value.
type usageRec struct{ bytes, files uint64 }

func (u usageRec) encode() []byte { return be64(be64(nil, u.bytes), u.files) }

func (tx *txn) loadUsage() (usageRec, error) {
	if tx.fs.meta.usageOK {
		return tx.fs.meta.usage, nil
	}
	v, ok, err := tx.get(metaKey(metaUsage))
	if err != nil || !ok {
		return usageRec{}, err
	}
	return decodeUsage(v, tx.fs)
}

// metaCache holds the committer's copies of counters it alone writes, so
// that a transaction need not read them back from the batch. Apply and
// bulk writers of 'M' keys (mkfs, clone) invalidate it.
type metaCache struct {
	next    uint64 // next inode number; 0 = unknown
	usage   usageRec
	usageOK bool
}

func (m *metaCache) invalidate() { *m = metaCache{} }

func decodeUsage(v []byte, fs *FS) (usageRec, error) {
	if len(v) != 16 {
		return usageRec{}, fs.corrupt(fmt.Errorf("%w: usage record", ErrCorrupt))
	}
	return usageRec{bytes: binary.BigEndian.Uint64(v), files: binary.BigEndian.Uint64(v[8:])}, nil
}
