package nfs

import (
	"context"
	"encoding/binary"
	"net/netip"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
)

// Overload protection. What a connection may hold, so that one client can
// neither exhaust a mount target's memory nor stall its other clients:
//
//   - Request bytes: a record is read into memory only once its bytes are
//     granted by the connection's and the server's request budgets
//     (Options.MaxConnRequestBytes, Budgets.Request); they are returned
//     when the procedure has run. Waiting for a grant holds nothing but
//     the 4-byte fragment header. A record that does not arrive whole
//     within RecordTimeout, or that stalls for a second while others wait
//     for request bytes, closes its connection.
//   - Reply bytes: a request is admitted only once the bytes its reply
//     may take (a READ's count, a READDIR's maxcount, 1 KiB otherwise)
//     are granted by the connection's and the server's reply budgets
//     (Options.MaxConnReplyBytes, Budgets.Reply); they are returned when
//     the reply has been written to the socket. A client that does not
//     read its replies therefore stops being read itself once its share is
//     used, and only its own requests wait.
//   - Processing slots (Options.MaxInflight) are held only while a
//     procedure runs, never while its reply waits for the socket; each
//     connection's reader waits for one slot at a time, in arrival order,
//     so connections share the slots fairly. A connection has at most
//     MaxInflightPerConn requests between reading and replying.
//   - Connections: the servers sharing Budgets.Conns (a region's mount
//     targets) hold at most its limit of client connections
//     (DefaultMaxConns), far below the process's open-file limit, so that
//     a client opening connections without end takes neither the file
//     descriptors the engine needs for its files nor the memory. At the
//     limit a new connection closes the one idle longest (no request in
//     flight; its client reconnects when it next needs it, as Linux's
//     nfsd does with its oldest connections) of the client address
//     holding the most connections; when every connection has a request
//     in flight, the new one is closed instead. A client address holds at
//     most a share of the limit (a quarter): at its share a new
//     connection of it closes its own idle longest, or is closed when
//     none of its own is idle, so that one client opening connections
//     without end pushes out no other client's.
//
// Budgets are granted in arrival order (FIFO), so a large grant is not
// starved by small ones; small grants (most calls: everything but WRITE
// data and READ/READDIR replies) may also use a headroom of an eighth of
// the budget that large ones cannot, so that clients sending large
// records slowly do not hold up everyone's GETATTRs.

// Defaults of the budgets.
const (
	DefaultRequestBudgetBytes  = 128 << 20
	DefaultReplyBudgetBytes    = 256 << 20
	DefaultMaxConnRequestBytes = 8 << 20
	DefaultMaxConnReplyBytes   = 8 << 20
	DefaultRecordTimeout       = 10 * time.Second
	DefaultMaxConns            = 4096
	// connShareDiv: a client address holds at most a connShareDiv-th
	// of the connection limit (1 024 of DefaultMaxConns), and at least
	// minConnShare or the whole limit if that is smaller. One host never
	// needs that many: Linux shares one connection (nconnect: up to 16)
	// to a server among all its mounts; a host of containers with a
	// regionfs mount each has one per mount.
	connShareDiv = 4
	minConnShare = 64
	// minReplyBytes is what a reply is assumed to take when its size is
	// not bounded by an argument.
	minReplyBytes = 1 << 10
	// stallTimeout: a record that makes no progress this long while other
	// connections wait for request bytes closes its connection.
	stallTimeout = time.Second
	// readerBufferBytes is each connection's read buffer (large records
	// are read past it, straight into their own buffer).
	readerBufferBytes = 8 << 10
	// smallGrant: grants up to this size may use the budget's headroom.
	smallGrant = 64 << 10
)

// Budgets are the server-wide byte budgets of Options: several servers
// (the mount targets of a region) may share one.
type Budgets struct {
	Request *Budget
	Reply   *Budget
	Conns   *ConnLimit
	// TLSReplies keeps the buffers TLS connections gather and seal
	// their replies in between replies (rpc.Buffers): at most
	// tlsReplyBuffers, ~17 MiB of whole-reply buffers.
	TLSReplies *rpc.Buffers
}

// tlsReplyBuffers is how many reply buffers Budgets.TLSReplies keeps.
const tlsReplyBuffers = 16

// NewBudgets returns request and reply budgets of the given sizes and a
// connection limit of DefaultMaxConns (the defaults for values ≤ 0).
func NewBudgets(requestBytes, replyBytes int64) Budgets {
	if requestBytes <= 0 {
		requestBytes = DefaultRequestBudgetBytes
	}
	if replyBytes <= 0 {
		replyBytes = DefaultReplyBudgetBytes
	}
	return Budgets{Request: NewBudget(requestBytes), Reply: NewBudget(replyBytes), Conns: NewConnLimit(0),
		TLSReplies: rpc.NewBuffers(tlsReplyBuffers)}
}

// ConnLimit bounds the connections of the servers sharing it, and those
// of each client address (see the overload protection above).
type ConnLimit struct {
	max, perClient int

	mu      sync.Mutex // guards the fields below
	conns   map[*conn]struct{}
	clients map[netip.Addr]int // connections counted per client address
}

// NewConnLimit returns a limit of n connections; when n ≤ 0,
// DefaultMaxConns or a quarter of the process's open-file limit, whichever
// is smaller (the engine's files and other regions' mount targets need
// the rest). A client address holds at most a quarter of it (at least 64
// or all of it).
func NewConnLimit(n int) *ConnLimit {
	if n <= 0 {
		n = DefaultMaxConns
		var rl syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < uint64(4*n) {
			n = max(int(rl.Cur/4), 16)
		}
	}
	return newConnLimit(n, max(n/connShareDiv, min(n, minConnShare)))
}

// newConnLimit returns a limit of n connections, perClient of them per
// client address.
func newConnLimit(n, perClient int) *ConnLimit {
	return &ConnLimit{max: n, perClient: perClient, conns: map[*conn]struct{}{}, clients: map[netip.Addr]int{}}
}

// clientAddr is the address c's client is counted by.
func clientAddr(c *conn) netip.Addr { return c.remote.Addr().Unmap() }

// add counts c. A client at its share takes the place of its own
// connection idle longest; at the limit c takes the place of the idle
// connection of the client holding the most connections, its idle longest.
// add returns the connection whose place c took for the caller to close;
// when none can make room, c is not counted and ok is false.
func (l *ConnLimit) add(c *conn) (evict *conn, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := clientAddr(c)
	if l.clients[a] >= l.perClient || len(l.conns) >= l.max {
		var (
			since int64
			most  int
		)
		own := l.clients[a] >= l.perClient
		for o := range l.conns {
			if !o.idle() {
				continue
			}
			oa := clientAddr(o)
			if own && oa != a {
				continue
			}
			n, t := l.clients[oa], o.lastActive.Load()
			if evict == nil || n > most || n == most && t < since {
				evict, since, most = o, t, n
			}
		}
		if evict == nil {
			return nil, false
		}
		l.removeLocked(evict)
	}
	l.conns[c] = struct{}{}
	l.clients[a]++
	return evict, true
}

// remove stops counting c (a connection that ended, or was evicted).
func (l *ConnLimit) remove(c *conn) {
	l.mu.Lock()
	l.removeLocked(c)
	l.mu.Unlock()
}

func (l *ConnLimit) removeLocked(c *conn) {
	if _, ok := l.conns[c]; !ok {
		return
	}
	delete(l.conns, c)
	a := clientAddr(c)
	if l.clients[a]--; l.clients[a] <= 0 {
		delete(l.clients, a)
	}
}

// Budget is a number of bytes handed out in arrival order. A grant larger
// than the whole budget is capped at it (it then waits for everything to
// be returned). Small grants may exceed the limit by an eighth.
type Budget struct {
	limit int64

	mu      sync.Mutex // guards the fields below
	used    int64
	peak    int64 // highest use since the budget was last empty
	waiters []*budgetWaiter
	// onDrain runs (outside mu) when the budget empties after having been
	// more than half used.
	onDrain func()
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed when granted
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: max(limit, 1)} }

// Limit returns the budget's size.
func (b *Budget) Limit() int64 { return b.limit }

// Used returns the bytes granted and not yet returned.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Contended reports whether someone waits for a grant.
func (b *Budget) Contended() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.waiters) > 0
}

// acquire waits until n bytes (at most the limit) are granted and returns
// the amount granted, or fails when ctx ends.
func (b *Budget) acquire(ctx context.Context, n int64) (int64, error) {
	n = min(max(n, 0), b.limit)
	b.mu.Lock()
	if b.fitsLocked(n, len(b.waiters) == 0) {
		b.grantLocked(n)
		b.mu.Unlock()
		return n, nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return n, nil
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case <-w.ready:
			// Granted meanwhile: give it back.
			b.mu.Unlock()
			b.release(n)
			return 0, ctx.Err()
		default:
		}
		for i, x := range b.waiters {
			if x == w {
				b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
				break
			}
		}
		b.wakeLocked()
		b.mu.Unlock()
		return 0, ctx.Err()
	}
}

func (b *Budget) grantLocked(n int64) {
	b.used += n
	b.peak = max(b.peak, b.used)
}

// fitsLocked reports whether n bytes can be granted now: within the limit
// when nobody waits (first), or, for a small grant, within the headroom.
func (b *Budget) fitsLocked(n int64, first bool) bool {
	if first && b.used+n <= b.limit {
		return true
	}
	return n <= smallGrant && b.used+n <= b.limit+b.limit/8
}

// wakeLocked grants waiters in order while they fit, then the small ones
// that fit in the headroom.
func (b *Budget) wakeLocked() {
	for len(b.waiters) > 0 && b.fitsLocked(b.waiters[0].n, true) {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		b.grantLocked(w.n)
		close(w.ready)
	}
	for i := 0; i < len(b.waiters); {
		if w := b.waiters[i]; b.fitsLocked(w.n, false) {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			b.grantLocked(w.n)
			close(w.ready)
			continue
		}
		i++
	}
}

// setOnDrain sets the function run when the budget empties after a burst
// (the first server sharing a budget sets it).
func (b *Budget) setOnDrain(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.onDrain == nil {
		b.onDrain = f
	}
}

// release returns n bytes.
func (b *Budget) release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.wakeLocked()
	var drained func()
	if b.used == 0 {
		if b.peak > b.limit/2 {
			drained = b.onDrain
		}
		b.peak = 0
	}
	b.mu.Unlock()
	if drained != nil {
		drained()
	}
}

// memoryReturner gives memory back to the operating system after a burst
// of buffered bytes is over (Go would otherwise keep it for minutes), at
// most once per interval.
type memoryReturner struct {
	mu      sync.Mutex // guards the fields below
	timer   *time.Timer
	last    time.Time
	stopped bool
}

const memoryReturnInterval = 30 * time.Second

func (m *memoryReturner) schedule() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.timer != nil || m.stopped {
		return
	}
	wait := max(time.Second, memoryReturnInterval-time.Since(m.last))
	m.timer = time.AfterFunc(wait, func() {
		debug.FreeOSMemory()
		m.mu.Lock()
		m.timer, m.last = nil, time.Now()
		m.mu.Unlock()
	})
}

// stop cancels a scheduled return (server shutdown).
func (m *memoryReturner) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopped = true
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
}

// replyEstimate is how many bytes the reply to a call may take: bounded by
// the call's own count for the procedures that return data.
func replyEstimate(h *rpc.CallHeader, args []byte, maxIO uint32) int64 {
	if h.Prog != proto.ProgNFS {
		return minReplyBytes
	}
	var count uint32
	switch h.Proc {
	case proto.ProcRead:
		// fh (opaque<64>), offset (8), count (4)
		count = u32After(args, 8)
	case proto.ProcReadDir:
		// fh, cookie (8), cookieverf (8), count (4)
		count = u32After(args, 16)
	case proto.ProcReadDirPlus:
		// fh, cookie (8), cookieverf (8), dircount (4), maxcount (4)
		count = u32After(args, 20)
	default:
		return minReplyBytes
	}
	return minReplyBytes + int64(min(count, maxIO))
}

// u32After returns the uint32 at skip bytes after the file handle that
// starts args (0 when args is too short).
func u32After(args []byte, skip int) uint32 {
	if len(args) < 4 {
		return 0
	}
	n := int(binary.BigEndian.Uint32(args))
	if n > proto.FHSize {
		return 0
	}
	at := 4 + (n+3)&^3 + skip
	if at+4 > len(args) {
		return 0
	}
	return binary.BigEndian.Uint32(args[at:])
}
