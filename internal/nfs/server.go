package nfs

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/loglimit"
	"github.com/regionfs/regionfs/internal/serve"
)

// Defaults of Options.
const (
	// DefaultMaxIOBytes is rtmax and wtmax (the Linux client's maximum
	// rsize/wsize, and the engine's default block size).
	DefaultMaxIOBytes         = 1 << 20
	DefaultMaxRecordBytes     = DefaultMaxIOBytes + 64<<10
	DefaultMaxInflightPerConn = 16
	DefaultMaxInflight        = 256
	DefaultMaxUnstableBytes   = 256 << 20
	DefaultFlushDelay         = time.Second
	DefaultDRCEntries         = 4096
	// DefaultIdleTimeout: Linux's nfsd closes a connection idle for
	// about six minutes; clients reconnect when they next send a call.
	DefaultIdleTimeout  = 6 * time.Minute
	DefaultWriteTimeout = 30 * time.Second
)

// Options configure a Server. Zero values mean the defaults above.
type Options struct {
	Logger *slog.Logger
	// MaxRecordBytes bounds one RPC record; a client announcing more is
	// disconnected.
	MaxRecordBytes int
	// MaxInflightPerConn bounds the requests of one connection between
	// reading and writing their reply (reading stops while it is
	// reached); MaxInflight bounds the procedures running at once
	// server-wide (a reply waiting for a slow reader holds no slot).
	MaxInflightPerConn, MaxInflight int
	// Budgets bound the request bytes read, the reply bytes not yet
	// written and the connections, server-wide (several servers may
	// share them); zero values make budgets of the default sizes for this
	// server alone. See limits.go.
	Budgets Budgets
	// MaxConnRequestBytes and MaxConnReplyBytes are one connection's
	// share of them.
	MaxConnRequestBytes, MaxConnReplyBytes int64
	// RecordTimeout bounds receiving one record once it has started
	// (default 10 s); an incomplete record closes the connection.
	RecordTimeout time.Duration
	// Admit is checked at accept (e.g. security groups); nil admits all.
	Admit func(remote netip.AddrPort) bool
	// Registerer, when set, receives per-procedure operation counts and
	// latencies and the UNSTABLE buffer size.
	Registerer prometheus.Registerer
	// MaxUnstableBytes bounds the UNSTABLE write data buffered in memory
	// (server-wide); writers wait for flushes beyond it.
	MaxUnstableBytes int64
	// FlushDelay is how long UNSTABLE data may stay buffered before the
	// server writes it on its own (a COMMIT, a size threshold or shutdown
	// write it sooner).
	FlushDelay time.Duration
	// DRCEntries bounds the duplicate request cache.
	DRCEntries int
	// IdleTimeout closes connections without traffic (no request read or
	// answered, none in progress) for that long; WriteTimeout bounds
	// writing one reply.
	IdleTimeout, WriteTimeout time.Duration
	// Clock is the server's time source for buffered writes; time.Now
	// when nil.
	Clock func() time.Time
	// TLS, when set, offers NFS over TLS on every listener: RFC 9289's
	// AUTH_TLS probe followed by a handshake on the same connection, or a
	// connection that starts with a TLS ClientHello (stunnel, efs-utils).
	// Its ClientAuth decides whether client certificates are asked for or
	// required (mutual TLS). Plain-text connections are still served
	// unless an export sets RequireTLS, or ClientAuth requires a
	// certificate (RequireAnyClientCert, RequireAndVerifyClientCert): a
	// plain-text client presents none, and its first call is answered
	// AUTH_ERROR AUTH_TOOWEAK and its connection closed (refusePlain).
	TLS *tls.Config
	// HandshakeTimeout bounds a TLS handshake (default 10 s).
	HandshakeTimeout time.Duration
}

func (o *Options) setDefaults() {
	if o.MaxRecordBytes <= 0 {
		o.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if o.MaxInflightPerConn <= 0 {
		o.MaxInflightPerConn = DefaultMaxInflightPerConn
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = DefaultMaxInflight
	}
	if o.MaxUnstableBytes <= 0 {
		o.MaxUnstableBytes = DefaultMaxUnstableBytes
	}
	if o.FlushDelay <= 0 {
		o.FlushDelay = DefaultFlushDelay
	}
	if o.DRCEntries <= 0 {
		o.DRCEntries = DefaultDRCEntries
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.Budgets.Request == nil || o.Budgets.Reply == nil || o.Budgets.Conns == nil || o.Budgets.TLSReplies == nil {
		b := NewBudgets(0, 0)
		if o.Budgets.Request == nil {
			o.Budgets.Request = b.Request
		}
		if o.Budgets.Reply == nil {
			o.Budgets.Reply = b.Reply
		}
		if o.Budgets.Conns == nil {
			o.Budgets.Conns = b.Conns
		}
		if o.Budgets.TLSReplies == nil {
			o.Budgets.TLSReplies = b.TLSReplies
		}
	}
	if o.MaxConnRequestBytes <= 0 {
		o.MaxConnRequestBytes = DefaultMaxConnRequestBytes
	}
	// A connection must be able to hold one whole record and one whole
	// reply.
	o.MaxConnRequestBytes = max(o.MaxConnRequestBytes, int64(o.MaxRecordBytes))
	if o.MaxConnReplyBytes <= 0 {
		o.MaxConnReplyBytes = DefaultMaxConnReplyBytes
	}
	o.MaxConnReplyBytes = max(o.MaxConnReplyBytes, int64(o.MaxRecordBytes))
	if o.RecordTimeout <= 0 {
		o.RecordTimeout = DefaultRecordTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// ErrServerClosed is returned by Serve after Shutdown (package serve's
// lifecycle, shared by every regionfs server).
var ErrServerClosed = serve.ErrServerClosed

// Server serves NFSv3, MOUNT v3 and the portmapper's GETPORT on every
// listener given to Serve.
type Server struct {
	o       Options
	log     *slog.Logger
	verf    atomic.Pointer[[8]byte] // write verifier: new at every start and after a lost write-back
	maxIO   uint32
	exports atomic.Pointer[exportSet]
	sem     chan struct{} // server-wide running procedures
	// requests and replies are the server-wide byte budgets
	// (Options.Budgets).
	requests, replies *Budget
	memReturn         memoryReturner
	// recBufs keeps record buffers of MaxRecordBytes for reuse (see
	// recordBufferSlots).
	recBufs chan []byte
	// recBufsMade counts the record buffers allocated (not reused).
	recBufsMade atomic.Int64
	// answeredHere and handedOff count the requests a connection's
	// reader answered itself and those it handed to a worker
	// (conn.answerHere).
	answeredHere, handedOff atomic.Uint64
	// rawCalls counts the socket reads and writes made as raw system
	// calls (rawSocket).
	rawCalls atomic.Uint64
	drc      *drc
	wb       *writeback
	order    orderGate // WRITEs, SETATTRs and COMMITs of each file, in the order read
	ra       *readahead
	met      *metrics
	// refusals holds back repeats of the lines a client can cause at will
	// (logRefusal).
	refusals *loglimit.Limiter
	// testHook, when set (tests only), runs before each procedure.
	testHook func(r *request)

	// ctx is canceled when Shutdown gives up waiting: requests still
	// running are abandoned.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex // guards the fields below
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	mounts    map[mountEntry]struct{}
	connWG    sync.WaitGroup
}

type mountEntry struct{ host, path string }

// refusalLogEvery is the least time between two log lines of one kind of
// refusal (logRefusal).
const refusalLogEvery = time.Second

// logRefusal logs a connection or call the server refused or closed for
// what its client sent (a failed TLS handshake, plain text where TLS was
// due, an incomplete or oversized record, a refused MNT): one line of a
// kind (msg) a second at most, the next one saying how many were held
// back. A client may repeat these as fast as it connects: before, each
// was a line (2300 lines a second from one client sending a bad TLS
// record in a loop), a log filling the disk. The metrics count them all.
func (s *Server) logRefusal(level slog.Level, msg string, attrs ...any) {
	ok, held := s.refusals.Allow(msg, time.Now())
	if !ok {
		return
	}
	if held > 0 {
		attrs = append(attrs, "repeated", held, "over", s.refusals.Every())
	}
	s.log.Log(context.Background(), level, msg, attrs...)
}

// NewServer returns a server with no exports. It starts nothing: Serve
// does, Shutdown stops everything.
func NewServer(o Options) *Server {
	o.setDefaults()
	s := &Server{
		o: o, log: o.Logger,
		refusals:  loglimit.New(refusalLogEvery),
		sem:       make(chan struct{}, o.MaxInflight),
		drc:       newDRC(o.DRCEntries),
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
		mounts:    map[mountEntry]struct{}{},
	}
	s.maxIO = DefaultMaxIOBytes
	if lim := uint32(o.MaxRecordBytes-4096) &^ 4095; lim < s.maxIO {
		s.maxIO = max(lim, 4096)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.met = newMetrics(o.Registerer)
	s.resetVerifier()
	s.requests, s.replies = o.Budgets.Request, o.Budgets.Reply
	s.recBufs = make(chan []byte, recordBufferSlots(&s.o))
	s.requests.setOnDrain(s.memReturn.schedule)
	s.met.watchBudgets(o.Registerer, s.requests, s.replies)
	s.wb = newWriteback(s)
	s.ra = newReadahead(s)
	s.exports.Store(newExportSet(nil))
	return s
}

// WriteVerifier returns the verifier WRITE and COMMIT replies carry; it is
// new at every server start, so clients resend uncommitted data, and
// changes whenever buffered data could not be written (see writeback.go).
func (s *Server) WriteVerifier() [8]byte { return *s.verf.Load() }

// resetVerifier gives the server a new write verifier.
func (s *Server) resetVerifier() {
	var v [8]byte
	_, _ = rand.Read(v[:]) // never fails (crypto/rand)
	if old := s.verf.Swap(&v); old != nil {
		s.met.verifierResets.Inc()
	}
}

// SetExports replaces the exports atomically. Exports that cannot be
// served (no file system, a replica without its superblock yet) are
// skipped and logged. Handles issued by a removed export become stale.
func (s *Server) SetExports(exps []Export) {
	old := s.exports.Load()
	list := make([]*export, 0, len(exps))
	for _, x := range exps {
		p, err := prepareExport(x)
		if err != nil {
			s.log.Error("nfs export skipped", "path", x.Path, "err", err)
			continue
		}
		// Keep the resolved root of an unchanged export.
		for _, o := range old.list {
			if o.FS == p.FS && o.tag == p.tag {
				o.mu.Lock()
				p.root = o.root
				o.mu.Unlock()
				break
			}
		}
		list = append(list, p)
	}
	s.exports.Store(newExportSet(list))
}

// Serve accepts connections on ln until Shutdown, then returns
// ErrServerClosed (package serve's lifecycle); another error is the
// listener's. ctx is the parent of the contexts of every connection and
// request Serve accepts: canceling it ends them (and Shutdown does when it
// gives up waiting), but not Serve.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	s.wb.start()
	cctx, cancel := context.WithCancel(ctx)
	context.AfterFunc(s.ctx, cancel) // Shutdown cancels s.ctx last
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("nfs: accept: %w", err)
			}
			// Anything else passes: out of file descriptors (EMFILE,
			// ENFILE), of memory or buffers, a connection aborted before
			// it was taken. The listener must not end on it, so it waits
			// and tries again; the connections already served go on.
			if backoff == 0 {
				s.log.Warn("nfs accept failed, retrying", "err", err)
			}
			s.met.acceptErrors.Inc()
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			// Not cut short by ctx: canceled, it ends the connections,
			// not Serve, and the accepts would be retried without a
			// pause. Shutdown (s.ctx) ends the wait.
			wait := time.NewTimer(backoff)
			select {
			case <-wait.C:
			case <-s.ctx.Done():
			}
			wait.Stop()
			continue
		}
		if backoff != 0 {
			s.log.Info("nfs accepting again")
			backoff = 0
		}
		if !s.admit(nc) {
			nc.Close()
			continue
		}
		s.startConn(cctx, nc)
	}
}

func (s *Server) admit(nc net.Conn) bool {
	if s.o.Admit == nil {
		return true
	}
	ap, err := netip.ParseAddrPort(nc.RemoteAddr().String())
	if err != nil {
		return false
	}
	return s.o.Admit(ap)
}

// Shutdown stops accepting, lets requests in flight finish (until ctx
// ends), closes every connection and makes every buffered UNSTABLE write
// durable. It returns the first error of those flushes, or ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.cancel()
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
	}
	if ferr := s.wb.flushAll(ctx, nil); ferr != nil && err == nil {
		err = ferr
	}
	s.wb.stop()
	s.ra.wait()
	s.memReturn.stop()
	s.cancel()
	return err
}

// Flush makes every buffered UNSTABLE write to fs durable. For a planned
// failover, first make the exports of fs read-only (SetExports), so that
// no new UNSTABLE write is accepted, then Flush, then change the file
// system's mode.
func (s *Server) Flush(ctx context.Context, fs *engine.FS) error {
	return s.wb.flushAll(ctx, fs)
}
