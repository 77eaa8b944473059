package replication

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/blocks"
)

// InboundSpec names a replication this region receives.
type InboundSpec struct {
	ID           string
	SourceRegion string
	SourceFS     string // engine name at the source (for status and logs)
	DestFS       string // engine name of the local replica
	// Fork is, for a resync (the replica was an existing file system of
	// the same lineage), the last seq both histories share; 0 = unknown.
	Fork uint64
}

// AddInbound registers a replication whose source may now open streams
// into the local replica DestFS. Adding an existing id updates nothing.
func (n *Node) AddInbound(spec InboundSpec) error {
	fs, err := n.opts.Engine.Replica(spec.DestFS)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return engine.ErrClosed
	}
	if _, ok := n.inbound[spec.ID]; ok {
		return nil
	}
	now := n.now()
	in := &inbound{n: n, spec: spec, fs: fs, added: now,
		st: Status{ID: spec.ID, Role: RoleDestination, FS: spec.DestFS, PeerRegion: spec.SourceRegion, PeerFS: spec.SourceFS,
			ReceivingSince: now}}
	kept := n.loadProgress(RoleDestination, spec.ID)
	kept.restore(&in.st)
	// Until a heartbeat says more, the replica holds everything up to the
	// last saved LastReplicated, and up to its newest applied record's
	// source time (durable with it): a destination restarted while its
	// source is out of reach reports its lag growing from there, not none
	// (the lag and TimeSinceLastSync were not reported at all, as during
	// an initial sync).
	if fs.Consistent() {
		in.replicatedBefore = kept.LastReplicated
		if _, seq, at := fs.Applied(); seq > 0 && at.Unix() > 0 && at.After(in.replicatedBefore) {
			in.replicatedBefore = at
		}
	}
	n.inbound[spec.ID] = in
	return nil
}

// RemoveInbound forgets a received replication, closing its stream.
func (n *Node) RemoveInbound(id string) {
	n.mu.Lock()
	in := n.inbound[id]
	delete(n.inbound, id)
	n.mu.Unlock()
	if in != nil {
		in.detach()
		in.dropCheckpoint()
		n.forgetProgress(RoleDestination, id)
	}
}

// snapshot returns a copy of the status as kept.
func (in *inbound) snapshot() Status {
	in.mu.Lock()
	defer in.mu.Unlock()
	st := in.st
	st.ApplyLag = st.ApplyLag.clone()
	if st.LastReplicated.IsZero() {
		st.LastReplicated = in.replicatedBefore
	}
	return st
}

// InboundStatus returns one received replication's status.
func (n *Node) InboundStatus(id string) (Status, bool) {
	n.mu.Lock()
	in := n.inbound[id]
	n.mu.Unlock()
	if in == nil {
		return Status{}, false
	}
	return in.status(), true
}

// Promotion is the outcome of a failover: the replica's recovery point and
// what it knew of the source when it stopped.
type Promotion struct {
	engine.RecoveryPoint
	// SourceDurable is the newest durable seq the source announced (in a
	// heartbeat at SourceHeard): at least SourceDurable−Seq of its
	// transactions did not reach the replica.
	SourceDurable uint64
	SourceHeard   time.Time
}

// AtLeastLost is how many source transactions are known to be missing.
func (p Promotion) AtLeastLost() uint64 {
	seq := p.Seq
	if p.Abandoned {
		seq = p.Shared
	}
	if p.SourceDurable > seq {
		return p.SourceDurable - seq
	}
	return 0
}

// AbandonedReason says what a promotion that abandoned a resync kept.
func (p Promotion) AbandonedReason() string {
	return fmt.Sprintf("a resync was replacing the replica's state when its source was lost or the replication deleted: "+
		"the resync was abandoned and the file system is back at its own state from before the resync (its seq %d); "+
		"nothing the source wrote after seq %d, where the two histories forked, is in it", p.Seq, p.Shared)
}

// EmptyReason says why an empty promotion recovered nothing.
func (p Promotion) EmptyReason() string {
	return "the initial sync had not finished: no state of the source was recovered"
}

// ForkPin names the journal pin that keeps both sides' records from a
// fork point on, so that a failback can send only what changed.
const ForkPin = "fork"

// Promote ends a received replication at a transaction boundary: the
// stream is closed, every record applied so far stays, and the replica
// becomes a writable primary at a new epoch, durably, before Promote
// returns. Its journal is pinned from the fork point on (ForkPin) for a
// later failback. A replica whose initial sync is not finished has no
// consistent state to promote: it becomes a new, empty writable file
// system (engine.Replica.PromoteEmpty; the Promotion says Empty) and keeps
// no fork pin. One being resynced has no consistent state either: its
// resync is abandoned and it gets back its own state from before the
// resync (engine.Replica.AbandonResync; the Promotion says Abandoned).
// The registration is removed; the caller records why (so a source that
// calls later learns it, see Hooks.Gone).
func (n *Node) Promote(ctx context.Context, id string) (Promotion, error) {
	return n.promote(ctx, id, false)
}

// ForcePromote is Promote without waiting for the source's lease to
// expire (hard fencing): the operator vouches that the source is down.
func (n *Node) ForcePromote(ctx context.Context, id string) (Promotion, error) {
	return n.promote(ctx, id, true)
}

func (n *Node) promote(ctx context.Context, id string, force bool) (Promotion, error) {
	n.mu.Lock()
	in := n.inbound[id]
	n.mu.Unlock()
	if in == nil {
		return Promotion{}, fmt.Errorf("replication %s: %w", id, ErrNotFound)
	}
	// No stream attaches and none acknowledges from here on (serveStream
	// refuses while promoting; detach ends the current stream and waits
	// for its applier): nothing renews the source's lease any more. Only
	// then is the source's last contact read, so that it counts every
	// acknowledgement it was sent. Read first, a stream attached in
	// between (a link back, a source restarted) renewed the lease after
	// the read, and the promotion, its wait counted from the read (none
	// at all once the lease had run out), left the source writable beside
	// the promoted replica for up to a lease.
	in.mu.Lock()
	in.promoting = true
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		in.promoting = false
		in.mu.Unlock()
	}()
	in.detach()
	if lease := n.opts.Lease; lease > 0 && !force {
		// Hard fencing: the source stops writing once its lease runs out;
		// wait for that (and a margin for clock rates) before promoting.
		// LastContact is this process's: a destination restarted (or a
		// replication just added) may have acknowledged the source before,
		// renewing a lease that still runs. Its start is the earliest
		// contact it can vouch for.
		in.mu.Lock()
		last := in.st.LastContact
		if in.added.After(last) {
			last = in.added
		}
		in.mu.Unlock()
		if n.promoteHook != nil {
			n.promoteHook()
		}
		if wait := last.Add(lease + lease/2).Sub(n.now()); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return Promotion{}, ctx.Err()
			}
		}
	}
	n.mu.Lock()
	in = n.inbound[id]
	delete(n.inbound, id)
	n.mu.Unlock()
	if in == nil {
		return Promotion{}, fmt.Errorf("replication %s: %w", id, ErrNotFound)
	}
	in.detach()
	rp, err := in.fs.Promote(ctx)
	if errors.Is(err, engine.ErrNotReady) {
		in.mu.Lock()
		srcEpoch := in.sourceEpoch
		in.mu.Unlock()
		// A resync is replacing the replica's earlier state (a
		// failback whose source is lost): the resync is abandoned and
		// the file system gets back its own state from before it.
		rp, err = in.fs.AbandonResync(ctx, srcEpoch)
		if errors.Is(err, engine.ErrInvalid) || errors.Is(err, engine.ErrNoState) {
			// The initial sync is not finished: the replica
			// holds no consistent state of its source, only part of one.
			// It becomes a new, empty file system (AWS lets a replication
			// be deleted while ENABLING, and the destination turns
			// writable); nothing of the partial copy is exposed.
			rp, err = in.fs.PromoteEmpty(ctx, srcEpoch)
		}
	}
	if err != nil {
		// Still a replica: keep receiving.
		n.mu.Lock()
		if _, ok := n.inbound[id]; !ok && !n.closed {
			n.inbound[id] = in
		}
		n.mu.Unlock()
		return Promotion{}, err
	}
	if !rp.Empty {
		if err := in.fs.SetPin(ForkPin, rp.Seq+1); err != nil {
			n.log.Warn("fork pin", "fs_id", in.spec.DestFS, "err", err)
		}
	}
	p := Promotion{RecoveryPoint: rp}
	in.mu.Lock()
	p.SourceDurable, p.SourceHeard = max(in.st.SourceDurable, rp.Seq), in.st.LastContact
	in.mu.Unlock()
	if rp.Empty {
		n.log.Warn("replica promoted empty: "+p.EmptyReason(),
			"replication", id, "fs_id", in.spec.DestFS, "epoch", rp.NewEpoch, "source_durable", p.SourceDurable)
		return p, nil
	}
	if rp.Abandoned {
		// What it shares with the source: its own history left the
		// source's at the fork (a failback), or is a prefix of it (a
		// replica that fell behind: no fork).
		// The engine knows it once the source's epoch history arrived;
		// the fork of a failback is known from the start.
		in.mu.Lock()
		if p.Shared == 0 || p.Shared > rp.Seq {
			p.Shared = rp.Seq
		}
		if in.spec.Fork > 0 {
			p.Shared = min(p.Shared, in.spec.Fork)
		}
		in.mu.Unlock()
		n.log.Warn("replica promoted: "+p.AbandonedReason(),
			"replication", id, "fs_id", in.spec.DestFS, "seq", rp.Seq, "epoch", rp.NewEpoch, "source_durable", p.SourceDurable)
		return p, nil
	}
	n.log.Info("replica promoted", "replication", id, "fs_id", in.spec.DestFS,
		"recovery_seq", rp.Seq, "recovery_time", rp.Time, "epoch", rp.NewEpoch, "at_least_lost", p.AtLeastLost())
	return p, nil
}

type inbound struct {
	n    *Node
	spec InboundSpec
	fs   *engine.Replica
	// added: when this process began receiving the replication
	// (AddInbound); a promotion with hard fencing waits the lease from it
	// at least.
	added time.Time
	// replicatedBefore: what the replica held when this process began
	// receiving (AddInbound: the kept LastReplicated or the replica's
	// applied time), reported as LastReplicated until a heartbeat gives
	// one (the acks say only what this process learned).
	replicatedBefore time.Time

	attachMu sync.Mutex // serialises streams: one applier at a time

	mu     sync.Mutex // guards the fields below
	cancel context.CancelFunc
	done   chan struct{}
	st     Status
	hbs    []heartbeat // heartbeats whose seq is not applied yet, oldest first
	// sourceEpoch: the newest epoch the source's heartbeats announced.
	sourceEpoch uint64
	// promoting: a promotion waits for the source's lease to run out.
	promoting bool
	// repairing: a verification turns the replica into one being
	// resynced (no stream attaches meanwhile).
	repairing bool
	cp        *checkpoint // verification checkpoint to take or taken
	vs        verifyStats
	// lagSeen: the newest seq whose apply lag st.ApplyLag counted.
	lagSeen uint64

	// chunkFrameBufs counts the buffers allocated for initial-sync chunk
	// frames over every stream (framePool; a regression guard's count).
	chunkFrameBufs atomic.Uint64
	// acksSent counts the acks of every stream (a regression guard's
	// count: acks per records frame).
	acksSent atomic.Uint64
	// recordsRead counts the records frames of every stream, and
	// recordsHanded those that its reader handed to the stream's loop (a
	// regression guard's count: hand-offs per records frame, see
	// receiver.handleNow).
	recordsRead, recordsHanded atomic.Uint64
	// heldBlocks is how many pushed blocks its streams hold in flight on
	// the replica (receiver.hold): 0 once they ended (a test checks it).
	heldBlocks atomic.Int64
}

// msgReplicaFull is the destination's status message while its data disk
// is below the free-space floor.
const msgReplicaFull = "the replica's data disk is full, waiting for space"

func (in *inbound) status() Status {
	st := in.snapshot()
	in.mu.Lock()
	vs := in.vs
	in.mu.Unlock()
	epoch, applied, _ := in.fs.Applied()
	st.Applied, st.AppliedEpoch = applied, epoch
	if st.SourceDurable > applied {
		st.PendingRecords = st.SourceDurable - applied
	}
	ss := in.fs.SyncState()
	st.Sync.Active = ss.Active
	now := in.n.now()
	st.LinkUp = !st.LastContact.IsZero() && now.Sub(st.LastContact) < in.n.opts.StreamIdle
	switch {
	case st.State == StateError:
	case st.LastContact.IsZero() || now.Sub(st.LastContact) > 2*in.n.opts.StreamIdle:
		since := st.LastContact
		if since.IsZero() {
			st.Message = "waiting for the source region " + in.spec.SourceRegion
		} else {
			st.Message = fmt.Sprintf("no contact with the source region %s for %s", in.spec.SourceRegion, now.Sub(since).Round(time.Second))
			if now.Sub(since) >= in.n.opts.PauseAfter {
				st.State = StatePaused
				break
			}
		}
		if !in.fs.Consistent() {
			st.State = StateEnabling
		} else {
			st.State = StateEnabled
		}
	case !in.fs.Consistent():
		st.State, st.Message = StateEnabling, "initial sync in progress"
		if errors.Is(in.fs.CheckSpace(0), engine.ErrNoSpace) {
			st.Message = msgReplicaFull
		}
	default:
		st.State, st.Message = StateEnabled, ""
		if errors.Is(in.fs.CheckSpace(0), engine.ErrNoSpace) {
			// In touch with the source, but every stream ends at the
			// first change the replica cannot store (see outcome).
			st.Message = msgReplicaFull
		}
	}
	st.setVerify(vs, !in.fs.Consistent())
	return st
}

// detach closes the current stream, if any, and waits for its applier.
func (in *inbound) detach() {
	in.mu.Lock()
	cancel, done := in.cancel, in.done
	in.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// frame is a received message.
type frame struct {
	typ byte
	p   []byte
}

func (n *Node) serveStream(w http.ResponseWriter, r *http.Request) {
	// GET asks for the stream on this connection itself (an HTTP/1.1
	// Upgrade, see upgradeProto); POST carries it in the request and
	// response bodies (HTTP/2, what sources before the upgrade send).
	upgrade := r.Method == http.MethodGet
	if upgrade && !upgradeRequested(r) {
		http.Error(w, "a stream over GET is an HTTP/1.1 upgrade to "+upgradeProto, http.StatusBadRequest)
		return
	}
	from, cn, err := n.verifyRequest(r, nil)
	if err != nil {
		n.log.Warn("peer stream refused", "err", err, "remote", r.RemoteAddr)
		http.Error(w, "peer authentication failed", http.StatusForbidden)
		return
	}
	id := r.URL.Query().Get("id")
	n.mu.Lock()
	in := n.inbound[id]
	closed := n.closed
	n.mu.Unlock()
	if closed {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if in == nil && n.hooks() != nil && !n.loaded.Load() {
		http.Error(w, "starting: replication configurations not loaded yet", http.StatusServiceUnavailable)
		return
	}
	if k, ok := n.hooks().(KnownHooks); ok && in == nil && k.Known(id) {
		// Configured here, but its replica is not open on this node yet
		// (a region whose file systems are spread over nodes: it is being
		// taken over): the source retries.
		http.Error(w, "replication "+id+" is not received here yet", http.StatusServiceUnavailable)
		return
	}
	if in == nil {
		g := Gone{Reason: "the destination region has no replication " + id}
		if n.hooks() != nil {
			g = n.hooks().Gone(r.Context(), from, id)
		}
		writeGone(w, g)
		return
	}
	if in.spec.SourceRegion != from {
		http.Error(w, "replication "+id+" is not from region "+from, http.StatusForbidden)
		return
	}
	if mode, epoch := in.fs.Mode(); mode != engine.ModeReplica {
		if g, ok := in.promotedGone(epoch); ok {
			writeGone(w, g)
		} else {
			http.Error(w, "replication "+id+" is changing mode", http.StatusServiceUnavailable)
		}
		return
	}
	in.mu.Lock()
	promoting, repairing := in.promoting, in.repairing
	in.mu.Unlock()
	if promoting {
		http.Error(w, "failover in progress", http.StatusServiceUnavailable)
		return
	}
	if repairing {
		http.Error(w, "repair starting", http.StatusServiceUnavailable)
		return
	}
	// One stream at a time: a new one replaces the old.
	in.detach()
	in.attachMu.Lock()
	defer in.attachMu.Unlock()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	in.mu.Lock()
	in.cancel, in.done = cancel, done
	promoting, repairing = in.promoting, in.repairing
	in.mu.Unlock()
	// A promotion (or removal) that took the registration away before
	// this stream was attached did not see it to close it: look again,
	// now that a later one would (promote removes the registration, then
	// detaches; this stream attached, then looks).
	n.mu.Lock()
	current := n.inbound[id] == in
	n.mu.Unlock()
	if !current || promoting || repairing {
		http.Error(w, "replication "+id+" is being promoted, removed or repaired", http.StatusServiceUnavailable)
		return
	}
	if mode, epoch := in.fs.Mode(); mode != engine.ModeReplica {
		if g, ok := in.promotedGone(epoch); ok {
			writeGone(w, g)
		} else {
			http.Error(w, "replication "+id+" is changing mode", http.StatusServiceUnavailable)
		}
		return
	}

	secret := n.peers[from].Secret
	sn := newNonce()
	h := http.Header{}
	h.Set(hdrNonce, sn)
	h.Set(hdrAuth, sign(secret, "stream-ok", cn, sn))
	features := []string{featureBlockSums, featureDurableTimes}
	channelAuth := channelAuthenticated(r)
	if channelAuth {
		features = append(features, featureChunkSums)
	}
	asked := r.Header.Get(hdrFeatures)
	echo := hasFeature(asked, featureLeaseEcho)
	if echo {
		features = append(features, featureLeaseEcho)
	}
	if hasFeature(asked, featureBlockAsks) {
		features = append(features, featureBlockAsks)
	}
	if hasFeature(asked, featureWaitReason) {
		features = append(features, featureWaitReason)
	}
	answer := n.features(features...)
	h.Set(hdrFeatures, answer)
	if f := n.storeFormat(); f > 0 {
		h.Set(hdrStoreFormat, strconv.Itoa(f))
	}
	var (
		out   io.Writer
		flush func() error
		body  io.Reader = r.Body
	)
	if upgrade {
		conn, brw, err := n.hijackStream(ctx, w, h)
		if err != nil {
			n.log.Debug("stream upgrade failed", "replication", id, "err", err)
			return
		}
		defer n.dropRaw(conn)
		out, flush, body = brw.Writer, brw.Writer.Flush, brw.Reader
	} else {
		maps.Copy(w.Header(), h)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		if err := rc.Flush(); err != nil {
			return
		}
		out, flush = w, rc.Flush
	}
	key := sessionKey(secret, cn, sn)
	rx := &receiver{in: in, ctx: ctx, out: framer{key: key, dir: dirToSource}, w: out, flush: flush, channelAuth: channelAuth,
		acks: &in.acksSent, log: n.log.With("replication", id, "fs_id", in.spec.DestFS, "source_region", from),
		blockAsks: hasFeature(answer, featureBlockAsks), reasons: hasFeature(answer, featureWaitReason)}
	if echo {
		// Until a heartbeat comes, the newest source time heard is the
		// request's (signed and checked by verifyRequest, whole seconds:
		// rounded down, which only shortens the lease it grants).
		sec, _ := strconv.ParseInt(r.Header.Get(hdrTime), 10, 64)
		rx.echoes, rx.echo = true, time.Unix(sec, 0)
	}
	frames := make(chan frame, 64)
	rerr := make(chan error, 1)
	rx.bufs = newFramePool(ctx, &in.chunkFrameBufs)
	reader := framer{key: key, dir: dirToDest, alloc: rx.bufs.get}
	go func() {
		for {
			typ, p, err := reader.read(body)
			if err != nil {
				rerr <- err
				return
			}
			f := frame{typ, p}
			if typ == msgRecords {
				in.recordsRead.Add(1)
				if handled, err := rx.handleNow(f); err != nil {
					rerr <- err
					return
				} else if handled {
					continue
				}
			}
			rx.queued.Add(1)
			if typ == msgRecords {
				in.recordsHanded.Add(1)
			}
			select {
			case frames <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	err = rx.run(frames, rerr)
	if err != nil && ctx.Err() == nil {
		rx.log.Debug("replication stream ended", "err", err)
		in.mu.Lock()
		in.st.LastError = err.Error()
		in.mu.Unlock()
	}
}

// receiver applies one stream's messages, in order, to the replica: its
// loop (run) the frames its reader hands it, or the reader itself a
// records frame that arrives while the loop is idle (handleNow).
type receiver struct {
	in  *inbound
	ctx context.Context
	// mu is held by whoever handles frames (the loop, or the reader in
	// handleNow) and guards the receiver's fields from here on, except
	// those with a lock or an atomic of their own. queued counts the
	// frames handed to the loop and not handled yet: the reader handles
	// one itself only when none is (frames are handled in order).
	// looping: the loop has started (its first ack is sent); stopped: it
	// has ended, and nothing handles frames any more. lastFrame: when
	// the reader last handled frames itself (ns after started; the loop's
	// idle timer counts from it too).
	mu        sync.Mutex
	queued    atomic.Int64
	looping   bool
	stopped   bool
	started   time.Time
	lastFrame atomic.Int64
	out       framer
	// w carries acks to the source (the upgraded connection's buffered
	// writer, or the HTTP/2 response); flush sends what it holds.
	w     io.Writer
	flush func() error
	log   interface {
		Debug(string, ...any)
		Warn(string, ...any)
	}
	// A rewind was asked for at rewindAt; the frames that arrive behind
	// the point it asked to resend from (gaps) were on their way before
	// the source read the ask, and the resend comes after them: they are
	// not asked about again (see outcome).
	rewinding bool
	rewindAt  time.Time
	askRewind bool
	// asked holds the blocks asked for on this stream and not received
	// since, with when they were asked: the source pushes them before it
	// resends anything, so a record or chunk that needs one meanwhile
	// (the rest of a frame, a resend asked for earlier) does not ask for
	// it again (see ask). A new stream asks afresh: a push a cut stream
	// lost is asked for again.
	asked map[blocks.ID]time.Time
	// held: the pushed blocks this stream holds in flight on the replica
	// (engine.Replica.HoldBlocks, taken before the put), each with the
	// count of records and chunk frames received before it (consumed):
	// the source pushes blocks ahead of the frame that needs them, so a
	// hold ends once a later frame's records or chunks are all applied or
	// ingested (releaseHeld), or the stream ends. At most maxHeld.
	held     map[blocks.ID]uint64
	consumed uint64
	missing  []blocks.ID // to ask for in the next ack
	// blockAsks: the source takes asks for blocks without a rewind
	// (featureBlockAsks). The records a missing block stops are then
	// kept in pending (keeping) and applied once the blocks asked for are
	// stored; the records frames that follow are added to them. keepFrom
	// is the first record an apply could not apply for lack of blocks
	// (0: none). A frame that does not continue the kept records, or
	// comes once maxKept are kept, is dropped (dropped): a rewind is asked
	// for once the kept records are applied.
	blockAsks bool
	// reasons: the source takes ack.Waiting (featureWaitReason); waiting
	// is what the acks say (the replica's disk is full: msgReplicaFull,
	// from a stream's start or an apply it refused, until one succeeds).
	reasons  bool
	waiting  string
	keeping  bool
	keepFrom uint64
	dropped  bool
	pending  []*engine.Record
	// pendingDur[i]: when pending[i] became durable at the source (zero:
	// not sent, see featureDurableTimes).
	pendingDur []time.Time
	chunks     []engine.SyncChunk // initial-sync chunks to ingest together
	chunkBufs  [][]byte           // the frames they were decoded from (bufs)
	fatal      string
	rs         *resyncRx // a resync in progress
	// channelAuth: the stream's bytes cannot have been changed on their
	// way from the peer (TLS, or a connection within this host): a pushed
	// block that passes the checksum its authenticated header gives is
	// stored without its keyed hash (see putBlocks).
	channelAuth bool
	// Pushed blocks being stored (putBlocks, settlePuts), and the
	// buffers of the blocks frames they came in, used again once stored.
	bufs   *framePool
	puts   sync.WaitGroup
	putSem chan struct{}
	putMu  sync.Mutex
	putErr error // the first failed put ends the stream
	// Applies whose records are readable and whose commit is not durable
	// yet (engine.Replica.ApplyAsync): each is waited for in a goroutine
	// of its own, which says so on durable, so that the replica acks the
	// new durable point at once; durErr is the first failed commit.
	durs    sync.WaitGroup
	durable chan struct{}
	durMu   sync.Mutex
	durErr  error
	// lastAck is the body of the last ack sent; acks counts them (a test
	// counts the acks per records frame).
	lastAck []byte
	acks    *atomic.Uint64
	// echoes: the source asked for ack.Echo; echo is the source's time
	// on the newest message from it received (the request's, then the
	// latest heartbeat's, whatever its value: the source maps it to its
	// own clock reading). Every message is received before LastContact is set
	// for its batch, and each ack sets LastContact again before it is
	// sent: a promotion's wait, counted from LastContact, starts after
	// the source sent whatever the lease it grants runs from.
	echoes bool
	echo   time.Time
}

func (rx *receiver) run(frames <-chan frame, rerr <-chan error) error {
	defer rx.releaseHeld(math.MaxUint64) // after the puts: no hold outlives the stream
	defer rx.puts.Wait()                 // no put outlives the stream
	defer rx.durs.Wait()                 // nor a wait for an apply's commit
	defer func() {
		// The reader handles nothing from now on (handleNow).
		rx.mu.Lock()
		rx.stopped = true
		rx.mu.Unlock()
	}()
	rx.mu.Lock()
	rx.durable = make(chan struct{}, 1)
	rx.started = time.Now()
	if rx.reasons && errors.Is(rx.in.fs.CheckSpace(0), engine.ErrNoSpace) {
		rx.waiting = msgReplicaFull // said in the first ack already
	}
	if ss := rx.in.fs.SyncState(); ss.Active && ss.Resync {
		if err := rx.startResync(); err != nil {
			rx.mu.Unlock()
			return err
		}
	}
	if err := rx.ack(); err != nil {
		rx.mu.Unlock()
		return err
	}
	rx.looping = true
	rx.mu.Unlock()
	streamIdle := rx.in.n.opts.StreamIdle
	idle := time.NewTimer(streamIdle)
	defer idle.Stop()
	for {
		var batch []frame
		select {
		case f := <-frames:
			batch = append(batch, f)
		case err := <-rerr:
			return err
		case <-rx.durable:
			// An apply's commit is durable: ack the new applied point
			// (and take a checkpoint waiting for it).
			rx.mu.Lock()
			err := rx.durFailed()
			if err == nil {
				rx.in.maybeCheckpoint(rx.ctx)
				err = rx.ackIfNew(false)
			}
			rx.mu.Unlock()
			if err != nil {
				return err
			}
			continue
		case <-idle.C:
			// Frames the reader handled itself count as heard.
			if quiet := time.Since(rx.started) - time.Duration(rx.lastFrame.Load()); quiet < streamIdle {
				idle.Reset(streamIdle - quiet)
				continue
			}
			return fmt.Errorf("replication: source silent for %s", streamIdle)
		case <-rx.ctx.Done():
			return rx.ctx.Err()
		}
	drain:
		for len(batch) < 64 {
			select {
			case f := <-frames:
				batch = append(batch, f)
			default:
				break drain
			}
		}
		idle.Reset(streamIdle)
		rx.mu.Lock()
		err := rx.handleBatch(batch)
		rx.queued.Add(-int64(len(batch)))
		rx.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// handleNow handles a records frame on the reader's goroutine, as a batch
// of its own, when the stream's loop is idle and holds no frame not
// handled yet; it reports whether it did (otherwise the reader hands it
// to the loop). A records frame that arrives at an idle replica is then
// applied without the hand-off from reader to loop (a wake-up waiting for
// a CPU on a loaded machine; lag23) — and, the engine running the apply
// on its caller's goroutine when its committer is idle (ApplyAsync), one
// goroutine reads the frame and makes its records readable. Only records
// frames: the blocks and chunk frames of a replicated write or an initial
// sync are gathered by the loop into batches (one ingest or apply each)
// while the reader reads on.
func (rx *receiver) handleNow(f frame) (bool, error) {
	if !rx.mu.TryLock() {
		return false, nil
	}
	defer rx.mu.Unlock()
	if !rx.looping || rx.stopped || rx.queued.Load() > 0 {
		return false, nil
	}
	rx.lastFrame.Store(int64(time.Since(rx.started)))
	return true, rx.handleBatch([]frame{f})
}

// handleBatch handles frames received together (rx.mu held): each in
// order, then the records and chunks they brought, then an ack if it says
// something new.
func (rx *receiver) handleBatch(batch []frame) error {
	rx.in.mu.Lock()
	rx.in.st.LastContact = rx.in.n.now()
	rx.in.mu.Unlock()
	heard := false // a heartbeat, which is acked whatever the state
	for _, f := range batch {
		heard = heard || f.typ == msgHeartbeat
		if err := rx.handle(f); err != nil {
			return err
		}
	}
	if err := rx.putFailed(); err != nil {
		return err
	}
	if err := rx.durFailed(); err != nil {
		return err
	}
	if err := rx.flushChunks(); err != nil {
		return err
	}
	if err := rx.flushRecords(); err != nil {
		return err
	}
	if rx.rs != nil {
		if err := rx.settlePuts(); err != nil {
			return err
		}
		if err := rx.finishResync(); err != nil {
			return err
		}
	}
	return rx.ackIfNew(heard)
}

func (rx *receiver) handle(f frame) error {
	if rx.fatal != "" {
		if isBlocks(f.typ) {
			rx.bufs.put(f.p)
		}
		return nil // waiting for the operator; acks say why
	}
	// A promoted file system takes nothing from its former source: no
	// record, chunk or block, and above all no resync, which would turn
	// it back into a replica (engine.Replica.BeginResync). The stream
	// was detached before the promotion and a new one is refused; this
	// is the last guard.
	if mode, epoch := rx.in.fs.Mode(); mode != engine.ModeReplica {
		return fmt.Errorf("replication: %s is no longer a replica (%v at epoch %d: promoted): it takes nothing from its former source: %w",
			rx.in.spec.DestFS, mode, epoch, engine.ErrNotReplica)
	}
	if !isBlocks(f.typ) && f.typ != msgHeartbeat && !isChunk(f.typ) {
		// The chunks received before anything else are ingested first.
		if err := rx.flushChunks(); err != nil {
			return err
		}
	}
	if !isBlocks(f.typ) && f.typ != msgHeartbeat && f.typ != msgRecords && !isChunk(f.typ) {
		// Resync messages and unknown ones: the blocks pushed before them
		// are stored first (chunks wait for them in flushChunks).
		if err := rx.settlePuts(); err != nil {
			return err
		}
	}
	if f.typ == msgResyncBegin {
		if rx.rs != nil {
			return nil
		}
		err := rx.in.fs.BeginResync(rx.ctx, nil)
		if errors.Is(err, engine.ErrNoState) {
			// An initial sync short of the superblock has nothing a
			// resync could keep: it starts over (the next ack says so).
			if err := rx.in.fs.RestartSync(rx.ctx); err != nil {
				return rx.outcome(err)
			}
			rx.log.Warn("the source cannot resume the initial sync: it starts over")
			return nil
		}
		if err != nil {
			return rx.outcome(err)
		}
		rx.in.spec.Fork = 0 // the source's journal does not reach back: checksums
		rx.log.Warn("resync asked by the source: it cannot bring the replica up to date from its journal")
		return rx.startResync()
	}
	if rx.rs != nil {
		switch f.typ {
		case msgRanges, msgRangeSums, msgResyncDone:
			return rx.handleResync(f)
		case msgRecords, msgChunk, msgChunkSum:
			return fmt.Errorf("%w: message %d during a resync", ErrFrame, f.typ)
		}
	}
	switch f.typ {
	case msgBlocks, msgBlocksSum:
		m, err := decodeBlocks(f.typ, f.p)
		if err != nil {
			return err
		}
		for _, id := range m.ids {
			delete(rx.asked, id) // received (a failed put ends the stream)
		}
		if rx.rs == nil {
			rx.hold(m.ids)
		}
		if err := rx.putBlocks(m, f.p); err != nil {
			return err
		}
		if rx.rs != nil {
			if err := rx.settlePuts(); err != nil {
				return err
			}
			return rx.ingestWaiting()
		}
	case msgRecords:
		m, err := decodeRecords(f.p)
		if err != nil {
			return err
		}
		rx.consumed++
		if len(m.recs) == 0 {
			return nil
		}
		return rx.addRecords(m)
	case msgChunk, msgChunkSum:
		if f.typ == msgChunkSum && !rx.channelAuth {
			// Its pairs are outside the MAC: taken only where the
			// channel authenticates them (featureChunkSums).
			return fmt.Errorf("%w: a chunk checked by its checksum over a channel that is not authenticated", ErrFrame)
		}
		if err := rx.flushRecords(); err != nil {
			return err
		}
		c, err := decodeChunk(f.typ, f.p)
		if err != nil {
			return err
		}
		rx.consumed++
		// Ingested with the chunks that arrive with it, in one commit,
		// when it continues them. One that does not starts a run of its
		// own: after a rewind the chunks sent before the source heard of
		// it (past the cursor: a gap) arrive first and the resend from
		// the cursor right behind them, often in the same batch, and
		// IngestAll takes nothing after a chunk that does not connect.
		// The resend was dropped with them; the gap's ask for a rewind
		// was held back (one was just asked), and a source with nothing
		// left to send waited for good.
		if n := len(rx.chunks); n > 0 && !bytes.Equal(c.Lo, rx.chunks[n-1].Hi) {
			if err := rx.flushChunks(); err != nil {
				return err
			}
		}
		rx.chunks = append(rx.chunks, *c)
		rx.chunkBufs = append(rx.chunkBufs, f.p) // c's keys and values are in it
	case msgHeartbeat:
		h, err := decodeHeartbeat(f.p)
		if err != nil {
			return err
		}
		rx.echo = h.Time // the newest received (the source looks it up)
		rx.in.mu.Lock()
		rx.in.st.SourceDurable = h.Durable
		rx.in.sourceEpoch = max(rx.in.sourceEpoch, h.Epoch)
		if n := len(rx.in.hbs); n == 0 || rx.in.hbs[n-1].Durable < h.Durable {
			if n >= 4096 {
				rx.in.hbs = rx.in.hbs[1:]
			}
			rx.in.hbs = append(rx.in.hbs, *h)
		} else {
			rx.in.hbs[n-1].Time = h.Time // same durable point, later time
		}
		rx.in.mu.Unlock()
	default:
		return fmt.Errorf("%w: unknown message %d", ErrFrame, f.typ)
	}
	return nil
}

// putParallel bounds the pushed blocks being stored at once (each is
// hashed, sealed, written and synced on its own; the syncs overlap).
const putParallel = 8

// putBlocks starts storing pushed blocks, putParallel at a time across
// frames: it returns once the last of them has started (a frame's blocks
// need not be stored before the next frame is read). Whatever needs them
// stored — records, chunks, resync ranges — waits for settlePuts first.
func (rx *receiver) putBlocks(m *blocksMsg, buf []byte) error {
	if err := rx.putFailed(); err != nil {
		return err
	}
	if rx.putSem == nil {
		rx.putSem = make(chan struct{}, putParallel)
	}
	var left atomic.Int32
	left.Store(int32(len(m.ids)))
	if len(m.ids) == 0 {
		rx.bufs.put(buf)
	}
	for i, id := range m.ids {
		select {
		case rx.putSem <- struct{}{}:
		case <-rx.ctx.Done():
			return rx.ctx.Err()
		}
		rx.puts.Add(1)
		go func() {
			defer rx.puts.Done()
			defer func() {
				<-rx.putSem
				if left.Add(-1) == 0 {
					rx.bufs.put(buf) // no put reads the frame any more
				}
			}()
			if err := rx.putBlock(id, m, i); err != nil {
				if errors.Is(err, engine.ErrCorrupt) {
					err = fmt.Errorf("replication: pushed block %s does not match its id: %w", id, err)
				}
				rx.putMu.Lock()
				if rx.putErr == nil {
					rx.putErr = err
				}
				rx.putMu.Unlock()
			}
		}()
	}
	return nil
}

// putBlock stores the i-th block of m. Its id is authenticated (the frame
// MAC covers the header); its data is not, and is proven in one of two
// ways before it is stored under id:
//
//   - by its keyed hash, which must be id (the id key is the lineage's
//     secret): what any channel allows;
//   - when the frame carries checksums and the stream's channel is
//     authenticated (channelAuth), by the checksum the header gives. The
//     peer proved the pair's secret, the header is its (MAC), and the
//     channel delivers the data bytes as the peer sent them; the peer
//     read the block as its store's check allows (AES-GCM or CRC-32C) or
//     from its cache (hashed when written) and computed the checksum of
//     those bytes. The checksum catches what may still happen between
//     the two checks — a damaged buffer on either side, a bug that pairs
//     data with the wrong id — but, being no MAC, not a forgery; the
//     channel rules that out. This saves the keyed hash of every pushed
//     block, about a tenth of what the destination spends per byte.
//
// A checksum that fails is ErrCorrupt either way. Scrub and verification
// prove stored blocks by their keyed hash.
func (rx *receiver) putBlock(id blocks.ID, m *blocksMsg, i int) error {
	data := m.data[i]
	if m.sums == nil {
		return rx.in.fs.PutBlock(rx.ctx, id, data)
	}
	if blocks.Checksum(id, data) != m.sums[i] {
		return fmt.Errorf("%w: pushed block %s fails its checksum (damaged on its way)", engine.ErrCorrupt, id)
	}
	if rx.channelAuth {
		return rx.in.fs.PutBlockAuthentic(rx.ctx, id, data)
	}
	return rx.in.fs.PutBlock(rx.ctx, id, data)
}

// channelAuthenticated says whether the bytes of r's body reach this
// server as its peer sent them: over TLS (the source verified this
// server's certificate, so its TLS session ends here, and TLS
// authenticates every record), or over a TCP connection both of whose
// ends are loopback addresses (the bytes never leave this host's kernel:
// changing them takes privileges that reach the block files anyway).
// Cleartext HTTP/2 is meant for loopback only; a cleartext connection from
// elsewhere is not authenticated, and a port forwarded into a loopback
// listener would make it look local: use TLS across hosts.
func channelAuthenticated(r *http.Request) bool {
	if r.TLS != nil {
		return r.TLS.HandshakeComplete
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if local == nil {
		return false
	}
	return loopbackAddr(r.RemoteAddr) && loopbackAddr(local.String())
}

func loopbackAddr(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// framesInFlight bounds the blocks frames a stream holds at once: read
// and waiting, or being stored. Two keep putParallel puts busy across a
// frame boundary; more only read further ahead of the puts.
const framesInFlight = 4

// framePool holds the buffers of one stream's blocks frames. At most
// framesInFlight are out at once: the frame reader waits for one to come
// back (and HTTP/2's flow control holds the source back) instead of
// reading ahead into new memory. They are kept for the stream's life, not
// in a sync.Pool: on the development VM the first touch of fresh memory
// costs ~3 ms per MiB, and a reader that ran ahead of the puts took a new
// 8 MiB buffer for nearly every frame (the copy out of HTTP/2 into it was
// a quarter of an initial sync's CPU).
//
// Initial-sync chunk frames (~ChunkBytes each, one per MiB of a sync of
// small files) are not bounded — the source's window bounds them — but
// their buffers come back once the chunks are ingested (putChunk) and are
// taken again by the next ones: each was a fresh 1.1 MiB buffer before,
// 0.5–0.85 CPU-s of the destination per 100 000 small files.
type framePool struct {
	ctx   context.Context
	slots chan struct{} // one per blocks-frame buffer out
	free  chan []byte
	// chunks holds the buffers of ingested chunk frames; made counts the
	// ones allocated for chunk frames (a regression guard's count).
	chunks chan []byte
	made   *atomic.Uint64
	// chunkMax is the largest chunk frame so far (only get, on the
	// stream's one reader, uses it).
	chunkMax int
}

// chunkFramesKept bounds the chunk-frame buffers a stream keeps for
// reuse: about the chunks a source's window holds in flight (64 MiB of
// 1 MiB chunks). They are let go once the sync is over (dropChunks).
const chunkFramesKept = 64

func newFramePool(ctx context.Context, made *atomic.Uint64) *framePool {
	return &framePool{ctx: ctx, slots: make(chan struct{}, framesInFlight), free: make(chan []byte, framesInFlight),
		chunks: make(chan []byte, chunkFramesKept), made: made}
}

// get returns the buffer of a frame of type typ with an n-byte body; for
// a blocks frame it waits until fewer than framesInFlight are out.
func (fp *framePool) get(typ byte, n int) ([]byte, error) {
	if isChunk(typ) {
		fp.chunkMax = max(fp.chunkMax, n)
		for {
			select {
			case b := <-fp.chunks:
				if cap(b) >= n {
					return b[:n], nil
				}
				continue // a smaller one (the chunk size changed): dropped
			default:
			}
			break
		}
		if fp.made != nil {
			fp.made.Add(1)
		}
		// Chunks are not one size: each ends with the pair that takes it
		// past the source's chunk size. A buffer of exactly n bytes was
		// too small for about every other frame after it (dropped, and a
		// new one taken); with a quarter more, or the largest frame yet,
		// it serves them all.
		return make([]byte, n, max(n+n/4, fp.chunkMax)), nil
	}
	if !isBlocks(typ) {
		return make([]byte, n), nil
	}
	select {
	case fp.slots <- struct{}{}:
	case <-fp.ctx.Done():
		return nil, fp.ctx.Err()
	}
	select {
	case b := <-fp.free:
		if cap(b) >= n {
			return b[:n], nil
		}
	default:
	}
	return make([]byte, n, max(n, maxBlocksFrame+64<<10)), nil
}

// put gives back a blocks frame's buffer (payload or body) once nothing
// reads it any more: each buffer get returned for a blocks frame, once
// (a stream that ends on an error drops the ones it holds).
func (fp *framePool) put(b []byte) {
	select {
	case fp.free <- b[:0]:
	default:
	}
	<-fp.slots
}

// putChunk gives back a chunk frame's buffer once nothing refers to the
// chunk decoded from it (it was ingested, or dropped).
func (fp *framePool) putChunk(b []byte) {
	select {
	case fp.chunks <- b[:0]:
	default:
	}
}

// dropChunks lets go of the chunk-frame buffers kept for reuse (the sync
// is over: the stream carries records from now on).
func (fp *framePool) dropChunks() {
	for {
		select {
		case <-fp.chunks:
		default:
			return
		}
	}
}

// settlePuts waits until every block put started so far is stored, and
// returns the first error among them.
func (rx *receiver) settlePuts() error {
	rx.puts.Wait()
	return rx.putFailed()
}

// putFailed returns the first error of a block put (nil so far).
func (rx *receiver) putFailed() error {
	rx.putMu.Lock()
	defer rx.putMu.Unlock()
	return rx.putErr
}

// flushChunks ingests the chunks received so far, once the blocks pushed
// before them are stored: those of one batch of frames in one commit
// (engine.Replica.IngestAll).
func (rx *receiver) flushChunks() error {
	if len(rx.chunks) == 0 {
		return nil
	}
	cs, bufs := rx.chunks, rx.chunkBufs
	rx.chunks, rx.chunkBufs = nil, nil
	upTo := rx.consumed // the chunks cs are all received
	if err := rx.settlePuts(); err != nil {
		return err
	}
	var st engine.SyncState
	err := rx.withLocalBlocks(func() error {
		var err error
		st, err = rx.in.fs.IngestAll(rx.ctx, cs)
		return err
	})
	if err == nil {
		// The chunks that needed the blocks pushed before them are in.
		rx.releaseHeld(upTo)
	}
	// IngestAll copied what it took (the store's batch or table): the
	// frames' buffers serve the next chunks, while there are any.
	for _, b := range bufs {
		rx.bufs.putChunk(b)
	}
	if !st.Active {
		rx.bufs.dropChunks()
	}
	return rx.outcome(err)
}

// flushRecords applies the pending records, once the blocks pushed
// before them are stored. Records kept for blocks asked for (blockAsks)
// wait until those have arrived.
func (rx *receiver) flushRecords() error {
	if len(rx.pending) == 0 || rx.awaitingBlocks() {
		return nil
	}
	recs, durs := rx.pending, rx.pendingDur
	rx.pending, rx.pendingDur = nil, nil
	rx.keeping, rx.keepFrom = false, 0
	upTo := rx.consumed // the frames of recs are all received
	// The blocks pushed ahead of the records (and those asked for) are
	// stored first: no record applies before its blocks are durable.
	if err := rx.settlePuts(); err != nil {
		return err
	}
	err := rx.applyRecords(recs, durs, upTo)
	if rx.keepFrom > 0 {
		// Blocks asked for without a rewind: the records from keepFrom
		// on wait for them here, the source does not send them again.
		i := 0
		for i < len(recs) && recs[i].Seq < rx.keepFrom {
			i++
		}
		rx.pending = append(recs[i:len(recs):len(recs)], rx.pending...)
		rx.pendingDur = append(durs[i:len(durs):len(durs)], rx.pendingDur...)
		rx.keeping, rx.keepFrom = len(rx.pending) > 0, 0
	}
	if !rx.keeping && rx.dropped {
		// Frames dropped while records were kept: the source sends them
		// again from the applied point.
		rx.dropped = false
		rx.rewinding, rx.rewindAt, rx.askRewind = true, rx.in.n.now(), true
	}
	return err
}

// awaitingBlocks says whether kept records (blockAsks) wait for blocks
// asked for and not received: they are not applied before (an apply
// would find the same blocks missing). After StreamIdle they are tried
// again, which asks again (a backstop).
func (rx *receiver) awaitingBlocks() bool {
	if !rx.keeping {
		return false
	}
	now := rx.in.n.now()
	for _, at := range rx.asked {
		if now.Sub(at) <= rx.in.n.opts.StreamIdle {
			return true
		}
	}
	return false
}

// defaultMaxKept bounds the records kept for blocks asked for
// (blockAsks); the source's window (WindowBytes) bounds them first.
const defaultMaxKept = 1 << 16

// addRecords adds a records frame's records to pending. While records
// are kept for blocks (keeping), those already kept are skipped, and a
// frame that does not continue them, or would keep more than
// defaultMaxKept, is dropped (dropped: a rewind is asked for once the
// kept ones apply).
func (rx *receiver) addRecords(m *recordsMsg) error {
	recs, durs := m.recs, m.durable
	if durs == nil {
		durs = make([]time.Time, len(recs))
	}
	// Keep pending records contiguous; a frame that does not continue
	// them is applied on its own (Apply skips what is applied).
	if !rx.keeping && len(rx.pending) > 0 && recs[0].Seq != rx.pending[len(rx.pending)-1].Seq+1 {
		if err := rx.flushRecords(); err != nil {
			return err
		}
	}
	if rx.keeping {
		last := rx.pending[len(rx.pending)-1].Seq
		i := 0
		for i < len(recs) && recs[i].Seq <= last {
			i++
		}
		recs, durs = recs[i:], durs[i:]
		if len(recs) == 0 {
			return nil
		}
		if rx.dropped || recs[0].Seq != last+1 || len(rx.pending)+len(recs) > cmp.Or(rx.in.n.opts.maxKept, defaultMaxKept) {
			rx.dropped = true
			return nil
		}
	}
	rx.pending = append(rx.pending, recs...)
	rx.pendingDur = append(rx.pendingDur, durs...)
	if len(rx.pending) >= 4096 {
		return rx.flushRecords()
	}
	return nil
}

// applyRecords applies recs (received up to the upTo-th records or chunk
// frame), stopping at a verification checkpoint on the way.
func (rx *receiver) applyRecords(recs []*engine.Record, durs []time.Time, upTo uint64) error {
	if _, cp := rx.in.pendingCheckpoint(); cp > 0 {
		// A checkpoint needs the replica durable at exactly its seq,
		// which the applies in flight may have reached: they are
		// waited for before anything past it is applied.
		rx.durs.Wait()
		if err := rx.durFailed(); err != nil {
			return err
		}
		rx.in.maybeCheckpoint(rx.ctx)
	}
	_, applied, _ := rx.in.fs.Applied()
	if recs[len(recs)-1].Seq <= applied {
		rx.releaseHeld(upTo)
		return nil // all applied already (a resend)
	}
	// A verification compares the replica at exactly the checkpoint's
	// seq: the batch ends there, the replica is snapshotted, the rest
	// follows.
	if _, cp := rx.in.pendingCheckpoint(); cp > 0 && recs[0].Seq <= cp && recs[len(recs)-1].Seq > cp {
		i := 0
		for i < len(recs) && recs[i].Seq <= cp {
			i++
		}
		if _, err := rx.apply(recs[:i], durs[:i]); err != nil {
			return err
		}
		if _, applied, _ := rx.in.fs.Applied(); applied != cp {
			return nil // not applied (blocks asked for, a gap): the rest is resent
		}
		recs, durs = recs[i:], durs[i:]
	}
	all, err := rx.apply(recs, durs)
	if all {
		// Every record received so far is applied: the blocks pushed
		// before their frames are referenced, or needed by none.
		rx.releaseHeld(upTo)
	}
	return err
}

// apply applies contiguous records (durs: when each became durable at the
// source, zero when not known) and takes a verification checkpoint
// reached by them. It returns once they are readable on the replica; their
// commit's sync goes on meanwhile (ApplyAsync), and the stream acks once it
// is durable — except on the way to a checkpoint, which needs the replica
// durable at exactly its seq. all: every record of recs is applied.
func (rx *receiver) apply(recs []*engine.Record, durs []time.Time) (all bool, _ error) {
	_, cp := rx.in.pendingCheckpoint()
	_, before, _ := rx.in.fs.Applied()
	var reached uint64 // readable, maybe not durable yet
	err := rx.withLocalBlocks(func() error {
		applied, readable, wait, err := rx.in.fs.ApplyAsync(rx.ctx, recs)
		reached = applied
		var mb *engine.MissingBlocksError
		if err == nil || errors.As(err, &mb) {
			// Readable when the engine's commit returned, not when this
			// goroutine was woken to hear of it (a hand-off later).
			if readable.IsZero() {
				readable = rx.in.n.now()
			}
			rx.in.observeApplied(recs, durs, before, applied, readable)
		}
		if cp > 0 {
			if werr := wait(); werr != nil {
				return werr
			}
			return err
		}
		rx.waitDurable(wait)
		return err
	})
	if err == nil {
		rx.in.mu.Lock()
		rx.in.st.AppliedRecords += uint64(len(recs))
		rx.in.mu.Unlock()
		rx.in.maybeCheckpoint(rx.ctx)
	}
	var mb *engine.MissingBlocksError
	if errors.As(err, &mb) && rx.blockAsks {
		// Asked for without a rewind: the records from the one that
		// lacks them on are kept (flushRecords), not sent again.
		rx.keepFrom = reached + 1
		rx.ask(mb.IDs, false)
		rx.log.Debug("replica lacks blocks: keeping the records that need them", "blocks", len(mb.IDs), "from", rx.keepFrom)
		rx.askAhead(recs)
		return false, nil
	}
	if errors.As(err, &mb) {
		rx.askAhead(recs)
	}
	return err == nil, rx.outcome(err)
}

// maxHeld bounds the pushed blocks a stream holds in flight; past it a
// push is not held (a collection before its record then costs a round
// trip, never the block).
const maxHeld = 1 << 16

// hold puts pushed blocks in flight on the replica before they are
// stored: the collector does not delete one (a block an earlier record
// released and the next one references again) before the records or
// chunks received after it are applied, which would then ask for it
// again. A block held already keeps its hold, with its first count: the
// frame that follows its first push is the one that needs it.
func (rx *receiver) hold(ids []blocks.ID) {
	if rx.held == nil {
		rx.held = map[blocks.ID]uint64{}
	}
	for _, id := range ids {
		if _, ok := rx.held[id]; ok || len(rx.held) >= maxHeld {
			continue
		}
		rx.in.fs.HoldBlocks(id)
		rx.held[id] = rx.consumed
		rx.in.heldBlocks.Add(1)
	}
}

// releaseHeld releases the holds taken before the upTo-th records or chunk
// frame of the stream was received (all of them: math.MaxUint64).
func (rx *receiver) releaseHeld(upTo uint64) {
	for id, at := range rx.held {
		if at < upTo {
			delete(rx.held, id)
			rx.in.fs.ReleaseBlocks(id)
			rx.in.heldBlocks.Add(-1)
		}
	}
}

// askAhead asks, with the blocks the first record not applied lacks, for
// those that the records after it lack: they are asked for in one rewind,
// not one rewind (and one resend of everything after it) per record. A
// block a record references was pushed before it (the puts are settled),
// so one absent now was pushed on an earlier stream, or collected: only
// asking brings it. (The records behind a gap are not looked at: each ask
// is a rewind, and the source resends everything from the applied point
// for it; the resend of the first ask reaches them anyway.)
func (rx *receiver) askAhead(recs []*engine.Record) {
	_, applied, _ := rx.in.fs.Applied()
	var ids []blocks.ID
	seen := map[blocks.ID]bool{}
	for _, r := range recs {
		if r.Seq <= applied+1 {
			continue // applied, or the one whose own apply names its blocks
		}
		for _, id := range r.AddedRefs {
			if _, ok := rx.asked[id]; !ok && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return
	}
	missing, err := rx.in.fs.FetchLocal(rx.ctx, ids)
	if err != nil {
		rx.log.Debug("looking for the blocks of later records", "err", err)
		return
	}
	rx.ask(missing, !rx.blockAsks)
}

// ask adds the blocks among ids not asked for yet on this stream to the
// next ack's request; rewind: the ack asks for a resend from the applied
// point too (anything but records kept for their blocks, see blockAsks).
// One asked for and not received is asked for again only after
// StreamIdle (a backstop: the source pushes what it is asked for before
// anything else, or the stream ends).
func (rx *receiver) ask(ids []blocks.ID, rewind bool) {
	now := rx.in.n.now()
	if rx.asked == nil {
		rx.asked = map[blocks.ID]time.Time{}
	}
	added := false
	for _, id := range ids {
		if at, ok := rx.asked[id]; ok && now.Sub(at) <= rx.in.n.opts.StreamIdle {
			continue
		}
		rx.asked[id] = now
		rx.missing = append(rx.missing, id)
		added = true
	}
	if added && rewind {
		rx.rewinding, rx.rewindAt, rx.askRewind = true, now, true
	}
}

// waitDurable waits for an apply's commit in the background and wakes the
// stream's loop once it is durable (or failed).
func (rx *receiver) waitDurable(wait func() error) {
	rx.durs.Add(1)
	go func() {
		defer rx.durs.Done()
		if err := wait(); err != nil {
			rx.durMu.Lock()
			if rx.durErr == nil {
				rx.durErr = err
			}
			rx.durMu.Unlock()
		}
		select {
		case rx.durable <- struct{}{}:
		default:
		}
	}()
}

// durFailed returns the error of the first apply whose commit failed.
func (rx *receiver) durFailed() error {
	rx.durMu.Lock()
	defer rx.durMu.Unlock()
	return rx.durErr
}

// withLocalBlocks runs an apply or ingest; when it lacks blocks that
// another file system of this region holds (same lineage), they are copied
// locally and it runs again, so only blocks the region lacks are asked of
// the source.
func (rx *receiver) withLocalBlocks(f func() error) error {
	for {
		err := f()
		var mb *engine.MissingBlocksError
		if !errors.As(err, &mb) {
			return err
		}
		rest, ferr := rx.in.fs.FetchLocal(rx.ctx, mb.IDs)
		if ferr != nil || len(rest) == len(mb.IDs) {
			if len(rest) > 0 && len(rest) < len(mb.IDs) {
				return &engine.MissingBlocksError{IDs: rest}
			}
			return err
		}
		if len(rest) > 0 {
			return &engine.MissingBlocksError{IDs: rest}
		}
	}
}

// outcome turns an apply or ingest result into the next ack's content; it
// returns an error only when the stream must end.
func (rx *receiver) outcome(err error) error {
	var mb *engine.MissingBlocksError
	switch {
	case err == nil:
		// The resend arrived (blocks still asked for come ahead of a
		// later one).
		rx.rewinding, rx.waiting = false, ""
		return nil
	case errors.As(err, &mb):
		rx.ask(mb.IDs, true)
		rx.log.Debug("replica lacks blocks", "blocks", len(mb.IDs), "asking", len(rx.missing), "cursor", hexKey(rx.in.fs.SyncState().Cursor))
		return nil
	case errors.Is(err, engine.ErrGap):
		// Behind a gap: what the source sent before it read the
		// replica's ask, which it answers after them (blocks asked for
		// first, then the resend): asking again only made it send
		// everything again, and on a link slower than its window the
		// frames of each resend arrived as gaps, long after the ask,
		// and asked again in turn (more resends than records). Asked
		// again only when nothing was asked, or after StreamIdle (a
		// backstop; the source's own stall checks come sooner).
		now := rx.in.n.now()
		// Blocks asked for without a rewind (blockAsks) bring no
		// resend: a gap then asks for one.
		waiting := rx.rewinding || (len(rx.asked) > 0 && !rx.blockAsks)
		ask := !waiting || now.Sub(rx.rewindAt) > rx.in.n.opts.StreamIdle
		if ask {
			rx.rewinding, rx.rewindAt, rx.askRewind = true, now, true
		}
		rx.log.Debug("replica behind a gap", "asking_rewind", ask, "err", err)
		return nil
	case errors.Is(err, engine.ErrPaused):
		// The applier waits for a verification checkpoint: the records
		// past it are asked for again every 500 ms until it is taken.
		now := rx.in.n.now()
		ask := !rx.rewinding || now.Sub(rx.rewindAt) > 500*time.Millisecond
		if ask {
			rx.rewinding, rx.rewindAt, rx.askRewind = true, now, true
		}
		rx.log.Debug("replica paused for a checkpoint", "asking_rewind", ask, "err", err)
		return nil
	case errors.Is(err, engine.ErrClosed), errors.Is(err, engine.ErrFatal), errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, engine.ErrNotReplica):
		// Promoted meanwhile: the stream ends, a new one is refused.
		return fmt.Errorf("replication: %s is no longer a replica (promoted): %w", rx.in.spec.DestFS, err)
	case errors.Is(err, engine.ErrNoSpace):
		// The replica's disk is full: a condition that passes (space is
		// freed or added), not one for the operator to re-create the
		// replication over. Nothing was applied; the stream ends, the
		// source connects again (with its backoff) and resends from the
		// replica's durable point, and catches up once there is room.
		// A source that takes the reason hears it first (its status
		// says so, not that the connection was lost).
		if rx.reasons {
			rx.waiting = msgReplicaFull
			if aerr := rx.ack(); aerr != nil {
				rx.log.Debug("telling the source the replica is full", "err", aerr)
			}
		}
		return fmt.Errorf("replication: %s: %w", msgReplicaFull, err)
	default:
		rx.fatal = err.Error()
		rx.log.Warn("replica cannot continue", "err", err)
		rx.in.mu.Lock()
		rx.in.st.State, rx.in.st.Message = StateError, "the replica cannot apply the source's changes: "+err.Error()
		rx.in.mu.Unlock()
		return nil
	}
}

// ackIfNew sends the replica's durable state after a batch of frames or
// a commit that became durable, unless the source has heard exactly that
// already. A records frame is readable once applied, not durable: the
// ack sent right after it said what the previous one said (its commit's
// own ack follows once it is durable), and cost a write here and, at the
// source, a read, two goroutine hand-offs and a wake-up of the shipping
// loop per frame. Heartbeats are acked whatever the state (the source's
// liveness check and lease count on it), and so is everything during an
// initial sync or a resync, a rewind and a change of any field.
func (rx *receiver) ackIfNew(heartbeat bool) error {
	return rx.sendAck(!heartbeat)
}

// ack sends the replica's durable state.
func (rx *receiver) ack() error { return rx.sendAck(false) }

func (rx *receiver) sendAck(onlyNew bool) error {
	epoch, applied, at := rx.in.fs.Applied()
	ss := rx.in.fs.SyncState()
	a := &ack{AppliedEpoch: epoch, AppliedSeq: applied, AppliedTime: at,
		Syncing: ss.Active, SyncBase: ss.Base, Cursor: ss.Cursor, Fatal: rx.fatal}
	if rx.in.fs.Consistent() {
		rx.in.mu.Lock()
		for len(rx.in.hbs) > 0 && rx.in.hbs[0].Durable <= applied {
			rx.in.st.LastReplicated = rx.in.hbs[0].Time
			rx.in.hbs = rx.in.hbs[1:]
		}
		a.Synced = rx.in.st.LastReplicated
		rx.in.mu.Unlock()
	}
	if rx.rs != nil {
		rx.resyncAck(a)
	}
	if len(rx.missing) > 0 || rx.askRewind {
		a.Rewind, a.Missing = rx.askRewind, rx.missing
		rx.missing, rx.askRewind = nil, false
	}
	if rx.echoes {
		a.Echo = rx.echo
	}
	if rx.reasons {
		a.Waiting = rx.waiting
	}
	p := a.encode()
	if onlyNew && !a.Rewind && len(a.Missing) == 0 && !a.Syncing && rx.rs == nil && bytes.Equal(p, rx.lastAck) {
		return nil
	}
	// An ack renews the source's lease: LastContact, from which a
	// promotion waits for that lease to run out, is never older than the
	// last ack sent (the first one answers the stream's request, before
	// any frame was received), nor than the receipt of what it echoes.
	rx.in.mu.Lock()
	rx.in.st.LastContact = rx.in.n.now()
	rx.in.mu.Unlock()
	if err := rx.out.write(rx.w, msgAck, p); err != nil {
		return err
	}
	rx.lastAck = p
	if rx.acks != nil {
		rx.acks.Add(1)
	}
	return rx.flush()
}

// promotedGone is the answer to a stream into in's file system once it is
// no longer a replica while still registered (promoted outside Promote,
// or before the control plane removed the registration): where the
// promoted history left the source's, from the engine's record of the
// promotion (engine.Replica.Promoted), so that the source, which fences
// itself, reports exactly the changes it holds beyond it. epoch is the
// file system's current epoch; false: it is a replica again (answer
// 503, the source asks again). Not Coordinated: the control plane's
// answer (Hooks.Gone) says when the source took part.
func (in *inbound) promotedGone(epoch uint64) (Gone, bool) {
	g := Gone{Promoted: true, Epoch: epoch, Reason: "the destination file system is no longer a replica"}
	rp, ok := in.fs.Promoted()
	if !ok {
		return Gone{}, false // a replica again (a resync began): the source asks again
	}
	g.Epoch = max(epoch, rp.NewEpoch)
	g.RecoverySeq, g.RecoveryTime, g.Empty = rp.Seq, rp.Time, rp.Empty
	if rp.Empty {
		g.Reason += ": it was promoted before its initial sync finished and holds nothing of the source"
	} else {
		g.Reason += fmt.Sprintf(": it was promoted at seq %d", rp.Seq)
	}
	return g, true
}

// writeGone answers a stream request with 410 Gone and what ended the
// replication.
func writeGone(w http.ResponseWriter, g Gone) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusGone)
	json.NewEncoder(w).Encode(g)
}
