package replication

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/blocks"
)

// OutboundSpec names a replication this region ships.
type OutboundSpec struct {
	ID         string
	SourceFS   string // engine name of the local source
	DestRegion string
	DestFS     string // engine name at the destination (for status and logs)
}

// maxBlocksFrame bounds the block bytes of one frame.
const maxBlocksFrame = 8 << 20

// leaseFrameBytes bounds the frames (block bytes, record batches) of a
// source under hard fencing: a heartbeat, whose echo renews the lease,
// waits for the frame being sent, so a frame must cross the link well
// within the 2/5 of the lease an acknowledgement may take (ackLimit).
// 1 MiB crosses a link of 10 Mbit/s in under a second.
const leaseFrameBytes = 1 << 20

// frameBytes is the bound of a frame that would be max bytes without
// hard fencing.
func (o *outbound) frameBytes(max int) int {
	if o.n.opts.Lease > 0 {
		return min(max, leaseFrameBytes)
	}
	return max
}

// errNeedsResync: the journal can no longer bring the destination up to
// date (records or blocks it needs are gone); the next session resyncs it.
var errNeedsResync = errors.New("replication: the destination needs a resync: records or blocks it lacks are no longer kept")

// errAckSilence: a stream went without an acknowledgement for longer than
// ackLimit (it ends; the source reconnects at once, the attempt itself
// having waited that long).
var errAckSilence = errors.New("replication: no acknowledgement")

// goneError: the destination refused the stream because the replication
// no longer exists there.
type goneError struct{ Gone }

func (g *goneError) Error() string { return "replication: destination: " + g.Reason }

// pinName is the journal pin a replication holds on its source.
func pinName(id string) string { return outboundPinPrefix + id }

const outboundPinPrefix = "repl:"

// OutboundPinID says which replication the journal pin called name is the
// source's pin of (AddOutbound), if it is one.
func OutboundPinID(name string) (id string, ok bool) {
	return strings.CutPrefix(name, outboundPinPrefix)
}

// AddOutbound starts shipping a source file system to its destination.
// The journal is pinned from the destination's acknowledged point (or the
// initial sync's first snapshot) until RemoveOutbound. Adding an existing
// id is a no-op.
func (n *Node) AddOutbound(spec OutboundSpec) error {
	fs, err := n.opts.Engine.Replica(spec.SourceFS)
	if err != nil {
		return err
	}
	if _, _, err := n.client(spec.DestRegion); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return engine.ErrClosed
	}
	if _, ok := n.outbound[spec.ID]; ok {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	o := &outbound{
		n: n, spec: spec, fs: fs, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		gate: verifyGate{wake: make(chan struct{})},
		st: Status{ID: spec.ID, Role: RoleSource, FS: spec.SourceFS, PeerRegion: spec.DestRegion, PeerFS: spec.DestFS,
			State: StateEnabling, LinkDownSince: n.now()},
	}
	kept := n.loadProgress(RoleSource, spec.ID)
	kept.restore(&o.st)
	if kept.Released { // the mark is read here only
		// The retention limits had released the destination's pin before
		// this process (Progress.Released, saved before the pin was
		// cleared): it stays released until a resync. Before, the mark
		// was in memory only and the first acknowledgement after a
		// restart pinned the journal again at the old applied point.
		o.st.released, o.releasedAt = true, math.MaxUint64 // only a sync's pin clears it
		if _, ok := fs.Pins()[pinName(spec.ID)]; ok {
			if err := fs.ClearPin(pinName(spec.ID)); err != nil {
				return err
			}
		}
		o.st.State, o.st.Message = StateError, "" // status says why (releasedMessage)
	} else if pin, ok := fs.Pins()[pinName(spec.ID)]; ok && !kept.LastReplicated.IsZero() {
		// Until the destination answers, it holds what it had confirmed
		// before this process: everything up to LastReplicated, up to
		// the pin (its acknowledged point, durable with the journal's
		// pins). It was ENABLED then (a confirmation after its initial
		// sync); a destination that answers otherwise says so.
		o.st.LastReplicated, o.st.Applied = kept.LastReplicated, pin-1
		o.st.State = StateEnabled
		o.pinned = pin
	}
	o.leased = make(chan struct{})
	if n.opts.Lease > 0 {
		// With hard fencing a source takes writes only under a lease an
		// answer of its destination granted (renewLease): until the first
		// one, its writes are stopped. A replication that ran before this
		// process (its pin is durable) may have a destination that
		// promoted itself while this source was down (it waits 1.5 leases
		// from its last contact, which may be long past); a new one (a
		// creation, or one whose pin a removal cleared before the process
		// ended) has a destination that began waiting for its promotion
		// when it added the replication, which may be any time before
		// (a creation's answer that came late, a retried creation, a
		// source restarted before its first pin). A lease granted here,
		// from this process's start, let the source take writes beside
		// a destination promoted meanwhile. The first acknowledgement
		// whose lease (from the source time of what it answers: the
		// stream's request, then heartbeats) runs past now lifts the
		// stop. A file system stopped already (its lease ran out before,
		// a planned failover, a newer epoch) records this reason too: the
		// acknowledgement lifts only it.
		if mode, _ := fs.Mode(); mode != engine.ModeReplica {
			if err := fs.Stop(context.Background(), engine.StopLease); err != nil {
				return fmt.Errorf("replication: stop the writes of %s until its destination answers: %w", spec.SourceFS, err)
			}
			n.log.Info("replication lease: writes wait for the destination's first answer", "replication", spec.ID, "fs_id", spec.SourceFS,
				"stops", fs.Stops())
		}
	} else {
		close(o.leased)
	}
	n.outbound[spec.ID] = o
	fs.ShipWrites(true)
	go o.run()
	o.retainDone = make(chan struct{})
	go o.retentionLoop()
	if n.opts.Lease > 0 {
		o.leaseDone = make(chan struct{})
		go o.leaseLoop()
	}
	if n.opts.VerifyInterval > 0 {
		o.verifyDone = make(chan struct{})
		go o.verifyLoop()
	}
	return nil
}

// RemoveOutbound stops shipping and releases the journal pin.
func (n *Node) RemoveOutbound(id string) {
	n.mu.Lock()
	o := n.outbound[id]
	delete(n.outbound, id)
	for i, s := range n.suspended {
		if s.ID == id {
			n.suspended = append(n.suspended[:i], n.suspended[i+1:]...)
			break
		}
	}
	n.mu.Unlock()
	if o == nil {
		return
	}
	o.halt()
	o.fs.ClearPin(pinName(id))
	// The lease's stop is the file system's: a replication of the same
	// file system added since (a configuration created again once this
	// one was deleted) keeps it until its own destination answers.
	// AddOutbound stops under n.mu, so none is added in between.
	n.mu.Lock()
	shared := false
	for _, x := range n.outbound {
		shared = shared || x.spec.SourceFS == o.spec.SourceFS
	}
	if !shared {
		o.releaseLease()
	}
	n.mu.Unlock()
	n.forgetProgress(RoleSource, id)
}

// OutboundStatus returns one shipped replication's status.
func (n *Node) OutboundStatus(id string) (Status, bool) {
	n.mu.Lock()
	o := n.outbound[id]
	n.mu.Unlock()
	if o == nil {
		return Status{}, false
	}
	return o.status(), true
}

// Drain waits until the destination has durably applied everything the
// source had made durable when Drain was called (planned failover: call
// it once the source refuses new writes). It gives up when the
// replication is removed or the node closes meanwhile: nothing would
// ship any more.
func (n *Node) Drain(ctx context.Context, id string) (uint64, error) {
	n.mu.Lock()
	o := n.outbound[id]
	n.mu.Unlock()
	if o == nil {
		return 0, fmt.Errorf("replication %s: %w", id, ErrNotFound)
	}
	target := o.fs.DurableSeq()
	for {
		st := o.status()
		if st.Applied >= target && !st.Sync.Active {
			return target, nil
		}
		if st.State == StateError {
			return 0, fmt.Errorf("replication %s: %s", id, st.Message)
		}
		n.mu.Lock()
		removed := n.outbound[id] != o
		n.mu.Unlock()
		if removed {
			return 0, fmt.Errorf("replication %s: removed while draining: %w", id, ErrNotFound)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-n.stop:
			return 0, fmt.Errorf("replication %s: draining: %w", id, engine.ErrClosed)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// ErrNotFound: no such replication here.
var ErrNotFound = errors.New("replication: not found")

type outbound struct {
	n      *Node
	spec   OutboundSpec
	fs     *engine.Replica
	ctx    context.Context // ends when the replication is removed
	cancel context.CancelFunc
	done   chan struct{}

	// leaseMu orders the lease's stops and lifts (leaseLoop, renewLease,
	// releaseLease): a lease renewed while the loop found it expired is
	// not stopped after the renewal's lift.
	leaseMu sync.Mutex
	// pinMu orders the changes of the destination's journal pin with
	// the retention limits' release mark (checkRetention, onAck, syncPin):
	// an acknowledgement does not pin the journal again over a release
	// made meanwhile, nor a release clear a sync's new pin.
	pinMu sync.Mutex

	mu      sync.Mutex // guards the fields below
	st      Status
	pinned  uint64
	pinTime time.Time
	avgRec  float64 // running average of record bytes (pending-bytes estimate)
	// Hard fencing: the lease runs until leaseUntil; the engine records
	// whether the lease stopped the source's writes (engine.StopLease).
	leaseUntil time.Time
	// leased is closed once an acknowledgement granted a lease that ran
	// past its arrival (at once without hard fencing): AwaitLease.
	leased     chan struct{}
	leaseDone  chan struct{}
	retainDone chan struct{}
	// blockGone: a block the destination asked for was not found here
	// (collected): the next session resyncs the destination.
	blockGone bool
	// release: what the retention limits' last release in this process
	// saw (zero after a restart): the status message says it.
	release releaseNote
	// syncKind: "initial sync" or "resync", the kind of the last sync
	// that pinned the journal (syncPin).
	syncKind string
	// releasedAt: the destination's applied point when the limits
	// released its pin. An acknowledgement past it, on a stream that was
	// shipping then, says the destination applies again (space came back):
	// ENABLED again, and the pin is set again once it is within the limits.
	releasedAt uint64
	// ackAt is when the stream's last acknowledgement arrived (its
	// request was sent, before the first).
	ackAt time.Time
	// noUpgradeUntil: the destination did not upgrade a stream; until
	// then streams go over HTTP/2 without asking again.
	noUpgradeUntil time.Time
	vs             verifyStats
	// syncIters counts the iterators opened to read initial-sync chunks
	// (one per range, not per chunk), syncBufs the chunk buffers
	// allocated (reused once sent); a test counts them.
	syncIters, syncBufs atomic.Uint64
	// blockReaders counts the block reads pushBlocks started (a test
	// counts them: none for records that add no block); asks the
	// destination's acknowledgements that asked for blocks.
	blockReaders, asks atomic.Uint64

	verifyMu   sync.Mutex // one verification pass at a time
	gate       verifyGate // a pass's common point and the shipping loop's reads
	verifyDone chan struct{}
}

func (o *outbound) halt() {
	o.cancel()
	<-o.done
	o.fs.ShipWrites(false)
	if o.leaseDone != nil {
		<-o.leaseDone
	}
	if o.verifyDone != nil {
		<-o.verifyDone
	}
	<-o.retainDone
}

// every calls f every interval until the stream's context ends, then
// closes done.
func (o *outbound) every(done chan struct{}, interval time.Duration, f func()) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-o.ctx.Done():
			return
		case <-t.C:
		}
		f()
	}
}

// retentionLoop applies the retention limits whether or not the
// destination is reachable: a dead destination never fills the source's
// disk.
func (o *outbound) retentionLoop() {
	o.every(o.retainDone, time.Second, func() {
		if over := o.checkRetention(o.ctx); over != "" {
			o.n.log.Warn("destination past the retention limits: journal released, it will be resynchronised", "replication", o.spec.ID, "over", over)
		}
	})
}

// leaseLoop stops the source's writes when the destination's
// acknowledgements (the lease) stop: a source cut off from its destination
// cannot diverge from a replica that may be promoted. The stop is the
// engine's, with its reason (engine.StopLease): the next acknowledgement
// lifts it, in this process or after a restart, and nothing else it does
// (a planned failover's stop, a newer epoch's fence).
func (o *outbound) leaseLoop() {
	o.every(o.leaseDone, max(o.n.opts.Lease/8, 10*time.Millisecond), func() {
		o.leaseMu.Lock()
		defer o.leaseMu.Unlock()
		o.mu.Lock()
		expired := o.n.now().After(o.leaseUntil)
		o.mu.Unlock()
		if !expired || o.fs.Stops()&engine.StopLease != 0 {
			return
		}
		if mode, _ := o.fs.Mode(); mode == engine.ModeReplica {
			return
		}
		if err := o.fs.Stop(o.ctx, engine.StopLease); err != nil {
			return
		}
		o.n.log.Warn("replication lease expired: writes stopped until the destination answers", "replication", o.spec.ID, "fs_id", o.spec.SourceFS)
	})
}

// renewLease extends the lease to from+Lease after an acknowledgement and
// lifts a stop the lease caused if the lease then runs past now. from is
// the source's own time on what the acknowledgement answers (leaseFrom):
// the destination's promotion waits 1.5 leases from when it last heard the
// source, which is after the source sent it, so a lease counted from the
// sending ends before the promotion whatever the delays on the way there
// and back. The lease never moves backwards (acknowledgements answering
// older messages arrive late). A time past now is not one this source
// sent: it renews nothing.
func (o *outbound) renewLease(from time.Time) {
	if o.n.opts.Lease <= 0 || from.IsZero() {
		return
	}
	o.leaseMu.Lock()
	defer o.leaseMu.Unlock()
	now := o.n.now()
	if from.After(now) {
		o.n.log.Warn("replication lease: an acknowledgement answers a source time past now: it renews nothing", "replication", o.spec.ID,
			"answers", from, "now", now)
		return
	}
	o.mu.Lock()
	if until := from.Add(o.n.opts.Lease); until.After(o.leaseUntil) {
		o.leaseUntil = until
	}
	valid := o.leaseUntil.After(now)
	o.mu.Unlock()
	if valid {
		o.liftLeaseStop()
		select {
		case <-o.leased:
		default:
			close(o.leased)
		}
	}
}

// AwaitLease waits until the source of replication id holds its first
// lease (an acknowledgement of its destination granted one: with hard
// fencing its writes are stopped until then, see AddOutbound), at once
// without hard fencing. It fails when ctx ends first, or the replication
// is removed or was never added.
func (n *Node) AwaitLease(ctx context.Context, id string) error {
	n.mu.Lock()
	o := n.outbound[id]
	n.mu.Unlock()
	if o == nil {
		return fmt.Errorf("replication %s: %w", id, ErrNotFound)
	}
	select {
	case <-o.leased:
		return nil
	case <-o.ctx.Done():
		return fmt.Errorf("replication %s: removed: %w", id, ErrNotFound)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// leaseFrom is the instant the lease that acknowledgement a (on s) grants
// runs from: when this source read the time the destination echoes (Echo:
// the newest of its messages the destination had received when it sent
// a), looked up among the times s sent (a wall-clock time from the wire
// is only a name for it: the lease is counted on this source's own clock
// readings, so a step of its wall clock lengthens nothing). A destination
// that does not echo (an older version, see featureLeaseEcho) gives
// Synced: the time of a heartbeat it had received and durably applied,
// older still (by its replication lag), or zero (during an initial sync:
// the lease then runs out, and the source stops its writes until the
// destination is upgraded or the sync is done). A time this stream did
// not send (a previous stream's) renews nothing. Never the
// acknowledgement's arrival, which a slow path back delays past the
// destination's promotion wait.
func leaseFrom(s *stream, a *ack) time.Time {
	if s.echo {
		return s.sentInstant(a.Echo)
	}
	return s.sentInstant(a.Synced)
}

// releaseLease lifts the lease's stop of a replication removed.
func (o *outbound) releaseLease() {
	o.leaseMu.Lock()
	defer o.leaseMu.Unlock()
	o.liftLeaseStop()
}

// liftLeaseStop lifts the lease's stop, if any (o.leaseMu held).
func (o *outbound) liftLeaseStop() {
	if o.fs.Stops()&engine.StopLease == 0 {
		return
	}
	if err := o.fs.Resume(context.Background(), engine.StopLease); err != nil {
		o.n.log.Warn("lift lease stop", "fs_id", o.spec.SourceFS, "err", err)
		return
	}
	if mode, _ := o.fs.Mode(); mode == engine.ModePrimary {
		o.n.log.Info("replication lease renewed: writes resume", "replication", o.spec.ID, "fs_id", o.spec.SourceFS)
	} else {
		o.n.log.Info("replication lease renewed: the file system stays read-only for another reason", "replication", o.spec.ID,
			"fs_id", o.spec.SourceFS, "mode", mode, "stops", o.fs.Stops())
	}
}

func (o *outbound) status() Status {
	o.mu.Lock()
	st := o.st
	avg := o.avgLocked()
	vs := o.vs
	note, releasedAt := o.release, o.releasedAt
	o.mu.Unlock()
	st.setVerify(vs, false)
	durable := o.fs.DurableSeq()
	st.SourceDurable = durable
	if durable > st.Applied && !st.Sync.Active {
		st.PendingRecords = durable - st.Applied
		st.PendingBytes = uint64(float64(st.PendingRecords) * avg)
	}
	if st.State == StateError && st.released && st.Message == "" {
		// How far behind it is now: from its applied point, or from the
		// base of the sync the release interrupted; unknown after a
		// restart until it answers.
		behind := uint64(0)
		if releasedAt == math.MaxUint64 {
			releasedAt = 0
		}
		if from := max(st.Applied, releasedAt); from > 0 && durable > from {
			behind = uint64(float64(durable-from) * avg)
		}
		st.Message = releasedMessage(note, o.n.opts.MaxLagBytes, o.n.opts.MaxLagAge, behind)
	}
	// The destination said why it applies nothing (featureWaitReason):
	// the stream it ends meanwhile is no lost connection. Said while it
	// is in touch (a full replica's streams end and start again).
	waiting := st.PeerWaiting != "" && st.State != StateError && o.n.now().Sub(st.LastContact) < 2*o.n.opts.StreamIdle
	if !waiting {
		st.PeerWaiting = ""
	}
	if waiting {
		st.Message = "destination region " + o.spec.DestRegion + " applies nothing: " + st.PeerWaiting
	}
	if !st.LinkUp && st.State != StateError && !waiting {
		down := o.n.now().Sub(st.LinkDownSince)
		if down >= o.n.opts.PauseAfter {
			st.State = StatePaused
		}
		// Before the first attempt has failed (a new configuration, or a
		// restart) the link is being set up, not down: no message.
		if st.LastError != "" {
			// Unreachable when the network says so; otherwise the stream
			// failed for another reason (a refusal, a local error): the
			// log has it.
			msg := "destination region " + o.spec.DestRegion + " unreachable"
			if st.linkReason == "" {
				msg = "replication to region " + o.spec.DestRegion + " interrupted"
			}
			if d := down.Round(time.Second); d > 0 {
				msg += " for " + d.String()
			}
			if st.linkReason != "" {
				msg += " (" + st.linkReason + ")"
			} else {
				msg += ", retrying (the region's log says why)"
			}
			st.Message = msg
		}
	}
	return st
}

// linkReason says in a few public words why a stream to region ended: no
// addresses, ports or Go error text (those go to the log).
func linkReason(err error) string {
	var op *net.OpError
	switch {
	case errors.Is(err, ErrAuth):
		return "the regions do not share the replication secret"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, errAckSilence):
		return "no answer"
	case errors.As(err, &op) && op.Op == "dial":
		return "connection refused or no route"
	case errors.As(err, &op), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection lost"
	}
	return ""
}

// snapshot returns a copy of the status as kept (without what status()
// derives).
func (o *outbound) snapshot() Status {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.st
}

func (o *outbound) update(f func(st *Status)) {
	o.mu.Lock()
	f(&o.st)
	o.mu.Unlock()
}

func (o *outbound) run() {
	defer close(o.done)
	log := o.n.log.With("replication", o.spec.ID, "fs_id", o.spec.SourceFS, "dest_region", o.spec.DestRegion)
	backoff := 50 * time.Millisecond
	for {
		start := o.n.now()
		err := o.session(o.ctx)
		if o.ctx.Err() != nil {
			return
		}
		var g *goneError
		if errors.As(err, &g) {
			log.Warn("destination refused the replication", "reason", g.Reason, "promoted", g.Promoted, "epoch", g.Epoch)
			o.update(func(st *Status) {
				st.State, st.Message, st.LinkUp = StateError, g.Reason, false
			})
			if o.n.hooks() != nil {
				o.n.hooks().SourceGone(o.ctx, o.spec.ID, g.Gone)
			}
			return
		}
		o.update(func(st *Status) {
			if st.LinkUp {
				st.LinkUp, st.LinkDownSince = false, o.n.now()
			}
			st.LastError, st.linkReason = err.Error(), linkReason(err)
			var fe *formatError
			if errors.As(err, &fe) {
				if !st.formatRefused {
					st.formatRefused, st.beforeRefused = true, st.State
				}
				st.State, st.Message = StateError, fe.Error()
			}
			if errors.Is(err, errNeedsResync) {
				st.State, st.Message = StateError, "The destination lacks journal records or blocks the source no longer keeps; it is resynchronised (differences only) on the next connection."
				if st.released {
					st.Message = "" // status says which limit released them (releasedMessage)
				}
			}
		})
		log.Debug("replication stream ended", "err", err)
		if o.n.now().Sub(start) > 5*time.Second || errors.Is(err, errAckSilence) {
			// A long session, or one that ended for silence (having
			// waited for it): reconnect soon, so that a link back from a
			// short cut renews the lease before it runs out.
			backoff = 50 * time.Millisecond
		}
		select {
		case <-o.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// stream is one open journal stream to the destination.
type stream struct {
	// sums: the destination accepts msgBlocksSum (each pushed block's
	// checksum in the authenticated header).
	sums bool
	// chunkSums: the destination takes msgChunkSum (featureChunkSums:
	// it announces that only over an authenticated channel).
	chunkSums bool
	// echo: the destination's acks carry ack.Echo (featureLeaseEcho).
	echo bool
	// durTimes: the destination takes each record's durable time in a
	// records frame (featureDurableTimes).
	durTimes bool
	// pushed holds the blocks this stream pushed recently: they are not
	// pushed again unasked. It is the stream's own: a push is known to
	// have reached the destination only on the connection it went on (a
	// cut drops what the link still held), and a new stream that took
	// the last one's for delivered made the destination ask for them, a
	// round trip per batch of records that referenced one.
	pushed *idCache
	// sent holds the source times the destination may echo (the
	// request's, each heartbeat's, as sent on the wire: wall-clock
	// nanoseconds) with the instant this source read them at, in sending
	// order, so that the lease runs from the source's own clock reading
	// (monotonic where the clock has one) and a step of its wall clock
	// lengthens nothing. The keeper (heartbeat) adds to it, the reader
	// of acknowledgements (received) looks times up: smu guards it.
	smu  sync.Mutex
	sent []sentTime
	// With hard fencing a stream paces what it sends on its heartbeats'
	// echoes (awaitPace): echoed is the instant this source read the
	// newest time the destination echoed, echoWake is closed (and
	// replaced) when it moves. smu guards both.
	pace     time.Duration
	echoed   time.Time
	echoWake chan struct{}
	now      func() time.Time
	done     <-chan struct{} // the session's context's
	// written counts the bytes of the frames written (under wmu);
	// delivered is what had been written before the newest echoed time
	// was sent (the destination has received it all), echoArr when that
	// echo arrived, rate the bytes per second echoes show delivered
	// (smu guards these three).
	written   atomic.Int64
	delivered int64
	echoArr   time.Time
	rate      float64
	// wmu serialises the frames written to w: the shipping loop's and
	// the keeper's heartbeats, which go out between two of its frames
	// however long the loop spends sending (a slow or saturated link).
	wmu sync.Mutex
	out framer
	in  framer
	w   io.Writer
	// flush sends what w holds (after each frame).
	flush func() error
	r     io.Reader
	acks  chan *ack
	// errc carries the first error of the stream's own goroutines (the
	// reader, the keeper); fail also cancels the session's context, so
	// that a loop blocked sending returns.
	errc    chan error
	cancel  context.CancelFunc
	failMu  sync.Mutex
	failErr error
}

// fail ends the stream with err (the first error wins): the shipping loop
// takes it from errc, or finds it (failure) once a send the cancellation
// interrupted has returned.
func (s *stream) fail(err error) {
	s.failMu.Lock()
	first := s.failErr == nil
	if first {
		s.failErr = err
	}
	s.failMu.Unlock()
	if first {
		select {
		case s.errc <- err:
		default:
		}
	}
	s.cancel()
}

// failure is the error fail ended the stream with, if any.
func (s *stream) failure() error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	return s.failErr
}

// sentTime is a source time sent on a stream (wire: its wall-clock
// nanoseconds) and the instant the source read it at.
type sentTime struct {
	wire int64
	at   time.Time
	off  int64 // the stream's bytes written before it
}

// maxSentTimes bounds stream.sent: an echo older than the oldest kept
// renews nothing (1024 heartbeats are far more than a lease).
const maxSentTimes = 1024

// sentAt records that wire, read at the instant at, was sent.
func (s *stream) sentAt(wire, at time.Time) {
	s.smu.Lock()
	defer s.smu.Unlock()
	if len(s.sent) >= maxSentTimes {
		s.sent = append(s.sent[:0], s.sent[len(s.sent)-maxSentTimes/2:]...)
	}
	s.sent = append(s.sent, sentTime{wire: wire.UnixNano(), at: at, off: s.written.Load()})
}

// sentInstant returns the instant at which this source read the time it
// sent as wire, and forgets the times sent before it (a destination
// echoes times in the order they were sent); zero if it sent no such
// time on this stream (or long ago). Of equal times (a wall clock stepped
// back) the earliest sent is taken.
func (s *stream) sentInstant(wire time.Time) time.Time {
	s.smu.Lock()
	defer s.smu.Unlock()
	st, _ := s.sentLocked(wire)
	return st.at
}

// sentLocked looks wire up as sentInstant does (s.smu held).
func (s *stream) sentLocked(wire time.Time) (sentTime, bool) {
	if wire.IsZero() {
		return sentTime{}, false
	}
	n := wire.UnixNano()
	for i, st := range s.sent {
		if st.wire == n {
			s.sent = s.sent[i:]
			return st, true
		}
	}
	return sentTime{}, false
}

// echoedWire records that the destination echoed wire, a time this stream
// sent (received, after leaseFrom), at the instant arr: everything
// written before it has arrived.
func (s *stream) echoedWire(wire, arr time.Time) {
	s.smu.Lock()
	defer s.smu.Unlock()
	st, ok := s.sentLocked(wire)
	if !ok || !st.at.After(s.echoed) {
		return
	}
	if d := arr.Sub(s.echoArr); !s.echoArr.IsZero() && d > 0 && st.off > s.delivered {
		sample := float64(st.off-s.delivered) / d.Seconds()
		if s.rate == 0 {
			s.rate = sample
		} else {
			s.rate = 0.75*s.rate + 0.25*sample
		}
	}
	s.echoed, s.delivered, s.echoArr = st.at, st.off, arr
	if s.echoWake != nil {
		close(s.echoWake)
	}
	s.echoWake = make(chan struct{})
}

// awaitPace holds a frame back while the destination's newest echo
// answers a time this source read more than pace ago, or more than about
// pace's worth of the link (as echoes show it delivered, at least
// 2 MiB) was written after it. A heartbeat waits behind whatever the
// source has written before it, in its own buffers and the network's: on
// a slow or saturated link those fill, and a heartbeat queued behind
// seconds of data came back after the lease it renews had run out (the
// source stopped its writes beside a live destination, and the stream
// was cut for a silence that was only the queue). Held back, the queue
// drains, the next heartbeat crosses it and its echo lets the frames go
// again. Without hard fencing nothing is held (pace 0).
func (s *stream) awaitPace() error {
	for s.pace > 0 {
		s.smu.Lock()
		window := max(2*leaseFrameBytes, int64(s.rate*s.pace.Seconds()))
		behind := s.now().Sub(s.echoed) > s.pace || s.written.Load()-s.delivered > window
		wake := s.echoWake
		s.smu.Unlock()
		if !behind {
			return nil
		}
		select {
		case <-wake:
		case <-s.done:
			return context.Canceled
		}
	}
	return nil
}

func (s *stream) send(typ byte, payload []byte) error {
	if err := s.awaitPace(); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.written.Add(int64(len(payload)))
	if err := s.out.write(s.w, typ, payload); err != nil {
		return err
	}
	return s.flush()
}

func (s *stream) sendParts(typ byte, parts [][]byte) error {
	if err := s.awaitPace(); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, p := range parts {
		s.written.Add(int64(len(p)))
	}
	if err := s.out.write(s.w, typ, parts...); err != nil {
		return err
	}
	return s.flush()
}

// streamConn is the connection of a stream being opened: w and r carry
// its frames, hdr is the destination's answer, cn the request's nonce.
type streamConn struct {
	// sent: the source's clock when it signed the request (the time the
	// destination's first acknowledgements echo).
	sent  time.Time
	w     io.Writer
	flush func() error
	r     io.Reader
	hdr   http.Header
	cn    string
	close func()
}

// errNoUpgrade: the destination answered the upgrade request as a server
// that does not know it does (an older version): the stream goes over
// HTTP/2.
var errNoUpgrade = errors.New("replication: the destination does not upgrade streams")

// noUpgradeFor is how long a source keeps sending a destination that did
// not upgrade its streams over HTTP/2 before it asks again.
const noUpgradeFor = 5 * time.Minute

// streamBuf is the size of the buffered writer (and reader) of an upgraded
// stream: frames' small parts are gathered, block data goes past it.
const streamBuf = 64 << 10

// open opens the stream's connection: an HTTP/1.1 connection upgraded to
// a plain byte stream (upgradeProto), or, to a destination that does not
// upgrade, an HTTP/2 request whose body and response carry the frames.
// cancel ends ctx (the session's): a dial that takes longer than
// StreamIdle calls it.
func (o *outbound) open(ctx context.Context, cancel context.CancelFunc) (*streamConn, Peer, error) {
	o.mu.Lock()
	noUpgrade := o.n.now().Before(o.noUpgradeUntil)
	o.mu.Unlock()
	if !noUpgrade {
		sc, peer, err := o.openUpgraded(ctx, cancel)
		if !errors.Is(err, errNoUpgrade) {
			return sc, peer, err
		}
		o.n.log.Info("the destination does not upgrade streams: streaming over HTTP/2", "replication", o.spec.ID, "dest_region", o.spec.DestRegion)
		o.mu.Lock()
		o.noUpgradeUntil = o.n.now().Add(noUpgradeFor)
		o.mu.Unlock()
	}
	return o.openHTTP2(ctx, cancel)
}

// do sends the stream's request; the destination must answer within
// StreamIdle.
func (o *outbound) do(ctx context.Context, cancel context.CancelFunc, c *http.Client, req *http.Request) (*http.Response, error) {
	dial, cancelDial := context.WithTimeout(ctx, o.n.opts.StreamIdle)
	stopDial := context.AfterFunc(dial, func() {
		if dial.Err() == context.DeadlineExceeded {
			cancel()
		}
	})
	o.mu.Lock()
	o.ackAt = o.n.now()
	o.mu.Unlock()
	res, err := c.Do(req)
	stopDial()
	cancelDial()
	return res, err
}

// refused is the error of a stream request answered with res (not 101 or
// 200).
func (o *outbound) refused(res *http.Response) error {
	switch res.StatusCode {
	case http.StatusGone:
		g := &goneError{}
		if err := json.NewDecoder(io.LimitReader(res.Body, 1<<16)).Decode(&g.Gone); err != nil || g.Reason == "" {
			g.Reason = "the destination no longer has this replication"
		}
		return g
	case http.StatusUnauthorized, http.StatusForbidden:
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return fmt.Errorf("%w: %s refused the stream: HTTP %d: %s", ErrAuth, o.spec.DestRegion, res.StatusCode, bytes.TrimSpace(b))
	default:
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return fmt.Errorf("replication: %s refused the stream: HTTP %d: %s", o.spec.DestRegion, res.StatusCode, bytes.TrimSpace(b))
	}
}

func (o *outbound) streamURL(peer Peer) string {
	return peer.URL + "/replication/v1/stream?id=" + url.QueryEscape(o.spec.ID)
}

func (o *outbound) openUpgraded(ctx context.Context, cancel context.CancelFunc) (*streamConn, Peer, error) {
	c, peer, err := o.n.rawClient(o.spec.DestRegion)
	if err != nil {
		return nil, peer, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.streamURL(peer), nil)
	if err != nil {
		return nil, peer, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", upgradeProto)
	req.Header.Set(hdrFeatures, o.n.features(featureLeaseEcho, featureBlockAsks, featureWaitReason))
	sent := o.n.now()
	cn := signRequest(req, peer.Secret, o.n.opts.Region, sent, nil)
	res, err := o.do(ctx, cancel, c, req)
	if err != nil {
		return nil, peer, err
	}
	switch res.StatusCode {
	case http.StatusSwitchingProtocols:
	case http.StatusMethodNotAllowed, http.StatusNotFound, http.StatusNotImplemented:
		res.Body.Close()
		return nil, peer, errNoUpgrade
	default:
		defer res.Body.Close()
		return nil, peer, o.refused(res)
	}
	conn, ok := res.Body.(io.ReadWriteCloser)
	if !ok || !hasToken(res.Header.Values("Upgrade"), upgradeProto) {
		res.Body.Close()
		return nil, peer, fmt.Errorf("replication: %s switched the stream to %q", o.spec.DestRegion, res.Header.Get("Upgrade"))
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	bw := bufio.NewWriterSize(conn, streamBuf)
	o.n.upgrades.Add(1)
	return &streamConn{sent: sent, w: bw, flush: bw.Flush, r: bufio.NewReaderSize(conn, streamBuf), hdr: res.Header, cn: cn,
		close: func() { stop(); conn.Close() }}, peer, nil
}

func (o *outbound) openHTTP2(ctx context.Context, cancel context.CancelFunc) (*streamConn, Peer, error) {
	c, peer, err := o.n.client(o.spec.DestRegion)
	if err != nil {
		return nil, peer, err
	}
	pr, pw := io.Pipe()
	stopPipe := context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
	fail := func(err error) (*streamConn, Peer, error) {
		stopPipe()
		pw.Close()
		return nil, peer, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.streamURL(peer), pr)
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(hdrFeatures, o.n.features(featureLeaseEcho, featureBlockAsks, featureWaitReason))
	sent := o.n.now()
	cn := signRequest(req, peer.Secret, o.n.opts.Region, sent, nil)
	res, err := o.do(ctx, cancel, c, req)
	if err != nil {
		return fail(err)
	}
	if res.StatusCode != http.StatusOK {
		defer res.Body.Close()
		return fail(o.refused(res))
	}
	o.n.fallbacks.Add(1)
	return &streamConn{sent: sent, w: pw, flush: func() error { return nil }, r: res.Body, hdr: res.Header, cn: cn,
		close: func() { stopPipe(); pw.Close(); res.Body.Close() }}, peer, nil
}

// session opens a stream and ships until it fails or the replication is
// removed.
func (o *outbound) session(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sc, peer, err := o.open(ctx, cancel)
	if err != nil {
		return err
	}
	defer sc.close()
	sn := sc.hdr.Get(hdrNonce)
	if len(sn) < 16 || !hmac.Equal([]byte(sc.hdr.Get(hdrAuth)), []byte(sign(peer.Secret, "stream-ok", sc.cn, sn))) {
		return fmt.Errorf("%w: %s answered without proof of the pair's secret", ErrAuth, o.spec.DestRegion)
	}
	if err := o.checkFormat(sc.hdr); err != nil {
		return err
	}
	key := sessionKey(peer.Secret, sc.cn, sn)
	s := &stream{
		sums:      hasFeature(sc.hdr.Get(hdrFeatures), featureBlockSums),
		chunkSums: hasFeature(sc.hdr.Get(hdrFeatures), featureChunkSums),
		echo:      hasFeature(sc.hdr.Get(hdrFeatures), featureLeaseEcho),
		durTimes:  hasFeature(sc.hdr.Get(hdrFeatures), featureDurableTimes),
		pushed:    newIDCache(4096),
		out:       framer{key: key, dir: dirToDest}, in: framer{key: key, dir: dirToSource},
		w: sc.w, flush: sc.flush, r: sc.r, acks: make(chan *ack, 256), errc: make(chan error, 1), cancel: cancel,
		now: o.n.now, done: ctx.Done(), echoed: sc.sent, echoWake: make(chan struct{}),
	}
	if s.echo && o.n.opts.Lease > 0 {
		s.pace = o.pace()
	}
	// The request's signed time is in whole seconds: that is what the
	// destination echoes until a heartbeat comes.
	s.sentAt(time.Unix(sc.sent.Unix(), 0), sc.sent)
	err = o.stream(ctx, s)
	if ferr := s.failure(); ferr != nil {
		return ferr // what ended the stream, not the cancellation it caused
	}
	return err
}

// stream runs the session's stream s.
func (o *outbound) stream(ctx context.Context, s *stream) (err error) {
	// The destination's acks are read off the connection as they come,
	// whatever the shipping loop is doing. It takes none while it fills
	// its window (up to WindowBytes of chunks), and a destination blocked
	// writing an ack stops reading frames: a reader that waited for the
	// loop once the acks' channel was full closed a cycle, the source
	// blocked sending and the destination blocked acking (small chunks, a
	// connection that buffers little). acks queues them in between, as
	// many as the frames in flight make. The reader itself takes what
	// an acknowledgement says of the link and the lease (received): a
	// loop blocked in a long send does not let the lease run out beside
	// a destination that grants it.
	read := make(chan *ack)
	go func() {
		for {
			typ, p, err := s.in.read(s.r)
			if err == nil && typ != msgAck {
				err = fmt.Errorf("%w: unexpected message %d from the destination", ErrFrame, typ)
			}
			var a *ack
			if err == nil {
				a, err = decodeAck(p)
			}
			if err == nil {
				err = o.received(s, a)
			}
			if err != nil {
				if ctx.Err() == nil { // not the connection's closing
					s.fail(err)
				}
				return
			}
			select {
			case read <- a:
			case <-ctx.Done():
				return
			}
		}
	}()
	go queueAcks(ctx, read, s.acks)
	var first *ack
	select {
	case first = <-s.acks:
	case err := <-s.errc:
		return err
	case <-time.After(o.ackLimit()):
		return fmt.Errorf("%w: %s sent no state within %s", errAckSilence, o.spec.DestRegion, o.ackLimit())
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := o.onAck(s, first); err != nil {
		return err
	}
	o.update(func(st *Status) {
		st.LinkUp, st.LastError, st.linkReason = true, "", ""
	})
	if first.Fatal != "" {
		return fmt.Errorf("replication: destination cannot continue: %s", first.Fatal)
	}
	kept := make(chan struct{})
	go o.keep(ctx, s, kept)
	defer func() {
		s.cancel() // the connection closes: a heartbeat being sent returns
		<-kept
	}()
	a := first
	if need := replayFrom(a); need > 0 {
		if why := o.cannotReplay(need); why != "" {
			// Resync it, sending what differs.
			o.n.log.Warn("the destination cannot be brought up to date from the journal: resynchronising it", "replication", o.spec.ID,
				"applied", a.AppliedSeq, "syncing", a.Syncing, "reason", why)
			if err := s.send(msgResyncBegin, nil); err != nil {
				return err
			}
			if a, err = o.awaitResync(ctx, s); err != nil {
				return err
			}
			// The release mark stays until the resync's own pin replaces
			// it (syncPin): a resync that fails before has not replaced it.
			o.mu.Lock()
			o.blockGone = false
			o.mu.Unlock()
		}
	}
	if a.Resync {
		if a, err = o.resync(ctx, s, a); err != nil {
			return err
		}
	} else if a.Syncing || (a.AppliedSeq == 0 && a.Synced.IsZero()) {
		if a, err = o.initialSync(ctx, s, a); err != nil {
			return err
		}
	}
	return o.ship(ctx, s, a)
}

// replayFrom returns the first record a destination in state a needs
// from the journal (after its applied point, or after the base of the
// initial sync it resumes), 0 when it needs none (a new destination, or
// one being resynced).
func replayFrom(a *ack) uint64 {
	switch {
	case a.Resync:
		return 0
	case a.Syncing && a.SyncBase > 0:
		return a.SyncBase + 1
	case !a.Syncing && a.AppliedSeq > 0:
		return a.AppliedSeq + 1
	}
	return 0
}

// cannotReplay says why the journal cannot bring a destination that needs
// the records from need on up to date ("" when it can):
//   - the records were truncated (the destination fell behind the
//     retention limits);
//   - the replication's pin is past need: the destination had acknowledged
//     more than it now holds (it lost durable state, or was restored from
//     an older copy), so blocks that those records reference may have been
//     collected since;
//   - a block the destination asked for is gone (blockGone);
//   - the retention limits released the destination's pin (released).
func (o *outbound) cannotReplay(need uint64) string {
	if o.fs.DurableSeq() < need {
		return "" // nothing to replay
	}
	if start, err := o.fs.JournalStart(); err == nil && start > need {
		return fmt.Sprintf("journal records from %d were truncated (the journal starts at %d)", need, start)
	}
	if pin, ok := o.fs.Pins()[pinName(o.spec.ID)]; ok && pin > need {
		return fmt.Sprintf("the destination needs records from %d but had acknowledged up to %d: it lost acknowledged state", need, pin-1)
	}
	o.mu.Lock()
	gone, released := o.blockGone, o.st.released
	o.mu.Unlock()
	if gone {
		return "a block the destination asked for is no longer held by the source"
	}
	if released {
		return "the destination fell behind the retention limits and its journal pin was released"
	}
	return ""
}

// awaitResync waits for the destination to acknowledge msgResyncBegin.
func (o *outbound) awaitResync(ctx context.Context, s *stream) (*ack, error) {
	for {
		select {
		case a := <-s.acks:
			if err := o.onAck(s, a); err != nil {
				return nil, err
			}
			// A destination whose initial sync had nothing to keep
			// starts over instead (a new replica's state).
			if a.Resync || (!a.Syncing && a.AppliedSeq == 0) {
				return a, nil
			}
		case err := <-s.errc:
			return nil, err
		case <-time.After(o.ackLimit()):
			return nil, fmt.Errorf("%w: %s did not start the resync within %s", errAckSilence, o.spec.DestRegion, o.ackLimit())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// received takes, as an acknowledgement arrives (the stream's reader),
// what it says of the link: the contact, and the lease it renews (from
// the source time of what it answers, see leaseFrom). With hard fencing
// an acknowledgement that comes after a silence longer than ackLimit
// ends the stream instead: the link is not one the lease can run on (and
// before the lease ran from what an acknowledgement answers, one held in
// the network for that long renewed it past the destination's
// promotion). The next stream's first acknowledgement is a fresh answer.
// The shipping loop takes the rest (onAck) when it gets to it.
func (o *outbound) received(s *stream, a *ack) error {
	now := o.n.now()
	o.mu.Lock()
	gap := now.Sub(o.ackAt)
	o.ackAt = now
	o.mu.Unlock()
	if limit := o.ackLimit(); o.n.opts.Lease > 0 && gap > limit {
		return fmt.Errorf("%w for %s (more than %s, about 2/5 of the lease), then one from %s: it renews nothing; reconnecting",
			errAckSilence, gap.Round(time.Millisecond), limit, o.spec.DestRegion)
	}
	if len(a.Missing) > 0 {
		o.asks.Add(1)
	}
	from := leaseFrom(s, a)
	if s.echo && !from.IsZero() {
		s.echoedWire(a.Echo, now)
	}
	o.renewLease(from)
	o.mu.Lock()
	o.st.LastContact = now
	o.st.PeerWaiting = publicReason(a.Waiting)
	o.mu.Unlock()
	return nil
}

// publicReason is a destination's reason (ack.Waiting) as the source's
// status shows it: printable, and short.
func publicReason(r string) string {
	r = strings.Map(func(c rune) rune {
		if !unicode.IsPrint(c) {
			return -1
		}
		return c
	}, r)
	if len(r) > maxReason {
		r = strings.ToValidUTF8(r[:maxReason], "")
	}
	return r
}

// maxReason bounds the destination's reason a source shows.
const maxReason = 200

// onAck records what the destination acknowledged (received took the
// lease) and moves the pin. An acknowledgement that reports the
// destination cannot continue (Fatal) is recorded and then fails.
func (o *outbound) onAck(s *stream, a *ack) error {
	now := o.n.now()
	o.mu.Lock()
	o.st.Applied, o.st.AppliedEpoch = a.AppliedSeq, a.AppliedEpoch
	if !a.Synced.IsZero() {
		o.st.LastReplicated = a.Synced
		if o.st.State == StateEnabling && !a.Syncing {
			o.st.State, o.st.Message = StateEnabled, ""
		}
	}
	unreleased := false
	if o.st.released && !a.Syncing && a.AppliedSeq > o.releasedAt {
		// The destination applies again on a stream that was shipping
		// when the pin was released (space came back): it is replicating,
		// not in ERROR. Before, the state stayed ERROR until the next
		// stream's resync, however long this one lived. Within the limits
		// the journal is pinned for it again (below); until then a new
		// stream resyncs it.
		avg := o.avgLocked()
		durable := o.fs.DurableSeq()
		o.st.State, o.st.Message = StateEnabled, ""
		if pending := float64(durable-min(a.AppliedSeq, durable)) * avg; int64(pending) <= o.n.opts.MaxLagBytes {
			o.st.released, unreleased = false, true
		} else {
			o.st.Message = "catching up after falling behind the retention limits: the journal is not kept for it until it is within them (a new connection resynchronises it)"
		}
	}
	if a.Fatal != "" {
		o.st.State, o.st.Message = StateError, "destination cannot continue: "+a.Fatal
	}
	pin := uint64(0)
	if !a.Syncing && !o.st.released && a.AppliedSeq > 0 && a.AppliedSeq+1 > o.pinned && now.Sub(o.pinTime) >= 200*time.Millisecond {
		pin = a.AppliedSeq + 1
		o.pinned, o.pinTime = pin, now
	}
	o.mu.Unlock()
	if unreleased {
		o.n.saveProgress(RoleSource, o.spec.ID, o.snapshot, true)
	}
	if pin > 0 {
		// Not over a release checkRetention made meanwhile.
		o.pinMu.Lock()
		o.mu.Lock()
		released := o.st.released
		o.mu.Unlock()
		if !released {
			if err := o.fs.SetPin(pinName(o.spec.ID), pin); err != nil {
				o.n.log.Warn("journal pin", "replication", o.spec.ID, "err", err)
			}
		}
		o.pinMu.Unlock()
	}
	if a.Fatal != "" {
		return fmt.Errorf("replication: destination cannot continue: %s", a.Fatal)
	}
	return nil
}

// initialSync streams the source's replicated keys in chunks from
// snapshots, pushing the blocks the destination lacks, until the
// destination reports the sync done. It returns that ack.
func (o *outbound) initialSync(ctx context.Context, s *stream, a *ack) (*ack, error) {
	base := a.SyncBase
	if a.Syncing && base > 0 {
		// Resuming (session made sure the journal still reaches back to
		// base+1 with the blocks its records need).
		if err := o.syncPin(base+1, "initial sync"); err != nil {
			return nil, err
		}
	}
	u, err := o.fs.Usage()
	if err != nil {
		return nil, err
	}
	resumed := true
	o.update(func(st *Status) {
		st.State, st.Message = StateEnabling, "initial sync in progress"
		if !st.Sync.Active {
			st.Sync = SyncProgress{Active: true, Started: o.n.now()}
			resumed = false
		}
		st.Sync.BytesTotal, st.Sync.FilesTotal = u.Bytes, u.Files
	})
	if !resumed {
		o.n.log.Info("initial sync started", "replication", o.spec.ID, "fs_id", o.spec.SourceFS,
			"dest_region", o.spec.DestRegion, "dest_fs", o.spec.DestFS, "bytes", u.Bytes, "files", u.Files, "resuming", a.Syncing && a.SyncBase > 0)
	}
	cursor := a.Cursor
	w := &syncWait{acked: a.Cursor, moved: o.n.now()}
	for {
		snap, err := o.fs.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		if base == 0 {
			base = snap.Seq
			if err := o.syncPin(base+1, "initial sync"); err != nil {
				snap.Close()
				return nil, err
			}
		}
		done, next, err := o.syncFrom(ctx, s, snap, cursor, w)
		snap.Close()
		if err != nil {
			return nil, err
		}
		if done != nil {
			var p SyncProgress
			o.update(func(st *Status) {
				st.Sync.Active, st.Sync.Done, st.Sync.Finished = false, true, o.n.now()
				st.Sync.BytesDone = max(st.Sync.BytesDone, st.Sync.BytesTotal)
				st.Sync.FilesDone = max(st.Sync.FilesDone, st.Sync.FilesTotal)
				p = st.Sync
			})
			o.n.saveProgress(RoleSource, o.spec.ID, o.snapshot, true)
			o.logSyncDone("initial sync done", p, "seq", done.AppliedSeq)
			return done, nil
		}
		cursor = next
	}
}

// queueAcks passes the acks from in to out in order, taking each from in
// as soon as it comes, until ctx ends.
func queueAcks(ctx context.Context, in <-chan *ack, out chan<- *ack) {
	var q []*ack
	for {
		var to chan<- *ack // nil while nothing is queued
		var head *ack
		if len(q) > 0 {
			to, head = out, q[0]
		}
		select {
		case a := <-in:
			q = append(q, a)
		case to <- head:
			q[0] = nil
			q = q[1:]
		case <-ctx.Done():
			return
		}
	}
}

// hexKey logs a key in hex (formatted only when the record is written).
type hexKey []byte

func (k hexKey) String() string { return hex.EncodeToString(k) }

// syncWait is what an initial sync knows of its destination's progress:
// its cursor as last acknowledged, and when that last moved (or the
// destination asked for a rewind).
type syncWait struct {
	acked []byte
	moved time.Time
}

// syncStallAfter is how long a sending initial sync that has nothing
// left to send (its last chunk, or a full window, is out) waits for its
// destination's cursor to move before it sends again from that cursor.
// The destination asks for a resend of what it could not take (a rewind);
// this is the backstop for a chunk it dropped without asking, which would
// otherwise leave both ends waiting for each other for good, the stream
// alive with heartbeats. Whatever is sent again is skipped or replaced.
func (o *outbound) syncStallAfter() time.Duration {
	return max(5*time.Second, 50*o.n.opts.Heartbeat)
}

// syncFrom sends chunks of snap from cursor on. It returns the final ack
// when the destination finished the sync, or the cursor to continue from
// with a fresh snapshot (snapshots are not held for long).
func (o *outbound) syncFrom(ctx context.Context, s *stream, snap *engine.Snapshot, cursor []byte, w *syncWait) (*ack, []byte, error) {
	started := o.n.now()
	type sent struct {
		hi    []byte
		bytes int64
	}
	var inflight []sent
	var inflightBytes int64
	pos := cursor
	finished := false // the last chunk was sent
	// Chunks are read one ahead of the sending (framing and the
	// transport's copy of one overlap the reading of the next).
	rd := o.readChunks(snap, pos, s.chunkSums)
	defer func() { rd.stop() }()
	hb := time.NewTicker(o.n.opts.Heartbeat)
	defer hb.Stop()
	for {
		// Fill the window.
		for !finished && inflightBytes < o.n.opts.WindowBytes {
			if o.n.now().Sub(started) > 5*time.Second {
				return nil, pos, nil // take a fresh snapshot
			}
			var c readChunk
			select {
			case c = <-rd.chunks:
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			parts, hi, files, inline, err := c.parts, c.hi, c.files, c.inline, c.err
			if err != nil {
				return nil, nil, err
			}
			typ := msgChunk
			if s.chunkSums {
				typ = msgChunkSum
			}
			if err := s.sendParts(typ, parts); err != nil {
				return nil, nil, err
			}
			size := int64(len(parts[0]) + len(parts[1]))
			rd.release(c) // the stream has taken its bytes
			inflight = append(inflight, sent{hi: hi, bytes: size})
			inflightBytes += size
			o.update(func(st *Status) {
				st.Sync.FilesDone += files
				st.Sync.BytesDone += inline
				st.ShippedBytes += uint64(size)
			})
			pos = hi
			finished = hi == nil
		}
		select {
		case a := <-s.acks:
			if err := o.onAck(s, a); err != nil {
				return nil, nil, err
			}
			if !a.Syncing && a.AppliedSeq > 0 {
				return a, nil, nil
			}
			if a.Rewind || (a.Syncing && !bytes.Equal(a.Cursor, w.acked)) {
				w.acked, w.moved = a.Cursor, o.n.now()
			}
			if a.Rewind {
				o.n.log.Debug("initial sync: rewind", "replication", o.spec.ID, "cursor", hexKey(a.Cursor), "blocks", len(a.Missing), "sent_to", hexKey(pos), "all_sent", finished)
				if err := o.pushBlocks(ctx, s, a.Missing, true); err != nil {
					return nil, nil, err
				}
				// The wait for the destination to move counts from the
				// resend, not from the ask: pushing what it asked for
				// takes long on a slow link, and a stall counted from
				// the ask sent the chunks once more right after.
				w.moved = o.n.now()
				pos, finished = a.Cursor, false
				inflight, inflightBytes = nil, 0
				rd.stop()
				rd = o.readChunks(snap, pos, s.chunkSums)
				continue
			}
			// Chunks up to the destination's cursor are done.
			for len(inflight) > 0 && inflight[0].hi != nil && a.Cursor != nil && bytes.Compare(inflight[0].hi, a.Cursor) <= 0 {
				inflightBytes -= inflight[0].bytes
				inflight = inflight[1:]
			}
		case err := <-s.errc:
			return nil, nil, err
		case <-hb.C:
			waiting := finished || inflightBytes >= o.n.opts.WindowBytes
			if stalled := o.n.now().Sub(w.moved); waiting && stalled > o.syncStallAfter() {
				o.n.log.Warn("initial sync: the destination has not moved and waits: sending again from its cursor",
					"replication", o.spec.ID, "dest_region", o.spec.DestRegion, "for", stalled.Round(time.Millisecond))
				o.update(func(st *Status) { st.Sync.Stalls++ })
				w.moved = o.n.now()
				pos, finished = w.acked, false
				inflight, inflightBytes = nil, 0
				rd.stop()
				rd = o.readChunks(snap, pos, s.chunkSums)
			}
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}

// ship streams durable journal records from the destination's applied
// point on, blocks before the records that reference them, with
// heartbeats, until the stream fails.
func (o *outbound) ship(ctx context.Context, s *stream, a *ack) error {
	o.update(func(st *Status) {
		st.Sync.Active = false
		if st.State == StateEnabling && st.Message == "initial sync in progress" {
			st.Message = "replaying changes made during the initial sync"
		}
	})
	next := a.AppliedSeq + 1
	type sent struct {
		last  uint64
		bytes int64
	}
	var inflight []sent
	var inflightBytes int64
	o.gate.shipping(true)
	defer o.gate.shipping(false)
	for {
		durable, advanced := o.fs.DurableNotify()
		var held <-chan struct{} // a verification holds records past its point
		for next <= durable && inflightBytes < o.n.opts.WindowBytes {
			recs, wait, err := o.readShippable(ctx, next)
			if errors.Is(err, engine.ErrTruncated) {
				return errNeedsResync
			}
			if err != nil {
				return err
			}
			if wait != nil {
				held = wait
				break
			}
			if len(recs) == 0 {
				break
			}
			// New blocks go ahead of their records, unasked — except to a
			// destination in this region, which holds them already.
			if o.spec.DestRegion != o.n.opts.Region {
				var ids []blocks.ID
				for _, r := range recs {
					ids = append(ids, r.AddedRefs...)
				}
				if err := o.pushBlocks(ctx, s, ids, false); err != nil {
					return err
				}
			}
			// ReadJournal bounds a batch to about 4 MiB, 1 MiB under
			// hard fencing (plus one record of at most the maximum
			// record size): one frame.
			m := &recordsMsg{recs: recs}
			if s.durTimes {
				m.durable = make([]time.Time, len(recs))
				o.fs.DurableTimes(recs[0].Seq, m.durable)
			}
			p := m.encode()
			if err := s.send(msgRecords, p); err != nil {
				return err
			}
			last := recs[len(recs)-1].Seq
			inflight = append(inflight, sent{last: last, bytes: int64(len(p))})
			inflightBytes += int64(len(p))
			next = last + 1
			o.mu.Lock()
			o.st.ShippedRecords += uint64(len(recs))
			o.st.ShippedBytes += uint64(len(p))
			avg := float64(len(p)) / float64(len(recs))
			if o.avgRec == 0 {
				o.avgRec = avg
			} else {
				o.avgRec = 0.9*o.avgRec + 0.1*avg
			}
			o.mu.Unlock()
		}
		select {
		case a := <-s.acks:
			if err := o.onAck(s, a); err != nil {
				return err
			}
			if !a.Rewind && len(a.Missing) > 0 {
				// Blocks asked for without a rewind (featureBlockAsks):
				// the destination keeps the records that need them. Only
				// the blocks go; the records go on from next.
				if err := o.pushBlocks(ctx, s, a.Missing, true); err != nil {
					return err
				}
			}
			if a.Rewind {
				if err := o.pushBlocks(ctx, s, a.Missing, true); err != nil {
					return err
				}
				next = a.AppliedSeq + 1
				inflight, inflightBytes = nil, 0
				if len(a.Missing) == 0 {
					// Paused applier or a gap: the resend waits a
					// little (the destination asks again at most every
					// 500 ms), but not past the stream's end.
					if err := rewindPause(ctx, s); err != nil {
						return err
					}
				}
				continue
			}
			for len(inflight) > 0 && inflight[0].last <= a.AppliedSeq {
				inflightBytes -= inflight[0].bytes
				inflight = inflight[1:]
			}
		case <-advanced:
		case <-held:
		case err := <-s.errc:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// rewindGap is how long a rewind without blocks to push waits before the
// resend (see rewindPause).
const rewindGap = 10 * time.Millisecond

// rewindPause waits rewindGap before a resend for a rewind that pushed
// nothing (a paused applier, a gap), so that a destination answering
// each resend with a rewind does not make the loop spin; it ends early,
// with the error, when the stream fails or ctx ends.
func rewindPause(ctx context.Context, s *stream) error {
	t := time.NewTimer(rewindGap)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case err := <-s.errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// heartbeat sends the source's time, read before its durable mark. Both
// are read once the frame may go (after the frame being sent, if any):
// the lease an echo of it grants runs from then.
func (o *outbound) heartbeat(s *stream) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	t := o.n.now()
	d := o.fs.DurableSeq()
	_, epoch := o.fs.Mode()
	h := heartbeat{Durable: d, Time: t, Epoch: epoch}
	s.sentAt(t, t)
	if err := s.out.write(s.w, msgHeartbeat, h.encode()); err != nil {
		return err
	}
	return s.flush()
}

// keep sends the stream's heartbeats and watches its acknowledgements
// until ctx ends, whatever the shipping loop is doing: a loop blocked in
// a long send (a slow or saturated link, a slow destination) neither
// stops the heartbeats whose echoes renew the lease (received) nor hides
// a silent destination. It ends the stream (fail) on a failed send or a
// silence longer than ackLimit. The silence is watched apart from the
// heartbeats, which wait for the frame being written: a write blocked on
// a link gone dark never returns, and the watch behind it never looked.
func (o *outbound) keep(ctx context.Context, s *stream, done chan<- struct{}) {
	defer close(done)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		t := time.NewTicker(o.n.opts.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if o.idle() {
				s.fail(fmt.Errorf("%w from %s for %s", errAckSilence, o.spec.DestRegion, o.ackLimit()))
				return
			}
		}
	}()
	defer func() { <-watched }()
	t := time.NewTicker(o.n.opts.Heartbeat)
	defer t.Stop()
	for {
		if err := o.heartbeat(s); err != nil {
			if ctx.Err() == nil { // not the connection's closing
				s.fail(err)
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (o *outbound) idle() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n.now().Sub(o.ackAt) > o.ackLimit()
}

// ackLimit is how long a stream may go without an acknowledgement:
// StreamIdle, and with hard fencing at most 2/5 of the lease (see onAck),
// though never under three heartbeats (the destination acknowledges
// each: a healthy stream must not be cut; the configuration asks for a
// lease of at least eight heartbeats, so this floor only serves tests'
// very short leases).
func (o *outbound) ackLimit() time.Duration {
	if l := o.n.opts.Lease; l > 0 {
		return min(o.n.opts.StreamIdle, max(2*l/5, 3*o.n.opts.Heartbeat))
	}
	return o.n.opts.StreamIdle
}

// pace is how far behind its sending the destination's echoes may fall
// before a stream under hard fencing holds its frames back (awaitPace):
// an eighth of the lease, so that a heartbeat queued behind that much of
// the link, a frame and the destination's handling of them is still
// answered within the 2/5 of the lease an acknowledgement may take
// (ackLimit); never under three heartbeats (an echo answers a
// heartbeat, sent every Heartbeat).
func (o *outbound) pace() time.Duration {
	return max(o.n.opts.Lease/8, 3*o.n.opts.Heartbeat)
}

// checkRetention releases the journal pin of a destination that fell
// further behind than MaxLagAge or MaxLagBytes allow: it then needs a
// resync, but the source's disk does not fill for a dead peer. It returns
// by how much the destination is over them ("" when it is not).
//
// The limits hold during an initial sync or a resync too: those pin the
// journal from their base (to replay what came after it once they are
// done), and the journal counted is then the one from that base. Before,
// a sync was not checked: one that could not finish (the replica's disk
// full, the link down for hours) held the source's journal without
// bound.
func (o *outbound) checkRetention(ctx context.Context) (over string) {
	st := o.status()
	pin, pinned := o.fs.Pins()[pinName(o.spec.ID)]
	if !pinned {
		return ""
	}
	from, during := st.Applied+1, ""
	if st.Sync.Active {
		o.mu.Lock()
		from, during = pin, o.syncKind
		o.mu.Unlock()
	}
	if from == 0 || st.SourceDurable < from {
		return ""
	}
	o.mu.Lock()
	held := uint64(float64(st.SourceDurable+1-from) * o.avgLocked())
	o.mu.Unlock()
	note := releaseNote{at: o.n.now(), during: during}
	if int64(held) > o.n.opts.MaxLagBytes {
		note.limit, note.held = limitBytes, held
		over = fmt.Sprintf("%d bytes of journal held (limit max_lag_bytes %d)", held, o.n.opts.MaxLagBytes)
	} else if recs, err := o.fs.ReadJournal(ctx, from, 1, 1); err == nil && len(recs) == 1 {
		if age := o.n.now().Sub(recs[0].Time); age > o.n.opts.MaxLagAge {
			note.limit, note.age = limitAge, age
			over = fmt.Sprintf("oldest unreplicated change is %s old (limit max_lag_age %s)", age.Round(time.Second), o.n.opts.MaxLagAge)
		}
	}
	if over == "" {
		return ""
	}
	if during != "" {
		over += " during the " + during
	}
	// The mark is durable before the pin goes: a crash in between leaves
	// both, and the restart clears the pin (AddOutbound). Not saved, the
	// pin stays until a later check saves it: released without it, a
	// crash brought the pin back at the destination's old applied point.
	o.pinMu.Lock()
	defer o.pinMu.Unlock()
	if now, ok := o.fs.Pins()[pinName(o.spec.ID)]; !ok || now != pin {
		return "" // a sync's start or a removal moved it meanwhile
	}
	if err := o.markReleased(from - 1); err != nil {
		o.n.log.Warn("destination past the retention limits: the release is not saved, the journal stays pinned until it is",
			"replication", o.spec.ID, "over", over, "err", err)
		return ""
	}
	if err := o.fs.ClearPin(pinName(o.spec.ID)); err != nil {
		o.n.log.Warn("journal pin not released", "replication", o.spec.ID, "err", err)
	}
	o.mu.Lock()
	o.pinned = 0
	o.release = note
	o.st.State, o.st.Message = StateError, "" // status says why (releasedMessage)
	o.mu.Unlock()
	return over
}

// avgLocked is the running average of a journal record's bytes, 256 before
// any was shipped (o.mu held).
func (o *outbound) avgLocked() float64 {
	if o.avgRec == 0 {
		return 256
	}
	return o.avgRec
}

// The retention limits, as the configuration names them.
const (
	limitBytes = "max_lag_bytes"
	limitAge   = "max_lag_age"
)

// releaseNote is what a release by the retention limits saw: when, which
// limit (limitBytes, limitAge), the journal bytes held or the age of the
// oldest change not replicated, and the sync it interrupted, if any.
type releaseNote struct {
	at     time.Time
	limit  string
	held   uint64
	age    time.Duration
	during string
}

// releasedMessage is the status of a destination whose journal pin the
// retention limits released: which limit, by how much, when, and that a
// resync follows; behind is how many journal bytes it is behind now (0:
// not known). A zero note is a release before the source restarted.
func releasedMessage(n releaseNote, maxBytes int64, maxAge time.Duration, behind uint64) string {
	var b strings.Builder
	b.WriteString("The destination fell too far behind")
	switch n.limit {
	case limitBytes:
		fmt.Fprintf(&b, ": %d bytes of journal were held for it, %d over the limit %s (%d bytes),", n.held, int64(n.held)-maxBytes, limitBytes, maxBytes)
	case limitAge:
		// Whole seconds past a minute; below, 10 ms (a limit of
		// seconds is crossed by less than one).
		round := func(d time.Duration) time.Duration {
			if d < time.Minute {
				return d.Round(10 * time.Millisecond)
			}
			return d.Round(time.Second)
		}
		fmt.Fprintf(&b, ": its oldest change not replicated was %s old, %s over the limit %s (%s),", round(n.age),
			round(n.age-maxAge), limitAge, maxAge)
	default:
		fmt.Fprintf(&b, " the retention limits (%s %d bytes, %s %s) before the source restarted,", limitBytes, maxBytes, limitAge, maxAge)
	}
	b.WriteString(" and the source released the journal it needs")
	if !n.at.IsZero() {
		b.WriteString(" at " + n.at.UTC().Format(time.RFC3339))
	}
	if n.during != "" {
		b.WriteString(", during its " + n.during)
	}
	if behind > 0 {
		fmt.Fprintf(&b, "; it is %d bytes behind now", behind)
	}
	b.WriteString(". It is resynchronised (differences only) once it is reachable.")
	return b.String()
}

// markReleased sets the retention limits' release mark (the destination
// applied up to at) and saves it durably (Progress.Released). When the
// save fails it returns the error with the mark as it was.
func (o *outbound) markReleased(at uint64) error {
	o.mu.Lock()
	was, wasAt := o.st.released, o.releasedAt
	o.st.released, o.releasedAt = true, at
	o.mu.Unlock()
	if err := o.n.saveProgress(RoleSource, o.spec.ID, o.snapshot, true); err != nil {
		o.mu.Lock()
		o.st.released, o.releasedAt = was, wasAt
		o.mu.Unlock()
		return err
	}
	return nil
}

// syncPin pins the journal from seq on for an initial sync or a resync
// (kind),
// which replaces the retention limits' release, if any: the mark is
// cleared (durably) once the sync's pin is set, not before (a resync that
// failed before it had replaced nothing). A save that fails leaves the
// stored mark: a restart resyncs the destination once more.
func (o *outbound) syncPin(seq uint64, kind string) error {
	o.pinMu.Lock()
	defer o.pinMu.Unlock()
	if err := o.fs.SetPin(pinName(o.spec.ID), seq); err != nil {
		return err
	}
	o.mu.Lock()
	was := o.st.released
	o.st.released, o.syncKind = false, kind
	o.mu.Unlock()
	if was {
		o.n.saveProgress(RoleSource, o.spec.ID, o.snapshot, true)
	}
	return nil
}

// pushBlocks sends the blocks among ids the destination may lack: all of
// them when asked, else those not pushed recently on this stream.
func (o *outbound) pushBlocks(ctx context.Context, s *stream, ids []blocks.ID, asked bool) error {
	newMsg := func() *blocksMsg {
		if s.sums {
			return &blocksMsg{sums: []uint32{}}
		}
		return &blocksMsg{}
	}
	m := newMsg()
	size := 0
	// The holds on the blocks of the frame being filled: released once
	// it is sent (the transport has copied them by then), or on return.
	var holds []engine.Hold
	release := func() {
		for _, h := range holds {
			h.Release()
		}
		holds = holds[:0]
	}
	defer release()
	flush := func() error {
		if len(m.ids) == 0 {
			return nil
		}
		parts := m.parts()
		n := 0
		for _, p := range parts {
			n += len(p)
		}
		err := s.sendParts(m.typ(), parts)
		release()
		if err != nil {
			return err
		}
		o.update(func(st *Status) {
			st.ShippedBlocks += uint64(len(m.ids))
			st.ShippedBytes += uint64(n)
			if st.Sync.Active {
				st.Sync.BytesDone += uint64(size)
			}
		})
		m, size = newMsg(), 0
		return nil
	}
	var want []blocks.ID
	for _, id := range ids {
		if asked || !s.pushed.has(id) {
			want = append(want, id)
		}
	}
	if len(want) == 0 {
		// Nothing to push (most records add no block, or only blocks
		// pushed recently): no reader to start and wait for before the
		// records go out.
		return nil
	}
	// Blocks are read (from the cache, or read and decrypted: the
	// destination verifies them) a few at a time ahead of the sending,
	// and their checksums computed there.
	const ahead = 8
	type read struct {
		data []byte
		hold engine.Hold
		err  error
		sum  uint32
	}
	results := make([]chan read, len(want))
	for i := range results {
		results[i] = make(chan read, 1)
	}
	sem := make(chan struct{}, ahead)
	rctx, cancel := context.WithCancel(ctx)
	launched := make(chan int, 1) // how many reads were started
	o.blockReaders.Add(1)
	go func() {
		n := 0
		defer func() { launched <- n }()
		for i, id := range want {
			select {
			case sem <- struct{}{}:
			case <-rctx.Done():
				return
			}
			n++
			go func() {
				data, h, err := o.fs.ShipBlock(rctx, id)
				var sum uint32
				if err == nil && s.sums {
					sum = blocks.Checksum(id, data)
				}
				results[i] <- read{data, h, err, sum}
			}()
		}
	}()
	taken := 0 // results received below
	defer func() {
		// On an early return, the reads started and not taken give
		// their buffers back to the pool once they end.
		cancel()
		for i, n := taken, <-launched; i < n; i++ {
			(<-results[i]).hold.Release()
		}
	}()
	for i, id := range want {
		var r read
		select {
		case r = <-results[i]:
			taken++
		case <-ctx.Done():
			return ctx.Err()
		}
		<-sem
		if r.err != nil {
			r.hold.Release()
		}
		data, err := r.data, r.err
		if asked && errors.Is(err, blocks.ErrNotFound) {
			// Collected here: the destination is behind what the
			// journal can replay (it lost acknowledged state).
			o.mu.Lock()
			o.blockGone = true
			o.mu.Unlock()
			return fmt.Errorf("%w: block %s", errNeedsResync, id)
		}
		if err != nil {
			return fmt.Errorf("replication: read block %s: %w", id, err)
		}
		s.pushed.add(id)
		if size+len(data) > o.frameBytes(maxBlocksFrame) {
			if err := flush(); err != nil {
				r.hold.Release() // taken, and in no frame yet
				return err
			}
		}
		m.ids = append(m.ids, id)
		m.data = append(m.data, data)
		if m.sums != nil {
			m.sums = append(m.sums, r.sum)
		}
		holds = append(holds, r.hold)
		size += len(data)
	}
	return flush()
}

// idCache is a bounded set of recently used block ids.
type idCache struct {
	max   int
	order []blocks.ID
	set   map[blocks.ID]struct{}
}

func newIDCache(max int) *idCache {
	return &idCache{max: max, set: make(map[blocks.ID]struct{}, max)}
}

func (c *idCache) has(id blocks.ID) bool { _, ok := c.set[id]; return ok }

func (c *idCache) add(id blocks.ID) {
	if c.has(id) {
		return
	}
	if len(c.order) >= c.max {
		delete(c.set, c.order[0])
		c.order = c.order[1:]
	}
	c.order = append(c.order, id)
	c.set[id] = struct{}{}
}

// logSyncDone logs the end of an initial sync or resync with its size,
// duration and rate.
func (o *outbound) logSyncDone(msg string, p SyncProgress, args ...any) {
	d := p.Finished.Sub(p.Started)
	rate := 0.0
	if d > 0 {
		rate = float64(p.BytesDone) / d.Seconds()
	}
	o.n.log.Info(msg, append([]any{"replication", o.spec.ID, "fs_id", o.spec.SourceFS, "dest_region", o.spec.DestRegion,
		"dest_fs", o.spec.DestFS, "bytes", p.BytesDone, "files", p.FilesDone, "duration", d.Round(time.Millisecond),
		"rate", fmt.Sprintf("%.1f MiB/s", rate/(1<<20))}, args...)...)
}

// storeFormat is the store format this node announces to its sources
// (hdrStoreFormat); 0: none.
func (n *Node) storeFormat() int {
	switch f := n.opts.storeFormat; {
	case f < 0:
		return 0
	case f > 0:
		return f
	}
	return engine.FormatVersion
}

// formatError: the destination's store is of a format older than the
// records this source ships need (engine.ReplicaFormat). Nothing is
// shipped; the source asks again, and ships once the destination runs
// a newer release.
type formatError struct {
	region string
	format int // 0: the destination did not say (older still)
}

func (e *formatError) Error() string {
	if e.format == 0 {
		return fmt.Sprintf("the destination's regionfs (%s) is older than the source's (store format %d): upgrade the destination region first",
			e.region, engine.FormatVersion)
	}
	return fmt.Sprintf("the destination's regionfs (%s, store format %d) is older than the source's (%d): upgrade the destination region first",
		e.region, e.format, engine.FormatVersion)
}

// checkFormat refuses a destination whose answer says a store format
// older than engine.ReplicaFormat, or none.
func (o *outbound) checkFormat(hdr http.Header) error {
	f, err := strconv.Atoi(hdr.Get(hdrStoreFormat))
	if err != nil || f < 0 {
		f = 0
	}
	if f < engine.ReplicaFormat {
		return &formatError{region: o.spec.DestRegion, format: f}
	}
	o.update(func(st *Status) {
		if st.formatRefused {
			st.formatRefused = false
			st.State, st.Message = st.beforeRefused, ""
		}
	})
	return nil
}

// features returns the comma-separated list of those of fs this node
// speaks (all but the ones a test withholds).
func (n *Node) features(fs ...string) string {
	var out []string
	for _, f := range fs {
		if !slices.Contains(n.opts.withheld, f) {
			out = append(out, f)
		}
	}
	return strings.Join(out, ",")
}

// hasFeature says whether the comma-separated list names feature.
func hasFeature(list, feature string) bool {
	for f := range strings.SplitSeq(list, ",") {
		if strings.TrimSpace(f) == feature {
			return true
		}
	}
	return false
}
