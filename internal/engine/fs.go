package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// FS is one file system: its committer (the only writer), its readers and
// its journal.
type FS struct {
	e      *Engine
	id     uint64
	name   string
	dom    *domain
	log    *slog.Logger
	prefix []byte // 'f' fsid

	queue   chan *op
	stop    chan struct{}
	done    chan struct{}
	closeMu sync.RWMutex // guards closed; held shared while enqueueing
	closed  bool

	ctx    context.Context // canceled when the file system closes
	cancel context.CancelFunc

	// runMu is held by whoever runs operations: the committer goroutine
	// from taking an operation off the queue until it waits on the queue
	// again, or a replica's apply run by its caller while the committer
	// is idle (runInline). It guards the committer-owned state below.
	runMu sync.Mutex
	// Committer-owned state (touched only with runMu held, or before the
	// committer starts).
	lastSeq    uint64
	mode       modeRecord
	boot       uint64 // boot counter in use; 0 = not yet bumped since open
	genCounter uint64
	bootSeq    uint64 // seq of the record that bumped boot (txn.genDurable)
	meta       metaCache
	txOv       *kv.Overlay // the transactions' overlays (see newTxn)
	txAbs      *kv.Overlay
	// recBuf: the committer's buffer for encoding a transaction's journal
	// record (txn.commit)
	recBuf []byte
	// retryHold: blocks a replica has that its last apply, ingest or
	// resync needed but could not use yet because others were missing;
	// in flight until the next one (see needBlocks).
	retryHold []blocks.ID
	// undo: while a resync replaces the file system's state, what it held
	// before (undo.go); nil otherwise.
	undo *undoHead
	// applyQ: pipelined groups of client mutations, to the applier, which
	// commits each to the store and hands it to the finisher (see
	// endGroup); inStore: those handed over, oldest first, until the
	// committer sees them in the store (committer-owned); refused: why the
	// applier refused a group's commit without stopping the engine
	// (fenced), after which it refuses every later one (they read its
	// writes).
	applyQ    chan *pending
	inStore   []*pending
	refused   atomic.Pointer[error]
	forwarded atomic.Uint64 // groups the applier handed to the finisher
	applyWork atomic.Int64  // the applier's time per operation (ns, a moving average)
	// pipe: groups committed and waiting for their sync, to the finisher
	// (see commitGroup); piped counts them from their hand-over to the
	// applier (or their commit) on.
	pipe   chan *pending
	piped  atomic.Int64
	synced chan struct{} // the finisher answered a group
	// lastCommit: how long the last group took from its commit to its
	// answer (ns)
	lastCommit atomic.Int64
	// syncTime: a moving average of a pipelined group's own sync time
	// (ns; see splitAt)
	syncTime atomic.Int64

	// Published state, readable by anyone.
	durable atomic.Uint64
	// lastVisible is the last client mutation answered once readable,
	// before its sync (doVisible), in commit order (SyncVisible).
	lastVisible atomic.Pointer[op]
	// lazyHeld counts the lazy groups the finisher holds until a sync
	// (finishCarried); a drain syncs them.
	lazyHeld atomic.Int64
	durMu    sync.Mutex
	durCh    chan struct{} // closed and replaced when durable advances
	// durTimes (guarded by durMu): the newest durable points, each the
	// last seq of a group and the clock when it became durable (Unix
	// ns), in a ring whose next slot is durNext (DurableTimes).
	durTimes [durTimesKept]durTime
	durNext  int
	modePub  atomic.Pointer[modeRecord]
	superPub atomic.Pointer[superblock]

	pinMu    sync.Mutex // guards the fields below
	pins     map[string]uint64
	tempPins map[uint64]uint64 // snapshot pins, not persisted
	tempSeq  uint64

	applyLimit atomic.Uint64
	shippers   atomic.Int64 // replications shipping this file system (ShipWrites)

	maint maintenance

	// maps: the block maps of files being read (blockmap.go).
	maps blockMaps

	stats fsStats
}

type fsStats struct {
	commits    atomic.Uint64
	records    atomic.Uint64
	groupOps   atomic.Uint64
	queued     atomic.Uint64
	answered   atomic.Uint64 // operations answered by the committer
	ran        atomic.Uint64 // operations the committer ran (or refused)
	handed     atomic.Uint64 // groups the committer handed to the applier
	awaited    atomic.Uint64 // pipelined groups the committer answered itself (a lone submitter's)
	inline     atomic.Uint64 // replica applies run by their caller, not handed to the committer (runInline)
	corruption atomic.Uint64
}

// Name returns the file system's name.
func (fs *FS) Name() string { return fs.name }

// Mode returns the current mode and epoch.
func (fs *FS) Mode() (Mode, uint64) {
	m := fs.modePub.Load()
	return m.Mode, m.Epoch
}

// BlockSize returns the block size fixed at creation (0 for a replica that
// has not received its superblock yet).
func (fs *FS) BlockSize() int {
	if s := fs.superPub.Load(); s != nil {
		return s.BlockSize
	}
	return 0
}

func (fs *FS) blockSizeOr() int {
	if b := fs.BlockSize(); b > 0 {
		return b
	}
	return DefaultBlockSize
}

// Geometry is how a file system cuts a file's data into blocks: at the
// multiples of BlockSize. A writer that cuts writes at block boundaries
// (NFS's write-back) cuts them where the engine does.
type Geometry struct{ BlockSize uint64 }

// Geometry returns the file system's block geometry (DefaultBlockSize
// until its superblock is read).
func (fs *FS) Geometry() Geometry { return Geometry{uint64(fs.blockSizeOr())} }

// Whole returns the indexes [first, last) of the blocks that the byte range
// [off, end) covers entirely; first >= last when it covers none.
func (g Geometry) Whole(off, end uint64) (first, last uint64) {
	return (off + g.BlockSize - 1) / g.BlockSize, end / g.BlockSize
}

// BlockEnd returns the offset where the block holding off ends.
func (g Geometry) BlockEnd(off uint64) uint64 { return (off/g.BlockSize + 1) * g.BlockSize }

// MACKey returns the key NFS handles are authenticated with. It is part of
// the replicated state, so handles stay valid on a promoted replica.
func (fs *FS) MACKey() []byte {
	if s := fs.superPub.Load(); s != nil {
		return s.MACKey
	}
	return nil
}

// Lineage returns the replicated lineage id shared by a file system and its
// replicas.
func (fs *FS) Lineage() []byte {
	if s := fs.superPub.Load(); s != nil {
		return s.Lineage
	}
	return nil
}

// DurableSeq returns the highest journal sequence that is durable.
func (rep *Replica) DurableSeq() uint64 { return rep.fs.durable.Load() }

// waitDurable blocks until the durable sequence exceeds after, the context
// ends or the file system closes. It returns the durable sequence.
func (rep *Replica) waitDurable(ctx context.Context, after uint64) (uint64, error) {
	fs := rep.fs
	for {
		fs.durMu.Lock()
		ch := fs.durCh
		fs.durMu.Unlock()
		if d := fs.durable.Load(); d > after {
			return d, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fs.durable.Load(), ctx.Err()
		case <-fs.stop:
			return fs.durable.Load(), ErrClosed
		}
	}
}

// DurableNotify returns the durable sequence and a channel that is closed
// once it advances past that value (for loops that also wait on other
// events).
func (rep *Replica) DurableNotify() (uint64, <-chan struct{}) {
	fs := rep.fs
	fs.durMu.Lock()
	ch := fs.durCh
	fs.durMu.Unlock()
	return fs.durable.Load(), ch
}

// durTimesKept is how many durable points DurableAt remembers: at 1 000
// groups a second, the last second.
const durTimesKept = 1024

// durTime is one durable point: everything up to seq became durable at at.
type durTime struct {
	seq uint64
	at  int64
}

// DurableTimes sets at[i] to when the record of seq first+i became durable
// here (the clock then), or to the zero time when that is no longer known
// (more than durTimesKept groups ago, or before this process opened the
// file system) or not yet.
func (rep *Replica) DurableTimes(first uint64, at []time.Time) {
	fs := rep.fs
	clear(at)
	fs.durMu.Lock()
	defer fs.durMu.Unlock()
	point := func(k int) durTime { // k points back from the newest (0)
		return fs.durTimes[(fs.durNext-1-k+2*durTimesKept)%durTimesKept]
	}
	// The oldest point at or after first is k-1 back; the one k back,
	// before first, says where its group starts.
	k := 0
	for k < durTimesKept && point(k).seq >= first {
		k++
	}
	if k == 0 {
		return // nothing at or after first is durable
	}
	lo := uint64(0) // the group of the point k-1 back starts after lo
	known := k < durTimesKept && point(k).seq != 0
	if known {
		lo = point(k).seq
	}
	end := first + uint64(len(at)) // seqs wanted: [first, end)
	for j := k - 1; j >= 0; j-- {
		p := point(j)
		if known {
			for seq := max(lo+1, first); seq <= p.seq && seq < end; seq++ {
				at[seq-first] = time.Unix(0, p.at).UTC()
			}
		}
		lo, known = p.seq, true
	}
}

func (fs *FS) publishDurable(seq uint64) {
	if seq <= fs.durable.Load() {
		return
	}
	at := fs.e.clock().UnixNano()
	fs.durable.Store(seq)
	fs.durMu.Lock()
	fs.durTimes[fs.durNext] = durTime{seq: seq, at: at}
	fs.durNext = (fs.durNext + 1) % durTimesKept
	close(fs.durCh)
	fs.durCh = make(chan struct{})
	fs.durMu.Unlock()
}

func (fs *FS) setModeLocked(m modeRecord) {
	fs.mode = m
	cp := m
	fs.modePub.Store(&cp)
}

// putMode writes the file system's mode record in tx and publishes it
// (the file system's lock held); the cached metadata is read again.
func (tx *txn) putMode(m modeRecord) {
	tx.abs.Set(localKey(tx.fs.id, locMode), m.encode())
	tx.fs.setModeLocked(m)
	tx.fs.meta.invalidate()
}

// putModeDurable is putMode for a replica's apply: the committer goes on
// from m at once, and m is published (Applied, Mode) only once tx's
// commit is durable, so that nothing reports as applied what a crash
// could still undo.
func (tx *txn) putModeDurable(m modeRecord) {
	tx.abs.Set(localKey(tx.fs.id, locMode), m.encode())
	tx.fs.mode = m
	tx.fs.meta.invalidate()
	tx.onDurable = append(tx.onDurable, func() {
		cp := m
		tx.fs.modePub.Store(&cp)
	})
}

// openFS loads a registered file system and starts its committer.
func (e *Engine) openFS(ctx context.Context, id uint64, rec *fsRecord, d *domain) (*FS, error) {
	fs := e.newFS(id, rec.Name, d)
	v, err := e.kv.Get(localKey(id, locMode))
	if err != nil {
		return nil, fmt.Errorf("mode: %w", err)
	}
	m, err := decodeMode(v)
	if err != nil {
		return nil, err
	}
	fs.setModeLocked(*m)
	r := fs.reader(e.kv)
	if sv, err := r.Get(metaKey(metaSuper)); err == nil {
		s, err := decodeSuper(sv)
		if err != nil {
			return nil, err
		}
		fs.superPub.Store(s)
	} else if !errors.Is(err, kv.ErrNotFound) {
		return nil, err
	}
	last, err := fs.lastJournalSeq()
	if err != nil {
		return nil, err
	}
	fs.lastSeq = max(last, m.AppliedSeq)
	fs.durable.Store(fs.lastSeq)
	if fs.undo, err = loadUndoHead(e.kv, id); err != nil {
		return nil, err
	}
	if err := fs.loadPins(); err != nil {
		return nil, err
	}
	fs.start()
	if fs.superPub.Load() == nil && m.Mode == ModePrimary {
		// Registered but never formatted: a crash between the two steps of
		// CreateFS is impossible (one batch), so this is corruption.
		fs.close()
		return nil, fmt.Errorf("%w: primary file system without superblock", ErrCorrupt)
	}
	fs.maint.start(fs)
	return fs, nil
}

func (e *Engine) newFS(id uint64, name string, d *domain) *FS {
	ctx, cancel := context.WithCancel(context.Background())
	fs := &FS{
		e: e, id: id, name: name, dom: d, prefix: fsPrefix(id),
		log:   e.log.With("fs", name, "fs_id", id),
		queue: make(chan *op, e.opts.QueueDepth),
		stop:  make(chan struct{}), done: make(chan struct{}),
		ctx: ctx, cancel: cancel,
		durCh: make(chan struct{}),
		pins:  map[string]uint64{},
	}
	return fs
}

// start starts the committer. It holds runMu from here, before its
// goroutine runs: a runInline that came first would find the
// committer's channels (pipe, applyQ) not made yet and block on a nil
// one forever, holding runMu (seen: TestFailedApplyLeavesNothing hung).
func (fs *FS) start() {
	fs.runMu.Lock()
	go fs.run()
}

// close stops the committer after the queued operations and waits for it.
func (fs *FS) close() {
	fs.closeMu.Lock()
	if fs.closed {
		fs.closeMu.Unlock()
		<-fs.done
		return
	}
	fs.closed = true
	fs.closeMu.Unlock()
	fs.maint.stop()
	close(fs.stop)
	<-fs.done
	fs.dom.doneInflight(fs.retryHold...)
	fs.retryHold = nil
	fs.cancel()
}

// reader presents r's keys of this file system as relative keys.
func (fs *FS) reader(r kv.Reader) prefixReader { return prefixReader{base: r, prefix: fs.prefix} }

func (fs *FS) lastJournalSeq() (uint64, error) {
	p := journalPrefix(fs.id)
	it, err := fs.e.kv.NewIter(p, upper(p))
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	return decodeU64(it.Key()[len(p):])
}

// view is a consistent read view: every read of one operation sees one
// committed state (on a replica: one applied prefix of the source).
type view struct {
	r     prefixReader
	snap  kv.Snapshot
	dom   *domain
	epoch uint64
}

func (fs *FS) readView() *view {
	v := &view{dom: fs.dom}
	v.epoch = fs.dom.enterRead()
	v.snap = fs.e.kv.NewSnapshot()
	v.r = fs.reader(v.snap)
	return v
}

func (v *view) close() {
	v.snap.Close()
	v.dom.exitRead(v.epoch)
}

// corrupt counts and wraps a corruption error.
func (fs *FS) corrupt(err error) error {
	if errors.Is(err, ErrCorrupt) || errors.Is(err, blocks.ErrCorrupt) || errors.Is(err, kv.ErrCorrupt) {
		fs.stats.corruption.Add(1)
		fs.log.Error("corruption detected", "err", err)
		if !errors.Is(err, ErrCorrupt) {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	}
	return err
}
