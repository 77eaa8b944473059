package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// Dialer makes a new connection for a Session: it may pick another
// address each time (another mount target, a promoted replica). A
// Dialer that returns Switched=true tells the session that the new server
// holds another copy of the data (a failover): writes not yet committed
// on the old one are lost, and the session's epoch advances.
type Dialer func(ctx context.Context) (Dialed, error)

// Dialed is a Dialer's result.
type Dialed struct {
	Conn     *Conn
	Addr     string
	Switched bool
}

// SessionOptions configure a Session.
type SessionOptions struct {
	Dial   Dialer
	Logger *slog.Logger
	// CallTimeout bounds one attempt of a call; a call that takes longer
	// drops the connection and is retried on a new one (default 60 s).
	CallTimeout time.Duration
	// OnSwitch runs (once per switch, before any call is retried) when a
	// Dialer reports Switched, with the new epoch.
	OnSwitch func(epoch uint64)
}

// Session is an NFS client that survives its server: calls that fail for
// transport reasons (connection reset, server restart, timeouts) are
// retried on a new connection until their context ends, like a hard NFS
// mount. File handles stay valid across the reconnection (regionfs's
// handles survive restarts and failover). It is safe for concurrent use.
type Session struct {
	o SessionOptions

	mu       sync.Mutex // guards the fields below
	cur      *Conn
	addr     string
	epoch    uint64
	dialing  chan struct{} // closed when the dial in progress ends
	closed   bool
	lastDial error

	calls  [proto.NumProcs + 1]callStat // NFS calls made, by procedure; REGIONFS_CLOSE last
	turns  atomic.Uint64
	writes atomic.Uint64
	bufs   *Buffers
	// limits are the server's transfer sizes once known (limits.go).
	limits atomic.Pointer[ioLimits]
}

type callStat struct{ n, ns atomic.Uint64 }

// CallStat counts the calls of one procedure and the time they took
// (retries included).
type CallStat struct {
	N     uint64
	Total time.Duration
}

func (c CallStat) String() string {
	if c.N == 0 {
		return "0"
	}
	return fmt.Sprintf("%d/%.2fms", c.N, float64(c.Total)/float64(c.N)/1e6)
}

// ErrSessionClosed: the session was closed.
var ErrSessionClosed = errors.New("nfs client: session closed")

// NewSession returns a session; it dials at the first call (or Connect).
func NewSession(o SessionOptions) *Session {
	if o.CallTimeout <= 0 {
		o.CallTimeout = 60 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Session{o: o, bufs: NewBuffers()}
}

// Recycle gives back the storage of a READ reply's data (ReadRes.Data)
// once nothing refers to it any more; later large replies reuse it.
func (s *Session) Recycle(data []byte) {
	if s != nil {
		s.bufs.Put(data)
	}
}

// Connect makes sure the session has a connection (one attempt).
func (s *Session) Connect(ctx context.Context) error {
	_, err := s.conn(ctx, false)
	return err
}

// Epoch counts the switches to another copy of the data.
func (s *Session) Epoch() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
}

// Addr is the address of the current connection.
func (s *Session) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Close closes the connection; later calls fail with ErrSessionClosed.
func (s *Session) Close() error {
	s.mu.Lock()
	s.closed = true
	c := s.cur
	s.cur = nil
	s.mu.Unlock()
	if c != nil {
		return c.Close()
	}
	return nil
}

// Ordered returns the session's connection (dialing one if there is
// none) and whether its server runs the WRITEs, SETATTRs and COMMITs of
// one file in the order it reads them (Conn.Ordered). Calls made
// through the session meanwhile may go out on a later connection, if
// this one fails: a caller relying on the order sends its calls together
// on this one with Batch, or checks with WithSentOn that each went out
// once, on this one.
func (s *Session) Ordered(ctx context.Context) (*Conn, bool) {
	c, err := s.conn(ctx, false)
	if err != nil {
		return nil, false
	}
	return c, c.Ordered(ctx)
}

// Client returns a client that calls through the session with auth.
func (s *Session) Client(auth rpc.OpaqueAuth) *Client { return &Client{Auth: auth, sess: s} }

// conn returns the current connection, dialing one when there is none
// (retrying with backoff until ctx ends when retry is set).
func (s *Session) conn(ctx context.Context, retry bool) (*Conn, error) {
	backoff := 50 * time.Millisecond
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrSessionClosed
		}
		if s.cur != nil {
			c := s.cur
			s.mu.Unlock()
			return c, nil
		}
		if ch := s.dialing; ch != nil {
			s.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ch := make(chan struct{})
		s.dialing = ch
		s.mu.Unlock()

		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		d, err := s.o.Dial(dctx)
		cancel()
		s.mu.Lock()
		s.dialing = nil
		close(ch)
		if err == nil {
			if s.closed {
				s.mu.Unlock()
				d.Conn.Close()
				return nil, ErrSessionClosed
			}
			d.Conn.UseBuffers(s.bufs)
			d.Conn.turns.Store(&s.turns)
			d.Conn.writes.Store(&s.writes)
			s.cur, s.addr = d.Conn, d.Addr
			if d.Switched {
				s.epoch++
				s.limits.Store(nil) // another server: asked again
			}
			epoch := s.epoch
			s.lastDial = nil
			s.mu.Unlock()
			s.o.Logger.Info("nfs connected", "addr", d.Addr, "switched", d.Switched, "epoch", epoch)
			if d.Switched && s.o.OnSwitch != nil {
				s.o.OnSwitch(epoch)
			}
			return d.Conn, nil
		}
		first := s.lastDial == nil || s.lastDial.Error() != err.Error()
		s.lastDial = err
		s.mu.Unlock()
		if first {
			s.o.Logger.Warn("nfs server not reachable, retrying", "err", err)
		}
		if !retry {
			return nil, err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last attempt: %v)", ctx.Err(), err)
		}
		backoff = min(2*backoff, time.Second)
	}
}

// drop forgets c (after a transport error) so that the next call dials.
func (s *Session) drop(c *Conn, why error) {
	s.mu.Lock()
	if s.cur != c {
		s.mu.Unlock()
		return
	}
	s.cur = nil
	addr := s.addr
	s.mu.Unlock()
	s.o.Logger.Warn("nfs connection lost, reconnecting", "addr", addr, "err", why)
	c.Close()
}

// transient reports whether err is a transport failure worth a retry on
// a new connection.
func transient(err error) bool {
	var ne net.Error
	return errors.Is(err, ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne) ||
		errors.Is(err, rpc.ErrGarbage)
}

// timeout reports whether err is a call or connection timing out (the
// server slow or unreachable) rather than the connection ending.
func timeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout()
}

// ErrRejected: the server ended the connection maxRejects times in a row
// while a call larger than smallWriteBytes waited for its reply, or its
// reply was larger than MaxRecordBytes. A server restarting ends it once;
// one that ends it every time does not take the call (a record larger
// than it accepts), and sending it again would never end. A smaller call
// is never given up this way: every server
// takes records of that size, so connections that keep ending under one
// are the path's (a proxy or TLS terminator in front of a server that is
// away), and a hard mount waits for the server as it does when it is
// unreachable.
var ErrRejected = errors.New("nfs client: the server closes the connection on this call")

// maxRejects is how many connections in a row may end under one call
// before it fails with ErrRejected.
const maxRejects = 5

// Calls returns how many NFS calls of each procedure the session made
// (retries on a new connection counted once) and their total time, by
// name; procedures never called are left out. regionfs's exclusive
// creates (REGIONFS_CREATE, REGIONFS_CREATE_VISIBLE) count as a CREATE; its REGIONFS_CLOSE is
// counted under its own name.
func (s *Session) Calls() map[string]CallStat {
	out := map[string]CallStat{}
	for i := range s.calls {
		if v := s.calls[i].n.Load(); v > 0 {
			name := proto.RegionFSProcNames[proto.ProcRegionFSClose]
			if i < proto.NumProcs {
				name = proto.ProcNames[i]
			}
			out[name] = CallStat{N: v, Total: time.Duration(s.calls[i].ns.Load())}
		}
	}
	return out
}

// Turns counts the calls the session sent while no other call of its
// connection was waiting for a reply: the round trips a caller that makes
// one call at a time waits for (calls sent behind another one unanswered,
// pipelined, are not counted).
func (s *Session) Turns() uint64 { return s.turns.Load() }

// Writes counts the writes of calls to the session's connections (a
// Batch is one).
func (s *Session) Writes() uint64 { return s.writes.Load() }

// Call is one NFS call of a Batch.
type Call struct {
	Auth rpc.OpaqueAuth
	Proc uint32 // an NFS procedure
	// Args are the arguments; Res receives the results, and Status
	// points at the status in Res.
	Args, Res proto.Message
	Status    *proto.Status
	// Err is the call's failure: its status, or why it has no reply
	// (Transport tells which).
	Err error
}

// Transport reports whether the call failed for want of a reply (the
// connection, a timeout) rather than with a status: it may or may not
// have been carried out.
func (c *Call) Transport() bool {
	var st proto.Status
	return c.Err != nil && !errors.As(c.Err, &st)
}

// Batch sends calls on c (the session's connection, from Ordered) back to
// back, in one write and without waiting for a reply in between, and
// waits for all their replies: the server reads them in order, and one
// round trip answers them all. Nothing is sent again: a call that gets no
// reply (the connection failed, CallTimeout passed) fails with that
// error, whether or not the server carried it out, and the connection is
// dropped (the session's next call dials again).
func (s *Session) Batch(ctx context.Context, c *Conn, calls []*Call) {
	t0 := time.Now()
	xids := make([]uint32, len(calls))
	var rec [][]byte
	for i, cl := range calls {
		xids[i] = c.NextXID()
		h := rpc.CallHeader{XID: xids[i], Prog: proto.ProgNFS, Vers: proto.VersNFS, Proc: cl.Proc, Cred: cl.Auth}
		rec = append(rec, encodeCall(h, encodeArgs(cl.Args))...)
	}
	actx, cancel := context.WithTimeout(ctx, s.o.CallTimeout)
	defer cancel()
	chs, err := c.send(actx, xids, rec)
	for i, cl := range calls {
		cl.Err = err
		if err == nil {
			var msg []byte
			if msg, cl.Err = c.await(actx, xids[i], chs[i]); cl.Err == nil {
				if _, msg, cl.Err = rpc.ParseReply(msg); cl.Err == nil {
					cl.Err = decodeReply(msg, cl.Res, proto.ProgNFS, proto.VersNFS, cl.Proc)
				}
			}
		}
		if cl.Err == nil && *cl.Status != proto.OK {
			cl.Err = *cl.Status
		}
		if cl.Proc < proto.NumProcs {
			s.calls[cl.Proc].n.Add(1)
			s.calls[cl.Proc].ns.Add(uint64(time.Since(t0)))
		}
		if cl.Err != nil && ctx.Err() == nil && (transient(cl.Err) || errors.Is(cl.Err, context.DeadlineExceeded)) {
			s.drop(c, cl.Err)
		}
	}
}

// encodeArgs encodes a call's arguments. A WRITE's data is not copied:
// its arguments are the encoded head, the data as the caller holds it,
// and the padding, sent together (CallRawBuffers).
func encodeArgs(args proto.Message) [][]byte {
	if c, ok := args.(*proto.CloseArgs); ok && len(c.Write.Data) > copyArgsBytes {
		// REGIONFS_CLOSE: the WRITE's head, its data, then the padding
		// and the rest.
		e := xdr.NewEncoder(make([]byte, 0, 128))
		c.Write.EncodeHead(e)
		t := xdr.NewEncoder(make([]byte, 0, 128))
		t.Fixed(proto.WritePad(len(c.Write.Data)))
		c.EncodeTail(t)
		return [][]byte{e.Bytes(), c.Write.Data, t.Bytes()}
	}
	if w, ok := args.(*proto.WriteArgs); ok && len(w.Data) > copyArgsBytes {
		e := xdr.NewEncoder(make([]byte, 0, 128))
		w.EncodeHead(e)
		if pad := proto.WritePad(len(w.Data)); len(pad) > 0 {
			return [][]byte{e.Bytes(), w.Data, pad}
		}
		return [][]byte{e.Bytes(), w.Data}
	}
	e := xdr.NewEncoder(make([]byte, 0, 256))
	args.Encode(e)
	return [][]byte{e.Bytes()}
}

// call runs one call through the session.
func (s *Session) call(ctx context.Context, auth rpc.OpaqueAuth, prog, vers, proc uint32, args, res proto.Message) error {
	_, err := s.callResent(ctx, auth, prog, vers, proc, args, res)
	return err
}

// callResent is call that also reports whether a change was sent again
// on a new connection (its first sending may have been carried out: see
// ResentError).
func (s *Session) callResent(ctx context.Context, auth rpc.OpaqueAuth, prog, vers, proc uint32, args, res proto.Message) (resent bool, _ error) {
	stat, changes := -1, false
	switch {
	case prog == proto.ProgNFS && proc < proto.NumProcs:
		stat, changes = int(proc), proto.Changes(proc)
	case prog == proto.ProgRegionFS && (proc == proto.ProcRegionFSCreate || proc == proto.ProcRegionFSCreateVisible):
		stat, changes = proto.ProcCreate, true // counted as a CREATE
	case prog == proto.ProgRegionFS && proc == proto.ProcRegionFSClose:
		stat, changes = proto.NumProcs, true
	}
	if stat >= 0 {
		t0 := time.Now()
		defer func() {
			s.calls[stat].n.Add(1)
			s.calls[stat].ns.Add(uint64(time.Since(t0)))
		}()
	}
	enc := encodeArgs(args)
	h := rpc.CallHeader{Prog: prog, Vers: vers, Proc: proc, Cred: auth}
	// A change is retransmitted with its first XID, so that the server's
	// duplicate request cache answers a retransmission of one it made.
	// A caller that gives up (ctx) gets ctx's error whether or not the
	// change was made: the mount gives up only for a caller being killed
	// (internal/fuse's interrupt.go), as a hard NFS mount does, so no one
	// tries the change again and meets its own effect.
	rejects, size := 0, 0
	for _, b := range enc {
		size += len(b)
	}
	backoff := 50 * time.Millisecond // between connections ending under this call
	for ends := 0; ; {
		if ends > 1 {
			// The first ending is sent again at once (a restart); later
			// ones not: a path that accepts and closes would otherwise
			// be dialed in a tight loop.
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return resent, ctx.Err()
			}
			backoff = min(2*backoff, time.Second)
		}
		c, err := s.conn(ctx, true)
		if err != nil {
			return resent, err
		}
		for changes && h.XID == 0 { // 0 would mean "assign one"
			h.XID = c.NextXID()
		}
		actx, cancel := context.WithTimeout(ctx, s.o.CallTimeout)
		out, err := c.CallRawBuffers(actx, h, enc)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return resent, ctx.Err()
			}
			if transient(err) || errors.Is(err, context.DeadlineExceeded) {
				s.drop(c, err)
				resent = changes
				if !timeout(err) {
					ends++
				}
				if !timeout(err) && (size > smallWriteBytes || errors.Is(err, rpc.ErrRecordTooLarge)) {
					// Closed by the server (or unreadable) while this
					// call waited: a restart, once; the same call
					// every time is one it does not take.
					if rejects++; rejects >= maxRejects {
						return resent, fmt.Errorf("%w: %d connections in a row ended before its reply (last: %v)", ErrRejected, rejects, err)
					}
				}
				continue
			}
			return resent, err
		}
		return resent, decodeReply(out, res, prog, vers, proc)
	}
}
