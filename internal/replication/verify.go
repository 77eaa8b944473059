package replication

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/blocks"
)

// Online verification: the source and its replica compare range checksums
// of the replicated keys at one common seq, while the source keeps taking
// writes and the records keep flowing.
//
//  1. The source takes a snapshot at seq S between two of the shipping
//     loop's journal reads (nothing after S has been read to be shipped)
//     and, while the loop ships nothing after S, tells the destination
//     (call verify-mark) to take a snapshot of the replica when it has
//     applied exactly S: the receiver ends its apply batch at S,
//     snapshots, and goes on. Records up to S and blocks keep flowing
//     meanwhile; those after S wait one round trip, no more. A pass does
//     not wait for the loop (a long send on a slow link), only for its
//     journal read (see verifyGate).
//  2. The source computes the checksums of consecutive ranges of its
//     snapshot (as a resync does) and sends them (verify-compare, in
//     batches); the destination compares them with its own snapshot and
//     reads every block the replica references (a block's id is its
//     hash: one that verifies equals the source's).
//  3. What differs is logged, counted and shown in the status message,
//     then repaired: bad blocks are sent again (verify-block), differing
//     ranges through the checksum resync (verify-resync: the replica
//     begins a resync and the source, reconnecting, sends the ranges whose
//     checksums differ).
//
// Verify runs a pass on demand, from either region.

// Unary calls of verification.
const (
	callVerifyMark    = "verify-mark"    // source → destination
	callVerifyCompare = "verify-compare" // source → destination
	callVerifyBlock   = "verify-block"   // source → destination
	callVerifyResync  = "verify-resync"  // source → destination
	callVerifyRun     = "verify-run"     // destination → source
)

var verifyCalls = map[string]bool{callVerifyMark: true, callVerifyCompare: true, callVerifyBlock: true,
	callVerifyResync: true, callVerifyRun: true}

const (
	verifyBatch = 4096 // range checksums per verify-compare call
	// verifyStartWait: how long a pass waits for the shipping loop (a
	// stream in steady state) before it gives up.
	verifyStartWait = 10 * time.Second
	// verifyHold: how long a destination keeps a checkpoint snapshot.
	verifyHold = 2 * time.Minute
	// verifyCallTimeout bounds the calls that wait for or compute
	// checksums.
	verifyCallTimeout = 5 * time.Minute
	verifyListed      = 100 // differing ranges and bad blocks listed in a result
	maxRepairBlocks   = 10000
)

// ErrNotStreaming: a verification needs the replication in steady state
// (the stream up, no initial sync or resync running).
var ErrNotStreaming = errors.New("replication: not streaming")

// VerifyRange is a key range whose checksums differ, in words
// (engine.DescribeKey) and raw.
type VerifyRange struct {
	From string `json:"from"`
	To   string `json:"to"`
	Lo   []byte `json:"lo"`
	Hi   []byte `json:"hi,omitempty"`
}

// VerifyResult is the outcome of one verification pass.
type VerifyResult struct {
	ID       string        `json:"id"`
	Time     time.Time     `json:"time"`     // when the pass started (source clock)
	Duration time.Duration `json:"duration"` // how long it took
	Seq      uint64        `json:"seq"`      // the common point compared
	Ranges   int           `json:"ranges"`   // ranges compared
	Blocks   int           `json:"blocks"`   // replica blocks read
	// DifferCount ranges differ (the first verifyListed in Differ);
	// BadBlockCount blocks are missing or corrupt on the replica.
	DifferCount   int           `json:"differCount"`
	Differ        []VerifyRange `json:"differ,omitempty"`
	BadBlockCount int           `json:"badBlockCount"`
	BadBlocks     []string      `json:"badBlocks,omitempty"`
	// Repair says what was done about a difference.
	Repair string `json:"repair,omitempty"`
}

// Mismatch reports whether the pass found a difference.
func (r VerifyResult) Mismatch() bool { return r.DifferCount > 0 || r.BadBlockCount > 0 }

// Summary is the result in one line.
func (r VerifyResult) Summary() string {
	if !r.Mismatch() {
		return fmt.Sprintf("verified at seq %d: %s and %s match", r.Seq, plural(r.Ranges, "range"), plural(r.Blocks, "block"))
	}
	s := fmt.Sprintf("verification at seq %d (%s) found %d of %s differing and %d of %s bad on the replica",
		r.Seq, r.Time.UTC().Format(time.RFC3339), r.DifferCount, plural(r.Ranges, "range"), r.BadBlockCount, plural(r.Blocks, "block"))
	if r.Repair != "" {
		s += "; " + r.Repair
	}
	return s
}

// verifyStats are a replication's verification counters and newest
// result (kept with its status).
type verifyStats struct {
	Last       VerifyResult
	Found      []VerifyResult // the newest passes that found a difference
	Passes     uint64         // passes completed
	Mismatches uint64         // passes that found a difference
	Failures   uint64         // passes that could not complete
}

func (v *verifyStats) record(r VerifyResult) {
	v.Last = r
	v.Passes++
	if r.Mismatch() {
		v.Mismatches++
		if len(v.Found) == verifyFoundKept {
			v.Found = v.Found[1:]
		}
		v.Found = append(v.Found, r)
	}
}

// verifyFoundKept bounds Status.VerifyFound.
const verifyFoundKept = 8

// Verify runs one verification pass of replication id, from its source or
// its destination region, and returns the result (repairs included: they
// are started, a resync finishes in the background).
func (n *Node) Verify(ctx context.Context, id string) (VerifyResult, error) {
	n.mu.Lock()
	o, in := n.outbound[id], n.inbound[id]
	n.mu.Unlock()
	if o != nil {
		return o.verify(ctx)
	}
	if in == nil {
		return VerifyResult{}, fmt.Errorf("replication %s: %w", id, ErrNotFound)
	}
	var r VerifyResult
	err := n.callWithin(ctx, verifyCallTimeout+verifyStartWait, in.spec.SourceRegion, callVerifyRun, verifyReq{ID: id}, &r)
	return r, err
}

type verifyReq struct {
	ID    string      `json:"id"`
	Seq   uint64      `json:"seq,omitempty"`
	Sums  []verifySum `json:"sums,omitempty"`
	Last  bool        `json:"last,omitempty"`
	Block string      `json:"block,omitempty"`
	Data  []byte      `json:"data,omitempty"`
	Start time.Time   `json:"start,omitzero"`
}

type verifySum struct {
	Lo  []byte   `json:"lo"`
	Hi  []byte   `json:"hi"`
	End bool     `json:"end,omitempty"` // Hi is the end of the key space
	Sum [32]byte `json:"sum"`
}

type verifyCompareResp struct {
	Differ    []VerifyRange `json:"differ,omitempty"`
	Blocks    int           `json:"blocks"`
	BadBlocks []string      `json:"badBlocks,omitempty"`
}

// verifyLoop runs a pass every VerifyInterval while the stream is up.
func (o *outbound) verifyLoop() {
	o.every(o.verifyDone, o.n.opts.VerifyInterval, func() {
		st := o.status()
		if !st.LinkUp || st.Sync.Active || st.State != StateEnabled {
			return
		}
		ctx, cancel := context.WithTimeout(o.ctx, verifyCallTimeout)
		_, err := o.verify(ctx)
		cancel()
		if err != nil && o.ctx.Err() == nil {
			o.n.log.Warn("verification pass failed", "replication", o.spec.ID, "err", err)
		}
	})
}

// verify runs one pass from the source (one at a time).
func (o *outbound) verify(ctx context.Context) (VerifyResult, error) {
	o.verifyMu.Lock()
	defer o.verifyMu.Unlock()
	r, err := o.verifyPass(ctx)
	o.mu.Lock()
	if err != nil {
		o.vs.Failures++
	} else {
		o.vs.record(r)
	}
	o.mu.Unlock()
	return r, err
}

func (o *outbound) verifyPass(ctx context.Context) (VerifyResult, error) {
	start := o.n.now()
	r := VerifyResult{ID: o.spec.ID, Time: start}
	snap, err := o.markVerify(ctx)
	if err != nil {
		return r, err
	}
	defer snap.Close()
	r.Seq = snap.Seq
	sums, err := rangeSums(ctx, snap)
	if err != nil {
		return r, err
	}
	r.Ranges = len(sums)
	var bad []blocks.ID
	for i := 0; i < len(sums) || i == 0; i += verifyBatch {
		batch := sums[i:min(i+verifyBatch, len(sums))]
		last := i+verifyBatch >= len(sums)
		var resp verifyCompareResp
		req := verifyReq{ID: o.spec.ID, Seq: snap.Seq, Sums: batch, Last: last, Start: start}
		if err := o.n.callWithin(ctx, verifyCallTimeout, o.spec.DestRegion, callVerifyCompare, req, &resp); err != nil {
			return r, err
		}
		for _, d := range resp.Differ {
			r.DifferCount++
			if len(r.Differ) < verifyListed {
				r.Differ = append(r.Differ, d)
			}
		}
		if last {
			r.Blocks = resp.Blocks
			r.BadBlockCount = len(resp.BadBlocks)
			for _, s := range resp.BadBlocks {
				id, err := blocks.ParseID(s)
				if err != nil {
					return r, fmt.Errorf("replication: destination named a bad block %q", s)
				}
				bad = append(bad, id)
				if len(r.BadBlocks) < verifyListed {
					r.BadBlocks = append(r.BadBlocks, s)
				}
			}
		}
	}
	if r.Mismatch() {
		o.n.log.Warn("verification found differences", "replication", o.spec.ID, "fs_id", o.spec.SourceFS,
			"dest_region", o.spec.DestRegion, "seq", r.Seq, "ranges", r.Ranges, "differing_ranges", r.DifferCount,
			"bad_blocks", r.BadBlockCount)
		for _, d := range r.Differ {
			o.n.log.Warn("verification: range differs", "replication", o.spec.ID, "seq", r.Seq, "from", d.From, "to", d.To)
		}
		r.Repair = o.repair(ctx, snap, bad, r.DifferCount > 0)
	} else {
		o.n.log.Info("verification passed", "replication", o.spec.ID, "seq", r.Seq, "ranges", r.Ranges, "blocks", r.Blocks)
	}
	r.Duration = o.n.now().Sub(start)
	return r, nil
}

// repair sends the bad blocks again and, when ranges differ, has the
// destination begin a resync by range checksums. It says what it did.
func (o *outbound) repair(ctx context.Context, snap *engine.Snapshot, bad []blocks.ID, ranges bool) string {
	var done []string
	fixed, failed := 0, 0
	for i, id := range bad {
		if i >= maxRepairBlocks {
			failed += len(bad) - i
			break
		}
		data, err := o.fs.BlockView(ctx, id)
		if err == nil {
			err = o.n.callWithin(ctx, verifyCallTimeout, o.spec.DestRegion, callVerifyBlock,
				verifyReq{ID: o.spec.ID, Block: id.String(), Data: data}, nil)
		}
		if err != nil {
			o.n.log.Warn("verification: block repair failed", "replication", o.spec.ID, "block", id.String(), "err", err)
			failed++
			continue
		}
		fixed++
	}
	if len(bad) > 0 {
		s := plural(fixed, "block") + " sent again"
		if failed > 0 {
			s += fmt.Sprintf(" (%d could not be: the next pass retries)", failed)
		}
		done = append(done, s)
	}
	if ranges {
		err := o.n.callWithin(ctx, verifyCallTimeout, o.spec.DestRegion, callVerifyResync, verifyReq{ID: o.spec.ID, Seq: snap.Seq}, nil)
		if err != nil {
			o.n.log.Warn("verification: resync request failed", "replication", o.spec.ID, "err", err)
			done = append(done, "the resync could not be started (the next pass retries)")
		} else {
			done = append(done, "differing ranges repaired by a resync (range checksums)")
		}
	}
	return joinWords(done)
}

// plural is "1 range", "2 ranges".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func joinWords(s []string) string {
	var b bytes.Buffer
	for i, w := range s {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(w)
	}
	return b.String()
}

// verifyGate orders a verification's common point with the shipping
// loop's journal reads. A pass takes its snapshot (at S) under mu, and the
// loop reads the journal under mu: what it read before holds records up
// to the durable mark then, at most S; what it reads after stops at S
// until the destination has registered S (limit). The pass no longer
// waits for the loop to come round to it: a loop in a long send (a slow
// link, a full window) kept it waiting, past verifyStartWait on a slow
// enough link, and a pass that timed out failed.
type verifyGate struct {
	mu sync.Mutex // guards the fields below; held across a read or a snapshot
	// ship: a stream ships records (steady state: no initial sync or
	// resync); limit: ship no record past it (0: none); wake is closed
	// and replaced when either changes.
	ship  bool
	limit uint64
	wake  chan struct{}
}

// shipping says that the shipping loop starts (true) or stops.
func (g *verifyGate) shipping(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ship = on
	g.wakeLocked()
}

func (g *verifyGate) wakeLocked() {
	close(g.wake)
	g.wake = make(chan struct{})
}

// readShippable reads the journal records the shipping loop may ship
// from next on; while a verification holds them past its point and next
// is past it, none, and a channel closed when that may have changed.
func (o *outbound) readShippable(ctx context.Context, next uint64) ([]*engine.Record, <-chan struct{}, error) {
	g := &o.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	limit := g.limit
	if limit != 0 && next > limit {
		return nil, g.wake, nil
	}
	recs, err := o.fs.ReadJournal(ctx, next, 512, o.frameBytes(4<<20))
	if err != nil || limit == 0 {
		return recs, nil, err
	}
	n := 0
	for n < len(recs) && recs[n].Seq <= limit {
		n++
	}
	return recs[:n], nil, nil
}

// markVerify takes the snapshot at the common point once a stream ships
// records (waiting up to verifyStartWait) and registers it with the
// destination; nothing after it is shipped until then.
func (o *outbound) markVerify(ctx context.Context) (*engine.Snapshot, error) {
	g := &o.gate
	give := time.NewTimer(verifyStartWait)
	defer give.Stop()
	for {
		g.mu.Lock()
		if g.ship && g.limit == 0 {
			break // g.mu held
		}
		wake := g.wake
		g.mu.Unlock()
		select {
		case <-wake:
		case <-give.C:
			return nil, fmt.Errorf("replication %s: %w: the stream to %s is not in steady state", o.spec.ID, ErrNotStreaming, o.spec.DestRegion)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	snap, err := o.fs.Snapshot(ctx)
	if err == nil {
		g.limit = snap.Seq
	}
	g.mu.Unlock()
	if err != nil {
		return nil, err
	}
	defer func() {
		g.mu.Lock()
		g.limit = 0
		g.wakeLocked()
		g.mu.Unlock()
	}()
	if err := o.n.Call(ctx, o.spec.DestRegion, callVerifyMark, verifyReq{ID: o.spec.ID, Seq: snap.Seq}, nil); err != nil {
		snap.Close()
		return nil, err
	}
	return snap, nil
}

// rangeSums returns the checksums of consecutive ranges of the snapshot
// (resyncRangeKeys keys each) that together cover the whole key space.
func rangeSums(ctx context.Context, snap *engine.Snapshot) ([]verifySum, error) {
	var sums []verifySum
	err := rangeChecksums(ctx, snap, func(lo, hi []byte, sum [32]byte) error {
		sums = append(sums, verifySum{Lo: lo, Hi: hi, End: hi == nil, Sum: sum})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sums, nil
}

// checkpoint is a destination's snapshot of the replica at exactly the
// seq a verification compares.
type checkpoint struct {
	seq     uint64
	once    sync.Once
	ready   chan struct{}
	snap    *engine.Snapshot
	err     error
	expire  *time.Timer
	ranges  int
	differ  []VerifyRange
	ndiffer int
	start   time.Time
}

// take snapshots the replica (once); the caller knows it has applied
// exactly cp.seq and applies nothing more meanwhile.
func (cp *checkpoint) take(ctx context.Context, fs *engine.Replica) {
	cp.once.Do(func() {
		s, err := fs.Snapshot(ctx)
		if err == nil && s.Seq != cp.seq {
			s.Close()
			s, err = nil, fmt.Errorf("replication: the replica's snapshot is at seq %d, not %d", s.Seq, cp.seq)
		}
		cp.snap, cp.err = s, err
		close(cp.ready)
	})
}

// release drops the checkpoint's snapshot (once it was taken).
func (cp *checkpoint) release() {
	cp.once.Do(func() {
		cp.err = errors.New("replication: verification checkpoint released")
		close(cp.ready)
	})
	if cp.snap != nil {
		cp.snap.Close()
		cp.snap = nil
	}
}

// pendingCheckpoint returns the seq of a checkpoint still to be taken (0:
// none).
func (in *inbound) pendingCheckpoint() (*checkpoint, uint64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	cp := in.cp
	if cp == nil {
		return nil, 0
	}
	select {
	case <-cp.ready:
		return nil, 0
	default:
		return cp, cp.seq
	}
}

// maybeCheckpoint takes the pending checkpoint if the replica has applied
// exactly its seq (the receiver calls it after each apply).
func (in *inbound) maybeCheckpoint(ctx context.Context) {
	cp, seq := in.pendingCheckpoint()
	if cp == nil {
		return
	}
	if _, applied, _ := in.fs.Applied(); applied == seq {
		cp.take(ctx, in.fs)
	}
}

// dropCheckpoint releases the current checkpoint, if any.
func (in *inbound) dropCheckpoint() {
	in.mu.Lock()
	cp := in.cp
	in.cp = nil
	in.mu.Unlock()
	if cp != nil {
		cp.expire.Stop()
		cp.release()
	}
}

// serveVerify answers verification calls.
func (n *Node) serveVerify(ctx context.Context, from, method string, body []byte) ([]byte, error) {
	var req verifyReq
	if err := json.Unmarshal(body, &req); err != nil || req.ID == "" {
		return nil, &CallError{Status: http.StatusBadRequest, Code: "BadRequest", Message: "malformed verification request"}
	}
	notFound := &CallError{Status: http.StatusNotFound, Code: "NotFound", Message: "no such replication configuration"}
	n.mu.Lock()
	o, in := n.outbound[req.ID], n.inbound[req.ID]
	n.mu.Unlock()
	if method == callVerifyRun {
		if o == nil || o.spec.DestRegion != from {
			return nil, notFound
		}
		r, err := o.verify(ctx)
		if err != nil {
			return nil, verifyCallError(err)
		}
		return json.Marshal(r)
	}
	if in == nil || in.spec.SourceRegion != from {
		return nil, notFound
	}
	var out any
	var err error
	switch method {
	case callVerifyMark:
		err = in.mark(ctx, req.Seq)
	case callVerifyCompare:
		out, err = in.compare(ctx, req)
	case callVerifyBlock:
		err = in.repairBlock(ctx, req)
	case callVerifyResync:
		err = in.resyncForRepair(ctx)
	}
	if err != nil {
		return nil, verifyCallError(err)
	}
	if out == nil {
		return []byte(`{}`), nil
	}
	return json.Marshal(out)
}

func verifyCallError(err error) error {
	var ce *CallError
	if errors.As(err, &ce) {
		return ce
	}
	switch {
	case errors.Is(err, ErrNotStreaming):
		return &CallError{Status: http.StatusConflict, Code: "NotStreaming", Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &CallError{Status: http.StatusServiceUnavailable, Code: "Timeout", Message: "the verification did not finish in time"}
	}
	return err
}

// mark registers the checkpoint at seq (the source ships nothing after
// seq until this returns).
func (in *inbound) mark(ctx context.Context, seq uint64) error {
	if !in.fs.Consistent() || in.fs.SyncState().Active {
		return fmt.Errorf("%w: the replica is not consistent (initial sync or resync)", ErrNotStreaming)
	}
	if _, applied, _ := in.fs.Applied(); applied > seq {
		return &CallError{Status: http.StatusConflict, Code: "NotStreaming",
			Message: fmt.Sprintf("the replica applied seq %d, past the point %d", applied, seq)}
	}
	in.dropCheckpoint()
	cp := &checkpoint{seq: seq, ready: make(chan struct{}), start: in.n.now()}
	cp.expire = time.AfterFunc(verifyHold, func() {
		in.mu.Lock()
		if in.cp == cp {
			in.cp = nil
		}
		in.mu.Unlock()
		cp.release()
	})
	in.mu.Lock()
	in.cp = cp
	in.mu.Unlock()
	// Already there (an idle source): nothing more is applied until the
	// source hears back.
	if _, applied, _ := in.fs.Applied(); applied == seq {
		cp.take(context.WithoutCancel(ctx), in.fs)
	}
	return nil
}

// compare checks a batch of the source's range checksums against the
// checkpoint; the last batch also reads the replica's blocks and records
// the result.
func (in *inbound) compare(ctx context.Context, req verifyReq) (*verifyCompareResp, error) {
	in.mu.Lock()
	cp := in.cp
	in.mu.Unlock()
	if cp == nil || cp.seq != req.Seq {
		return nil, fmt.Errorf("%w: no verification checkpoint at seq %d", ErrNotStreaming, req.Seq)
	}
	select {
	case <-cp.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if cp.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotStreaming, cp.err)
	}
	resp := &verifyCompareResp{}
	for _, s := range req.Sums {
		hi := s.Hi
		if s.End {
			hi = nil
		} else if len(hi) == 0 {
			return nil, &CallError{Status: http.StatusBadRequest, Code: "BadRequest", Message: "malformed range"}
		}
		got, err := cp.snap.Checksum(s.Lo, hi)
		if err != nil {
			return nil, err
		}
		cp.ranges++
		if got != s.Sum {
			d := VerifyRange{From: engine.DescribeKey(s.Lo), To: engine.DescribeKey(hi), Lo: s.Lo, Hi: hi}
			if s.Lo == nil {
				d.From = "the start"
			}
			resp.Differ = append(resp.Differ, d)
			cp.ndiffer++
			if len(cp.differ) < verifyListed {
				cp.differ = append(cp.differ, d)
			}
			in.n.log.Warn("verification: range differs on the replica", "replication", in.spec.ID, "fs_id", in.spec.DestFS,
				"seq", cp.seq, "from", d.From, "to", d.To)
		}
	}
	if !req.Last {
		return resp, nil
	}
	nb, bad, err := cp.snap.BadBlocks(ctx)
	if err != nil {
		return nil, err
	}
	resp.Blocks = nb
	for _, id := range bad {
		resp.BadBlocks = append(resp.BadBlocks, id.String())
	}
	r := VerifyResult{ID: in.spec.ID, Time: req.Start, Seq: cp.seq, Ranges: cp.ranges, Blocks: nb,
		DifferCount: cp.ndiffer, Differ: cp.differ, BadBlockCount: len(bad)}
	if r.Time.IsZero() {
		r.Time = cp.start
	}
	r.BadBlocks = resp.BadBlocks[:min(len(resp.BadBlocks), verifyListed)]
	if r.Mismatch() {
		r.Repair = "repairing from the source"
	}
	r.Duration = in.n.now().Sub(cp.start)
	in.mu.Lock()
	in.vs.record(r)
	if in.cp == cp {
		in.cp = nil
	}
	in.mu.Unlock()
	cp.expire.Stop()
	cp.release()
	return resp, nil
}

// repairBlock stores a good copy of a bad block.
func (in *inbound) repairBlock(ctx context.Context, req verifyReq) error {
	id, err := blocks.ParseID(req.Block)
	if err != nil {
		return &CallError{Status: http.StatusBadRequest, Code: "BadRequest", Message: "malformed block id"}
	}
	if _, err := in.fs.RepairBlock(ctx, id, req.Data); err != nil {
		if errors.Is(err, engine.ErrCorrupt) {
			return &CallError{Status: http.StatusBadRequest, Code: "BadRequest", Message: "the block does not match its id"}
		}
		return err
	}
	return nil
}

// resyncForRepair turns the replica into one being resynced by range
// checksums: the stream ends, the source reconnects and sends the ranges
// that differ. No stream attaches while the replica switches.
func (in *inbound) resyncForRepair(ctx context.Context) error {
	in.mu.Lock()
	if in.promoting || in.repairing {
		in.mu.Unlock()
		return &CallError{Status: http.StatusConflict, Code: "Busy", Message: "a failover or repair is under way"}
	}
	in.repairing = true
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		in.repairing = false
		in.mu.Unlock()
	}()
	in.detach()
	if ss := in.fs.SyncState(); ss.Active {
		return nil // a resync or sync is running already
	}
	if err := in.fs.BeginResync(ctx, nil); err != nil {
		return err
	}
	in.mu.Lock()
	in.spec.Fork = 0 // by range checksums: what differs is not in any journal
	in.mu.Unlock()
	in.n.log.Warn("verification: replica resynchronising to repair differing ranges", "replication", in.spec.ID, "fs_id", in.spec.DestFS)
	return nil
}

// verifyMessage is the status message a mismatch leaves until a clean
// pass.
func verifyMessage(v verifyStats, repairing bool) string {
	if !v.Last.Mismatch() {
		return ""
	}
	r := v.Last
	if repairing {
		r.Repair = "repairing (resync by range checksums)"
	}
	return r.Summary()
}
