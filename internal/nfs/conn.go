package nfs

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
	"github.com/regionfs/regionfs/internal/race"
)

// conn is one client connection: a reader that reads records within the
// connection's and the server's budgets (limits.go) and hands each to its
// own goroutine (at most MaxInflightPerConn at once), and replies written
// whole, in completion order, under wmu.
type conn struct {
	s   *Server
	nc  net.Conn  // the TCP connection (deadlines, Close)
	out io.Writer // where replies go: nc, or the TLS session on it
	// raw reads and writes a TCP connection's socket (rawSocket): the
	// requests until TLS starts, the replies while out is nc; nil for
	// other connections and with the race detector (race.Enabled).
	raw *rawSocket
	tls bool // the connection is protected by TLS (set before any request runs)
	// tlsOut, when the TLS session is rpc.TLSWriter's, seals and writes
	// the replies (send; set before any request runs).
	tlsOut *rpc.TLSWriter
	// tlsIn is the TLS session's reader of calls when it is
	// rpc.TLSReader's (TestTLSReadCopies counts its bytes).
	tlsIn  atomic.Pointer[rpc.TLSReader]
	peer   string // the client certificate's subject, with mutual TLS
	remote netip.AddrPort
	local  netip.AddrPort
	ctx    context.Context // Serve's, also canceled when Shutdown gives up
	// rctx ends the reader's waits: canceled by stopReading and with ctx.
	rctx    context.Context
	rcancel context.CancelFunc
	sem     chan struct{} // requests between reading and replying
	reqWG   sync.WaitGroup
	// workers run the requests; they end when the reader stops.
	workers workers
	// request and reply are this connection's shares (the server's
	// budgets bound all connections together).
	request, reply *Budget

	wmu    sync.Mutex // serialises replies
	broken bool       // a write failed; guarded by wmu

	stopMu  sync.Mutex // guards stopped
	stopped bool

	// lastActive is when a request was last read or a reply last
	// written (UnixNano); the connection limit closes the connection idle
	// longest (see ConnLimit).
	lastActive atomic.Int64
	// inflight counts the requests read and not yet answered, those the
	// reader still holds (waiting for the reply budget or a processing
	// slot) included.
	inflight atomic.Int32
	// processing counts the requests of c that hold one of the server's
	// processing slots (s.sem): taken before a request is handed on,
	// given back before its reply is written.
	processing atomic.Int32
}

// idle says whether no request of c is between reading and replying. (The
// request slots do not say it: a request the reader has read but not yet
// handed on holds only the slot the reader took to read it.)
func (c *conn) idle() bool { return c.inflight.Load() == 0 }

// active notes that c is in use now (see lastActive).
func (c *conn) active() { c.lastActive.Store(time.Now().UnixNano()) }

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

// maxPooled bounds the buffers kept in bufPool: larger ones (WRITE
// records) go to the server's bounded list of record buffers, or to the
// garbage collector, so that idle memory stays bounded and is given back.
const maxPooled = 256 << 10

func putBuf(b *[]byte) {
	if cap(*b) > maxPooled {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

func (s *Server) startConn(ctx context.Context, nc net.Conn) {
	c := &conn{s: s, nc: nc, out: nc, ctx: ctx, sem: make(chan struct{}, s.o.MaxInflightPerConn),
		request: NewBudget(s.o.MaxConnRequestBytes), reply: NewBudget(s.o.MaxConnReplyBytes)}
	c.rctx, c.rcancel = context.WithCancel(ctx)
	c.workers.init(c.rctx.Done())
	// Under the race detector, replies go through net.Conn: it takes the
	// ordering of a request after the reply before it from the
	// annotations of the syscall package's calls, and raw calls have none
	// (a test that set server state after a reply was reported as a race).
	if !race.Enabled {
		c.raw = newRawSocket(nc, &s.rawCalls)
	}
	c.remote, _ = netip.ParseAddrPort(nc.RemoteAddr().String())
	c.local, _ = netip.ParseAddrPort(nc.LocalAddr().String())
	c.active()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	evict, ok := s.o.Budgets.Conns.add(c)
	if !ok {
		s.mu.Unlock()
		// Counted before the close: a client that sees its connection
		// closed sees it counted.
		s.met.shedNew.Inc()
		nc.Close()
		s.log.Debug("nfs connection limit reached, none idle: closing the new connection", "remote", c.remote)
		return
	}
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	if evict != nil {
		// Its server's reader ends on the closed socket and stops counting it.
		evict.s.met.shedIdle.Inc()
		evict.nc.Close()
		s.log.Debug("nfs connection limit reached: closed the connection idle longest", "remote", evict.remote)
	}
	s.met.conns.Inc()
	go c.serve()
}

// stopReading makes the reader stop after the record it is reading; the
// requests in flight still get their replies.
func (c *conn) stopReading() {
	c.stopMu.Lock()
	c.stopped = true
	_ = c.nc.SetReadDeadline(time.Now())
	c.stopMu.Unlock()
	c.rcancel()
}

// setReadDeadline sets the connection's read deadline unless the reader
// has been stopped: stopReading's deadline in the past stays, whichever
// of the two comes first (a later deadline set after it would hold
// Shutdown up until it passed).
func (c *conn) setReadDeadline(t time.Time) {
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	if !c.stopped {
		_ = c.nc.SetReadDeadline(t)
	}
}

func (c *conn) isStopped() bool {
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	return c.stopped
}

func (c *conn) serve() {
	defer func() {
		c.rcancel()
		c.reqWG.Wait()
		c.workers.wait()
		c.nc.Close()
		c.s.o.Budgets.Conns.remove(c)
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		c.s.met.conns.Dec()
		c.s.connWG.Done()
	}()
	stop := context.AfterFunc(c.ctx, func() { c.nc.Close() })
	defer stop()
	var in io.Reader = c.nc
	if c.raw != nil {
		in = loneReader{c}
	}
	br := bufio.NewReaderSize(in, readerBufferBytes)
	if c.s.o.TLS != nil {
		// A TLS ClientHello first (stunnel, efs-utils): TLS from the start.
		c.setReadDeadline(time.Now().Add(c.s.o.IdleTimeout))
		if b, err := br.Peek(1); err == nil && b[0] == tlsHandshakeRecord {
			if br = c.startTLS(br); br == nil {
				return
			}
		}
	}
	for {
		if c.isStopped() {
			return
		}
		// A request slot of this connection first: a connection with
		// MaxInflightPerConn requests unanswered is not read.
		select {
		case c.sem <- struct{}{}:
		case <-c.rctx.Done():
			return
		}
		rec, err := c.readRecord(br)
		if err != nil {
			<-c.sem
			c.logReadError(err)
			return
		}
		c.active()
		c.inflight.Add(1)
		if !c.tls && isTLSProbe(rec.data) {
			// RFC 9289: answer the AUTH_TLS probe, then TLS on this
			// connection. Replies still in flight go out first.
			// (The probe does not keep the connection from the limit's
			// closing while TLS starts, bounded by HandshakeTimeout.)
			<-c.sem
			c.inflight.Add(-1)
			c.reqWG.Wait()
			br = c.answerProbe(br, rec.data)
			c.freeRecord(rec)
			if br == nil {
				return
			}
			continue
		}
		if !c.tls && c.s.certRequired() {
			// Client certificates required: plain text cannot present
			// one (refusePlain).
			<-c.sem
			c.inflight.Add(-1)
			c.reqWG.Wait()
			c.refusePlain(rec.data)
			c.freeRecord(rec)
			return
		}
		// The bytes its reply may take, then a processing slot.
		var est int64 = minReplyBytes
		h, args, perr := rpc.ParseCall(rec.data)
		if perr == nil {
			est = replyEstimate(&h, args, c.s.maxIO)
		}
		grant, err := c.grantReply(est)
		if err == nil {
			select {
			case c.s.sem <- struct{}{}:
				c.processing.Add(1)
			case <-c.rctx.Done():
				err = c.rctx.Err()
				c.returnReply(grant)
			}
		}
		if err != nil {
			c.freeRecord(rec)
			c.inflight.Add(-1)
			<-c.sem
			return
		}
		// A WRITE, SETATTR or COMMIT takes its place in its file's
		// order before the next request is read (orderGate).
		var gate gatePass
		if perr == nil {
			gate = c.s.order.enter(&h, args)
		}
		c.reqWG.Add(1)
		if perr == nil && c.answerHere(&h, args, br, gate) {
			c.s.answeredHere.Add(1)
			c.answer(rec, gate, grant)
			continue
		}
		c.s.handedOff.Add(1)
		c.workers.run(func() { c.answer(rec, gate, grant) })
	}
}

// answerHere says whether the reader answers a request itself instead of
// handing it to a worker, while nothing else of the connection is in
// flight or read ahead in br — a client waiting for this reply before it
// sends its next request, as nfs-cp and the create probe of issue 16 do —
// and the request cannot wait: a READ whose data is a prefetched chunk
// already read (readahead.ready), or a COMMIT of a file with nothing
// buffered or in flight and no call of it read before still in process
// (every COMMIT after FILE_SYNC writes). The hand-off would cost a
// worker's wake-up and the reader's park per request and gain nothing:
// there is nothing else to read meanwhile. A request that may wait (the
// disk, a chunk being read, a durable commit) still goes to a worker, so
// the reader keeps reading a pipelining client's requests. The request
// holds the same slots (the connection's and the server's) either way.
func (c *conn) answerHere(h *rpc.CallHeader, args []byte, br *bufio.Reader, gate gatePass) bool {
	if h.Prog != proto.ProgNFS || h.Vers != proto.VersNFS || br.Buffered() != 0 {
		return false
	}
	d := xdr.NewDecoder(args)
	switch h.Proc {
	case proto.ProcRead:
		if len(c.sem) != 1 {
			return false
		}
		var a proto.ReadArgs
		a.Decode(d)
		return d.Err() == nil && c.s.ra.ready(c.s.exports.Load(), a.FH, a.Offset, int(min(a.Count, c.s.maxIO)))
	case proto.ProcCommit:
		// The request slot of the call before (a FILE_SYNC WRITE) may
		// still be held while its reply is written: what counts is that
		// no other call of the connection is being processed.
		if c.processing.Load() != 1 {
			return false
		}
		var a proto.CommitArgs
		a.Decode(d)
		return d.Err() == nil && len(gate.after) == 0 && !c.s.wb.handleBusy(c.s.exports.Load(), a.FH)
	}
	return false
}

// answer serves a record and writes its reply, then runs the read-ahead's
// prefetches the request scheduled (read while the client takes in the
// reply).
func (c *conn) answer(rec *record, gate gatePass, grant int64) {
	defer c.reqWG.Done()
	c.s.order.wait(c.ctx, gate)
	out := c.handleRecord(rec)
	c.s.order.leave(gate)
	// The arguments and the processing slot are not needed to write the
	// reply, which may wait for a slow reader.
	c.freeRecord(rec)
	c.processing.Add(-1)
	<-c.s.sem
	if len(out.pieces) > 0 {
		c.send(out.pieces...)
	}
	c.active()
	c.inflight.Add(-1)
	after := out.takeAfter()
	out.free()
	c.returnReply(grant)
	<-c.sem
	// Raw block reads (engine.WithRawReads) only while no other request
	// is being processed, as the reply's raw sendmsg (send).
	alone := len(c.s.sem) == 0
	for _, f := range after {
		f(alone)
	}
}

// record is a request record read into a pooled buffer, with the request
// bytes granted for it.
type record struct {
	buf     *[]byte
	big     bool // buf is one of the server's record buffers
	data    []byte
	granted int64 // from both the connection's and the server's budget
}

// bigRecord: records larger than this are read into one of the server's
// record buffers (MaxRecordBytes each). The server keeps recordBuffers of
// them for reuse, and as many more as MaxUnstableBytes of buffered WRITE
// data takes (an UNSTABLE WRITE keeps its record's buffer, see
// takeRecord) until the writes have been idle for trimAfter: on the
// development VM a page of fresh memory costs ~15-60 µs to fault in, 5-30
// times the copy of its bytes, so a server streaming writes must not ask
// for new memory per WRITE.
const (
	bigRecord     = 64 << 10
	recordBuffers = 16
	trimAfter     = 30 * time.Second
)

// recordBufferSlots is how many record buffers the server keeps at most.
func recordBufferSlots(o *Options) int {
	return recordBuffers + int(o.MaxUnstableBytes/int64(o.MaxRecordBytes))
}

// putRecordBuf gives a record buffer back to the server's list (or to
// the garbage collector when the list is full or it is not one).
func (s *Server) putRecordBuf(b []byte) {
	if cap(b) != s.o.MaxRecordBytes {
		return
	}
	select {
	case s.recBufs <- b[:0]:
	default:
	}
}

// trimRecordBufs lets the garbage collector have the record buffers kept
// beyond recordBuffers (after a burst of writes).
func (s *Server) trimRecordBufs() {
	for len(s.recBufs) > recordBuffers {
		select {
		case <-s.recBufs:
		default:
			return
		}
	}
}

// recordBuf returns a buffer for a record that starts with n bytes.
func (c *conn) recordBuf(rec *record, n int) {
	if n <= bigRecord {
		rec.buf = getBuf()
		return
	}
	rec.big = true
	select {
	case b := <-c.s.recBufs:
		rec.buf = &b
	default:
		c.s.recBufsMade.Add(1)
		b := make([]byte, 0, c.s.o.MaxRecordBytes)
		rec.buf = &b
	}
}

// freeRecord returns a record's buffer and request bytes.
func (c *conn) freeRecord(r *record) {
	switch {
	case r.buf == nil:
	case r.big:
		c.s.putRecordBuf(*r.buf)
	case !r.big:
		putBuf(r.buf)
	}
	r.buf = nil
	c.request.release(r.granted)
	c.s.requests.release(r.granted)
	r.granted = 0
}

// grantReply waits for n reply bytes from the connection's budget, then
// the server's.
func (c *conn) grantReply(n int64) (int64, error) {
	g, err := c.reply.acquire(c.rctx, n)
	if err != nil {
		return 0, err
	}
	if g2, err := c.s.replies.acquire(c.rctx, g); err != nil || g2 != g {
		c.reply.release(g)
		c.s.replies.release(g2)
		if err == nil {
			err = errBudget
		}
		return 0, err
	}
	return g, nil
}

func (c *conn) returnReply(n int64) {
	c.reply.release(n)
	c.s.replies.release(n)
}

// Errors of reading records.
var (
	errRecordTimeout = errors.New("nfs: record not received whole in time")
	errRecordStalled = errors.New("nfs: record stalled while other clients wait for memory")
	errBudget        = errors.New("nfs: budget smaller than a connection's share")
)

// readRecord reads one record (all its fragments), each fragment's bytes
// granted by the connection's and the server's request budgets before it
// is read. The first fragment header may take IdleTimeout to come; from
// then on the whole record must arrive within RecordTimeout, and a record
// that makes no progress for a second while other connections wait for
// request bytes is abandoned (the connection is closed).
func (c *conn) readRecord(br *bufio.Reader) (*record, error) {
	// No buffer is taken before the first fragment's bytes are granted: a
	// connection waiting for a record holds no memory.
	rec := &record{}
	var data []byte
	fail := func(err error) (*record, error) {
		if rec.buf != nil {
			*rec.buf = data
		}
		c.freeRecord(rec)
		return nil, err
	}
	var (
		hdr      [4]byte
		deadline time.Time
	)
	for first := true; ; first = false {
		var err error
		if first {
			err = c.readFirstHeader(br, hdr[:])
		} else {
			c.setReadDeadline(deadline)
			_, err = io.ReadFull(br, hdr[:])
		}
		if err != nil {
			if err == io.EOF && !first {
				err = io.ErrUnexpectedEOF
			}
			if !first && errors.Is(err, os.ErrDeadlineExceeded) && !c.isStopped() {
				err = errRecordTimeout
			}
			return fail(err)
		}
		h := binary.BigEndian.Uint32(hdr[:])
		n := int(h &^ (1 << 31))
		if n > c.s.o.MaxRecordBytes-len(data) {
			return fail(fmt.Errorf("%w: %d+%d > %d bytes", rpc.ErrRecordTooLarge, len(data), n, c.s.o.MaxRecordBytes))
		}
		if err := c.grantRequest(rec, int64(n)); err != nil {
			return fail(err)
		}
		if first {
			// The clock starts once the bytes may be read. A record
			// being received makes the connection active (the
			// connection limit closes the one idle longest: not one in
			// the middle of a large WRITE).
			c.active()
			deadline = time.Now().Add(c.s.o.RecordTimeout)
			c.recordBuf(rec, n)
			data = (*rec.buf)[:0]
		}
		start := len(data)
		if cap(data)-start < n {
			data = c.growRecord(rec, data, start+n)
		}
		data = data[:start+n]
		if err := c.readBody(br, data[start:], deadline); err != nil {
			return fail(err)
		}
		if h&(1<<31) != 0 {
			*rec.buf = data
			rec.data = data
			return rec, nil
		}
	}
}

// errIdle: the connection was idle for IdleTimeout.
var errIdle = errors.New("nfs: connection idle")

// readFirstHeader reads the header of a record's first fragment, for as
// long as the connection is in use. A connection idle for IdleTimeout (no
// request read or answered for that long, none in progress) is closed
// (errIdle), as Linux's nfsd closes its idle connections after about six
// minutes: an idle client holds no connection slot for ever, and
// reconnects when it next sends a call. A connection with a request in
// progress, however long it takes, is never closed for idleness.
func (c *conn) readFirstHeader(br *bufio.Reader, hdr []byte) error {
	for {
		last := time.Unix(0, c.lastActive.Load())
		at := last.Add(c.s.o.IdleTimeout)
		if later := time.Now().Add(c.s.o.IdleTimeout); !c.idle() && later.After(at) {
			at = later
		}
		c.setReadDeadline(at)
		n, err := io.ReadFull(br, hdr)
		if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) || c.isStopped() {
			return err
		}
		if c.idle() && time.Since(time.Unix(0, c.lastActive.Load())) >= c.s.o.IdleTimeout {
			c.s.met.idleClosed.Inc()
			return errIdle
		}
		// A request in progress, or a reply written meanwhile: wait on.
	}
}

// growRecord moves the bytes of rec read so far (data, in rec.buf) to a
// buffer with room for need bytes: one of the server's record buffers
// once the record is larger than bigRecord, else one twice as large (up
// to bigRecord). A record sent in many small fragments (RFC 5531 §11
// allows any split) is so copied a few times, not once per fragment: a
// 200 KiB WRITE in 32-byte fragments cost ~640 MB of copies and garbage.
func (c *conn) growRecord(rec *record, data []byte, need int) []byte {
	if need > bigRecord && !rec.big {
		small := rec.buf
		c.recordBuf(rec, need)
		grown := append((*rec.buf)[:0], data...)
		*small = data
		putBuf(small)
		return grown
	}
	grown := make([]byte, len(data), max(need, min(2*cap(data), bigRecord)))
	copy(grown, data)
	return grown
}

// grantRequest waits for n request bytes for rec.
func (c *conn) grantRequest(rec *record, n int64) error {
	if n == 0 {
		return nil
	}
	g, err := c.request.acquire(c.rctx, n)
	if err != nil {
		return err
	}
	if g != n {
		c.request.release(g)
		return errBudget
	}
	if g, err = c.s.requests.acquire(c.rctx, n); err != nil || g != n {
		c.request.release(n)
		c.s.requests.release(g)
		if err == nil {
			err = errBudget
		}
		return err
	}
	rec.granted += n
	return nil
}

// readBody fills p before deadline, giving up early on a stalled record
// when the server's request bytes are contended.
func (c *conn) readBody(br *bufio.Reader, p []byte, deadline time.Time) error {
	for len(p) > 0 {
		step := time.Now().Add(stallTimeout)
		if step.After(deadline) {
			step = deadline
		}
		c.setReadDeadline(step)
		n, err := br.Read(p)
		p = p[n:]
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			switch {
			case c.isStopped():
				return err
			case !time.Now().Before(deadline):
				c.s.met.recordTimeouts.Inc()
				return errRecordTimeout
			case n == 0 && c.s.requests.Contended():
				c.s.met.recordTimeouts.Inc()
				return errRecordStalled
			}
		case err == io.EOF:
			return io.ErrUnexpectedEOF
		default:
			return err
		}
	}
	return nil
}

func (c *conn) logReadError(err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), c.isStopped():
	case errors.Is(err, errIdle):
		c.s.log.Debug("nfs connection idle, closed", "remote", c.remote, "idle_timeout", c.s.o.IdleTimeout)
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.s.log.Debug("nfs connection timed out", "remote", c.remote)
	case errors.Is(err, rpc.ErrRecordTooLarge):
		c.s.logRefusal(slog.LevelWarn, "nfs record too large, closing connection", "remote", c.remote, "err", err)
	case errors.Is(err, errRecordTimeout), errors.Is(err, errRecordStalled):
		c.s.logRefusal(slog.LevelInfo, "nfs incomplete record, closing connection", "remote", c.remote, "err", err)
	default:
		c.s.log.Debug("nfs connection closed", "remote", c.remote, "err", err)
	}
}

// send writes one complete record (its header already in place), given
// in one or more pieces.
func (c *conn) send(rec ...[]byte) {
	if c.tlsOut != nil {
		c.sendSealed(rec)
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.broken {
		return
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.o.WriteTimeout))
	var err error
	switch {
	case c.raw != nil && c.out == c.nc && len(rec) <= maxRawPieces && len(c.s.sem) == 0:
		// Raw only while no other request is being processed: a raw
		// call keeps its P for the whole copy (~200 µs for 1 MiB here),
		// which other connections' requests would wait for; through
		// the runtime the monitor hands the P to them (4 streams read
		// 0.2× slower relative to ganesha with every reply raw, read10).
		err = c.raw.write(rec)
	case len(rec) == 1:
		_, err = c.out.Write(rec[0])
	default:
		bufs := net.Buffers(rec)
		_, err = bufs.WriteTo(c.out)
	}
	if err != nil {
		c.broken = true
		c.s.log.Debug("nfs reply write failed", "remote", c.remote, "err", err)
		c.nc.Close()
	}
}

// sendSealed is send over a TLS session of rpc.TLSWriter's: the reply is
// sealed outside wmu (alongside other replies being sealed or written)
// and written in the order its sequence numbers were reserved. After a
// failed write every later one fails without writing.
func (c *conn) sendSealed(rec [][]byte) {
	err := c.tlsOut.WriteRecord(rec, c.s.o.WriteTimeout)
	if err == nil {
		return
	}
	c.wmu.Lock()
	first := !c.broken
	c.broken = true
	c.wmu.Unlock()
	if first {
		c.s.log.Debug("nfs reply write failed", "remote", c.remote, "err", err)
		c.nc.Close()
	}
}
