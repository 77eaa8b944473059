package replication

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/serve"
)

// Defaults.
const (
	DefaultHeartbeat   = 100 * time.Millisecond
	DefaultPauseAfter  = 5 * time.Minute
	DefaultRetainAge   = 15 * time.Minute
	DefaultForkRetain  = 7 * 24 * time.Hour
	DefaultMaxLagAge   = 24 * time.Hour
	DefaultMaxLagBytes = 64 << 30
	DefaultChunkBytes  = 1 << 20
	DefaultWindowBytes = 64 << 20
	// callTimeout bounds a unary call to a peer (failover coordination
	// must fail fast when the peer is unreachable).
	callTimeout = 2 * time.Second
	// DefaultStreamIdle: a stream that carried nothing (not even a
	// heartbeat or an ack) for this long is dead.
	DefaultStreamIdle = 10 * time.Second
)

// Peer is another region (or this one, for replication between zones of
// one region).
type Peer struct {
	// URL of the peer's replication endpoint, e.g. http://127.2.0.1:7071.
	URL string
	// Secret authenticates the pair (both sides hold the same one).
	Secret []byte
	// TLS, when set, is the client configuration for https URLs (mutual
	// TLS: include a client certificate).
	TLS *tls.Config
}

// Hooks connect the node to its region's control plane.
type Hooks interface {
	// Call answers a unary call from a peer region (control-plane
	// coordination of replication configurations). It returns the JSON
	// response or an error; *CallError carries a status the caller sees.
	Call(ctx context.Context, from, method string, body []byte) ([]byte, error)
	// Gone is asked when a peer opens a stream for a replication this
	// region does not know: it says whether the destination was promoted
	// (and where), so the source can fence itself.
	Gone(ctx context.Context, from, id string) Gone
	// SourceGone is told when the destination refuses a stream: the
	// replication was deleted there.
	SourceGone(ctx context.Context, id string, g Gone)
}

// KnownHooks are Hooks that also know the replications configured in
// the region whose streams the node cannot take yet: a stream for one is
// answered 503 (the source retries), never Gone.
type KnownHooks interface {
	Hooks
	// Known reports whether the region receives replication id.
	Known(id string) bool
}

// Gone is why a destination refuses a replication's stream.
type Gone struct {
	// Promoted: the destination became a writable primary at Epoch; it
	// holds the source's changes up to RecoverySeq (committed at the
	// source at RecoveryTime). Later changes on the source are its loss.
	Promoted     bool      `json:"promoted"`
	Epoch        uint64    `json:"epoch"`
	RecoverySeq  uint64    `json:"recoverySeq"`
	RecoveryTime time.Time `json:"recoveryTime"`
	// Coordinated: the source took part in the deletion (both ends stay
	// writable); otherwise a promoted destination fences it.
	Coordinated bool   `json:"coordinated"`
	Reason      string `json:"reason"`
	// Empty: the destination was promoted before its initial sync
	// finished; it holds nothing of the source (RecoverySeq 0).
	Empty bool `json:"empty,omitempty"`
	// Abandoned: the destination was being resynced (a failback) and
	// went back to its own state from before the resync; it holds the
	// source's changes only up to RecoverySeq, where the two histories
	// forked (0 when unknown).
	Abandoned bool `json:"abandoned,omitempty"`
}

// Options configure a Node.
type Options struct {
	Region string
	Engine *engine.Engine
	Peers  map[string]Peer
	Hooks  Hooks
	Logger *slog.Logger
	Clock  func() time.Time

	Heartbeat   time.Duration // 100 ms
	PauseAfter  time.Duration // link down this long → PAUSED (5 min)
	RetainAge   time.Duration // local journal retention (15 min)
	ForkRetain  time.Duration // how long a fork point is kept for failback (7 days)
	MaxLagAge   time.Duration // a destination further behind needs a resync (24 h)
	MaxLagBytes int64         // likewise, in journal bytes retained for it (64 GiB)
	ChunkBytes  int           // initial-sync chunk size (1 MiB)
	SyncReaders int           // ranges of a snapshot an initial sync reads at once (GOMAXPROCS, at most 4)
	StreamIdle  time.Duration // a silent stream is dead after this (10 s)
	// Lease enables hard fencing: a source whose destination has not
	// acknowledged anything for Lease stops accepting writes until it
	// hears from it again, and a destination waits Lease plus a margin
	// after its last contact before it lets itself be promoted (unless
	// forced). 0 = soft fencing only.
	Lease time.Duration
	// VerifyInterval: how often a source compares range checksums with
	// its destination at a common seq and repairs what differs (0: only
	// on demand, Verify).
	VerifyInterval time.Duration
	WindowBytes    int64 // bytes in flight per stream before waiting for acks (64 MiB)
	// Registerer, when set, receives the replication metrics.
	Registerer prometheus.Registerer
	// ServerTLS, when set, makes Serve speak TLS (and require client
	// certificates if it says so).
	ServerTLS *tls.Config
	// Progress, when set, keeps each replication's counters and last
	// finished sync across restarts (KVProgress).
	Progress ProgressStore

	// withheld lists stream features (hdrFeatures) this node neither asks
	// for nor announces nor takes: a test's peer of an older version.
	withheld []string
	// maxKept, when set, replaces defaultMaxKept (tests).
	maxKept int
	// storeFormat, when set, is the store format this node says it has
	// (hdrStoreFormat) instead of engine.FormatVersion: a test's peer of
	// an older version; -1 says none.
	storeFormat int
}

// Node is a region's replication endpoint: it ships the journals of its
// source file systems to their destinations and applies what its peers
// ship to its replicas.
type Node struct {
	opts   Options
	log    *slog.Logger
	peers  map[string]Peer
	nonces nonceCache

	clientsMu sync.Mutex // guards clients
	clients   map[string]*http.Client

	progressMu    sync.Mutex          // guards progressSaved
	progressSaved map[string]Progress // role/id → last saved

	// loaded: the hooks have registered every configuration of the region
	// (Loaded). Until then a stream for an unknown replication gets 503,
	// not 410 Gone: the configuration may be about to be loaded, and Gone
	// makes the source forget it for good.
	loaded atomic.Bool

	mu        sync.Mutex // guards the fields below
	outbound  map[string]*outbound
	inbound   map[string]*inbound
	closed    bool
	suspended []OutboundSpec // outbound replications stopped by Suspend

	srvMu  sync.Mutex // guards srv, hooksV, shut and raw
	srv    *serve.HTTP
	hooksV Hooks
	// shut: Shutdown was called (and no Serve since); no stream is
	// upgraded then. raw holds the connections upgraded to streams (taken
	// from the server, Serve's or the one Handler is mounted on: its
	// Shutdown does not see them, Shutdown closes them).
	shut bool
	raw  map[net.Conn]struct{}

	rawClientsMu sync.Mutex // guards rawClients
	// rawClients speak HTTP/1.1 only, for the streams' upgrade requests
	// (clients share HTTP/2 connections for the unary calls).
	rawClients map[string]*http.Client
	// upgrades counts the streams this node opened on upgraded
	// connections, fallbacks those it opened over HTTP/2 because the
	// destination answered the upgrade request as a server without it
	// does.
	upgrades, fallbacks atomic.Uint64

	// callBodies bounds the call bodies held at once: a call's body is
	// read before it can be authenticated (its signature covers it).
	callBodies *semaphore.Weighted

	// promoteHook, when set (tests), is called by a promotion with hard
	// fencing once it has read the source's last contact.
	promoteHook func()

	stop chan struct{}
	wg   sync.WaitGroup
}

// New builds a node; Start begins its background work.
func New(o Options) *Node {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	callBodies := semaphore.NewWeighted(maxCallBodies)
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Heartbeat, DefaultHeartbeat)
	def(&o.PauseAfter, DefaultPauseAfter)
	def(&o.RetainAge, DefaultRetainAge)
	def(&o.ForkRetain, DefaultForkRetain)
	def(&o.MaxLagAge, DefaultMaxLagAge)
	def(&o.StreamIdle, DefaultStreamIdle)
	if o.MaxLagBytes <= 0 {
		o.MaxLagBytes = DefaultMaxLagBytes
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = DefaultChunkBytes
	}
	if o.WindowBytes <= 0 {
		o.WindowBytes = DefaultWindowBytes
	}
	if o.SyncReaders <= 0 {
		o.SyncReaders = min(runtime.GOMAXPROCS(0), 4)
	}
	n := &Node{callBodies: callBodies,
		opts: o, log: o.Logger.With("region", o.Region), peers: o.Peers,
		clients: map[string]*http.Client{}, rawClients: map[string]*http.Client{}, raw: map[net.Conn]struct{}{},
		outbound: map[string]*outbound{}, inbound: map[string]*inbound{},
		stop: make(chan struct{}), progressSaved: map[string]Progress{},
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(newCollector(n))
	}
	return n
}

func (n *Node) now() time.Time { return n.opts.Clock() }

// SetHooks connects the node to its control plane (when the control plane
// is built after the node, as the Manager is).
func (n *Node) SetHooks(h Hooks) {
	n.srvMu.Lock()
	n.hooksV = h
	n.srvMu.Unlock()
}

func (n *Node) hooks() Hooks {
	n.srvMu.Lock()
	defer n.srvMu.Unlock()
	if n.hooksV != nil {
		return n.hooksV
	}
	return n.opts.Hooks
}

// Loaded tells the node that every configuration of the region is
// registered (AddInbound/AddOutbound): from now on a stream for a
// replication it does not know is answered Gone.
func (n *Node) Loaded() { n.loaded.Store(true) }

// Start begins the node's background work: journal retention (truncation)
// for every file system and the saving of replication progress. Close
// stops it (see Lifecycle in the package doc).
func (n *Node) Start() {
	n.wg.Add(2)
	go n.retentionLoop()
	go n.progressLoop()
}

// endsLocked returns the node's replication ends, n.mu held.
func (n *Node) endsLocked() ([]*outbound, []*inbound) {
	return slices.Collect(maps.Values(n.outbound)), slices.Collect(maps.Values(n.inbound))
}

// Close stops every stream and background task and waits for them.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	outs, ins := n.endsLocked()
	n.mu.Unlock()
	close(n.stop)
	for _, o := range outs {
		o.halt()
	}
	for _, in := range ins {
		in.detach()
		in.dropCheckpoint()
	}
	n.wg.Wait()
	for _, o := range outs {
		n.saveProgress(RoleSource, o.spec.ID, o.snapshot, false)
	}
	for _, in := range ins {
		n.saveProgress(RoleDestination, in.spec.ID, in.snapshot, false)
	}
	n.clientsMu.Lock()
	for _, c := range n.clients {
		c.CloseIdleConnections()
	}
	n.clientsMu.Unlock()
	n.rawClientsMu.Lock()
	for _, c := range n.rawClients {
		c.CloseIdleConnections()
	}
	n.rawClientsMu.Unlock()
	return nil
}

// Suspend stops every outbound stream but remembers it, as a regional
// outage would (the caller also stops answering peers, with Shutdown).
// The replications, their pins and the replicas stay; Resume restarts the
// streams (and the caller serves a new listener).
func (n *Node) Suspend() {
	n.mu.Lock()
	var outs []*outbound
	for id, o := range n.outbound {
		outs = append(outs, o)
		n.suspended = append(n.suspended, o.spec)
		delete(n.outbound, id)
	}
	n.mu.Unlock()
	for _, o := range outs {
		o.halt()
		n.saveProgress(RoleSource, o.spec.ID, o.snapshot, false) // Resume restores it
	}
}

// Resume restarts the outbound streams Suspend stopped.
func (n *Node) Resume() error {
	n.mu.Lock()
	specs := n.suspended
	n.suspended = nil
	n.mu.Unlock()
	var errs []error
	for _, s := range specs {
		errs = append(errs, n.AddOutbound(s))
	}
	return errors.Join(errs...)
}

// Serve answers peers on ln (HTTP/2; TLS when Options.ServerTLS is set,
// cleartext HTTP/2 otherwise) until Shutdown, then returns
// serve.ErrServerClosed (package serve's lifecycle). After Shutdown (a
// Suspend), Serve may be called again with a new listener.
func (n *Node) Serve(ctx context.Context, ln net.Listener) error {
	srv := serve.NewHTTP(serve.HTTPOptions{Handler: n.Handler(), TLS: n.opts.ServerTLS, HTTP2: true, Logger: n.log,
		HTTP2Config: &http.HTTP2Config{MaxReceiveBufferPerStream: streamWindow, MaxReceiveBufferPerConnection: connWindow}})
	n.srvMu.Lock()
	n.srv, n.shut = srv, false
	n.srvMu.Unlock()
	return srv.Serve(ctx, ln)
}

// Shutdown stops serving peers: open streams are closed (their sources
// reconnect elsewhere or later), Serve's server is shut down and no stream
// is upgraded any more (a server Handler is mounted on is its owner's to
// shut down).
func (n *Node) Shutdown(ctx context.Context) error {
	n.srvMu.Lock()
	srv := n.srv
	n.shut = true
	n.srvMu.Unlock()
	n.mu.Lock()
	for _, in := range n.inbound {
		in.detach()
	}
	n.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Shutdown(ctx)
	}
	// Upgraded connections are the node's, not the server's: a stream
	// that was being set up while the server shut down is closed here.
	n.srvMu.Lock()
	for c := range n.raw {
		c.Close()
	}
	n.srvMu.Unlock()
	return err
}

// upgradeRequested says whether r asks to switch its connection to a
// stream (upgradeProto): HTTP/1.1 with Connection: Upgrade.
func upgradeRequested(r *http.Request) bool {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		return false
	}
	return hasToken(r.Header.Values("Connection"), "upgrade") && hasToken(r.Header.Values("Upgrade"), upgradeProto)
}

// hasToken says whether a comma-separated header holds token (ASCII case
// ignored).
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// hijackStream answers an upgrade request with 101 and h, and takes its
// connection from the server: until dropRaw, the connection is the
// node's (Shutdown closes it) and is closed when ctx ends.
func (n *Node) hijackStream(ctx context.Context, w http.ResponseWriter, h http.Header) (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	n.srvMu.Lock()
	shut := n.shut
	if !shut {
		n.raw[conn] = struct{}{}
	}
	n.srvMu.Unlock()
	if shut {
		conn.Close()
		return nil, nil, errors.New("replication: endpoint shut down")
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(err error) (net.Conn, *bufio.ReadWriter, error) {
		stop()
		n.dropRaw(conn)
		return nil, nil, err
	}
	// The answer goes out before anything of the stream.
	h.Set("Connection", "Upgrade")
	h.Set("Upgrade", upgradeProto)
	if _, err := brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n"); err != nil {
		return fail(err)
	}
	if err := h.Write(brw); err != nil {
		return fail(err)
	}
	if _, err := brw.WriteString("\r\n"); err != nil {
		return fail(err)
	}
	if err := brw.Flush(); err != nil {
		return fail(err)
	}
	return conn, brw, nil
}

// dropRaw closes an upgraded connection and forgets it.
func (n *Node) dropRaw(c net.Conn) {
	c.Close()
	n.srvMu.Lock()
	delete(n.raw, c)
	n.srvMu.Unlock()
}

// Handler is the replication endpoint: /replication/v1/stream (journal
// streams) and /replication/v1/call/<method> (unary calls). Serve serves
// it; mounted on a server of the caller's instead, it upgrades streams
// there too, until Shutdown (which closes them).
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /replication/v1/stream", n.serveStream)
	mux.HandleFunc("GET /replication/v1/stream", n.serveStream)
	mux.HandleFunc("POST /replication/v1/call/{method}", n.serveCall)
	return mux
}

func (n *Node) client(region string) (*http.Client, Peer, error) {
	return n.peerClient(region, &n.clientsMu, n.clients, false)
}

// rawClient is the HTTP/1.1 client for the upgrade requests of streams
// to region: each stream has a connection of its own (see upgradeProto).
func (n *Node) rawClient(region string) (*http.Client, Peer, error) {
	return n.peerClient(region, &n.rawClientsMu, n.rawClients, true)
}

// peerClient returns region's client in clients (guarded by mu), made on
// first use: HTTP/2 (cleartext without the peer's TLS), or HTTP/1.1 only
// for h1.
func (n *Node) peerClient(region string, mu *sync.Mutex, clients map[string]*http.Client, h1 bool) (*http.Client, Peer, error) {
	peer, ok := n.peers[region]
	if !ok {
		return nil, Peer{}, errorf(ErrUnknownRegion, "Region %q is not one this region replicates with.", region)
	}
	mu.Lock()
	defer mu.Unlock()
	if c, ok := clients[region]; ok {
		return c, peer, nil
	}
	tr := &http.Transport{
		Protocols:           new(http.Protocols),
		DialContext:         (&net.Dialer{Timeout: callTimeout, KeepAlive: 15 * time.Second}).DialContext,
		TLSHandshakeTimeout: callTimeout,
		IdleConnTimeout:     2 * time.Minute,
	}
	if peer.TLS != nil {
		tr.TLSClientConfig = peer.TLS.Clone()
	}
	switch {
	case h1:
		tr.Protocols.SetHTTP1(true)
		if tr.TLSClientConfig != nil {
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
	case peer.TLS != nil:
		tr.Protocols.SetHTTP2(true)
	default:
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	c := &http.Client{Transport: tr}
	clients[region] = c
	return c, peer, nil
}

// HasPeer reports whether region is one this node replicates with (this
// region included).
func (n *Node) HasPeer(region string) bool {
	_, ok := n.peers[region]
	return ok
}

// ErrUnknownRegion: no peer of that name is configured.
var ErrUnknownRegion = errors.New("replication: unknown region")

// ErrUnreachable: a peer region did not answer in time.
var ErrUnreachable = errors.New("replication: region unreachable")

func unreachable(region string, cause error) error {
	return &Error{Kind: ErrUnreachable, Message: fmt.Sprintf("Region %s does not answer.", region), Cause: cause}
}

// CallError is a peer's refusal of a unary call, with the status and
// code the peer's control plane chose; it travels back to the caller
// intact.
type CallError struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *CallError) Error() string { return e.Code + ": " + e.Message }

// Call makes a unary call to a peer region's hooks. Unreachable peers fail
// within about two seconds with ErrUnreachable.
func (n *Node) Call(ctx context.Context, region, method string, req, resp any) error {
	return n.callWithin(ctx, callTimeout, region, method, req, resp)
}

// callWithin is Call with another time limit (calls that do real work on
// the peer, such as a verification's comparison).
func (n *Node) callWithin(ctx context.Context, timeout time.Duration, region, method string, req, resp any) error {
	c, peer, err := n.client(region)
	if err != nil {
		return err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, peer.URL+"/replication/v1/call/"+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	signRequest(hr, peer.Secret, n.opts.Region, n.now(), body)
	res, err := c.Do(hr)
	if err != nil {
		return unreachable(region, err)
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return unreachable(region, err)
	}
	if res.StatusCode != http.StatusOK {
		ce := &CallError{}
		if json.Unmarshal(rb, ce) != nil || ce.Code == "" {
			return fmt.Errorf("replication: %s %s: HTTP %d: %s", region, method, res.StatusCode, bytes.TrimSpace(rb))
		}
		return ce
	}
	if resp == nil {
		return nil
	}
	return json.Unmarshal(rb, resp)
}

// Limits of unary calls.
const (
	maxCallBody      = 16 << 20
	maxCallBodies    = 64 << 20
	callReadDeadline = time.Minute
)

func (n *Node) serveCall(w http.ResponseWriter, r *http.Request) {
	// Streams never time out; a call's body must arrive within a minute,
	// and unauthenticated bodies together stay within maxCallBodies.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(callReadDeadline))
	want := int64(maxCallBody)
	if r.ContentLength >= 0 && r.ContentLength < want {
		want = r.ContentLength
	}
	if want > 0 {
		if err := n.callBodies.Acquire(r.Context(), want); err != nil {
			writeCallError(w, &CallError{Status: http.StatusServiceUnavailable, Code: "Busy", Message: "too many calls in progress"})
			return
		}
		defer n.callBodies.Release(want)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, want))
	if err != nil {
		writeCallError(w, &CallError{Status: http.StatusBadRequest, Code: "BadRequest", Message: "cannot read body"})
		return
	}
	from, _, err := n.verifyRequest(r, body)
	if err != nil {
		n.log.Warn("peer call refused", "err", err, "remote", r.RemoteAddr)
		writeCallError(w, &CallError{Status: http.StatusForbidden, Code: "AccessDenied", Message: "peer authentication failed"})
		return
	}
	if n.hooks() != nil && !n.loaded.Load() {
		// Not knowing a configuration yet is not its absence: a delete
		// answered "not found" now would end the caller's half for good.
		writeCallError(w, &CallError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable",
			Message: "starting: replication configurations not loaded yet"})
		return
	}
	var out []byte
	switch method := r.PathValue("method"); {
	case method == callCanary:
		out, err = n.serveCanary(r.Context(), from, body)
	case verifyCalls[method]:
		out, err = n.serveVerify(r.Context(), from, method, body)
	case n.hooks() == nil:
		writeCallError(w, &CallError{Status: http.StatusNotImplemented, Code: "NotImplemented", Message: "no control plane"})
		return
	default:
		out, err = n.hooks().Call(r.Context(), from, method, body)
	}
	if err != nil {
		var ce *CallError
		if !errors.As(err, &ce) {
			n.log.Error("peer call failed", "from", from, "method", r.PathValue("method"), "err", err)
			ce = &CallError{Status: http.StatusInternalServerError, Code: "InternalServerError", Message: "internal error"}
		}
		writeCallError(w, ce)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

func writeCallError(w http.ResponseWriter, ce *CallError) {
	if ce.Status == 0 {
		ce.Status = http.StatusBadRequest
	}
	b, _ := json.Marshal(ce)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ce.Status)
	w.Write(b)
}

// Outbound lists the statuses of every replication this region ships.
func (n *Node) Outbound() []Status {
	n.mu.Lock()
	outs := make([]*outbound, 0, len(n.outbound))
	for _, o := range n.outbound {
		outs = append(outs, o)
	}
	n.mu.Unlock()
	st := make([]Status, 0, len(outs))
	for _, o := range outs {
		st = append(st, o.status())
	}
	sort.Slice(st, func(i, j int) bool { return st[i].ID < st[j].ID })
	return st
}

// Inbound lists the statuses of every replication this region receives.
func (n *Node) Inbound() []Status {
	n.mu.Lock()
	ins := make([]*inbound, 0, len(n.inbound))
	for _, in := range n.inbound {
		ins = append(ins, in)
	}
	n.mu.Unlock()
	st := make([]Status, 0, len(ins))
	for _, in := range ins {
		st = append(st, in.status())
	}
	sort.Slice(st, func(i, j int) bool { return st[i].ID < st[j].ID })
	return st
}

// retentionLoop truncates every file system's journal below what its
// destinations and syncs still need (their pins) and the local retention
// age.
func (n *Node) retentionLoop() {
	n.every(10*time.Second, func() { n.truncateJournals(context.Background()) })
}

// every calls f every interval until the node closes (one of n.wg).
func (n *Node) every(interval time.Duration, f func()) {
	defer n.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		f()
	}
}

func (n *Node) truncateJournals(ctx context.Context) {
	e := n.opts.Engine
	cutoff := n.now().Add(-n.opts.RetainAge)
	if errors.Is(e.CheckSpace(0), engine.ErrNoSpace) {
		// Below the data disk's floor the local retention gives way:
		// only what destinations, syncs and a failback still need (their
		// pins) is kept. Without it a replica that filled up under churn
		// held RetainAge of journal (181 MiB of Pebble beside 41 MiB of
		// data, chaos22) and stayed full once it caught up.
		cutoff = n.now()
	}
	for _, name := range e.Names() {
		fs, err := e.Replica(name)
		if err != nil {
			continue
		}
		below, err := firstAfter(ctx, fs, cutoff)
		if err != nil {
			continue
		}
		// A fork point kept too long gives way: a failback then compares
		// range checksums instead.
		if fork, ok := fs.Pins()[ForkPin]; ok {
			if recs, err := fs.ReadJournal(ctx, fork, 1, 1); err == nil && len(recs) == 1 && n.now().Sub(recs[0].Time) > n.opts.ForkRetain {
				fs.ClearPin(ForkPin)
			}
		}
		if _, err := fs.Truncate(ctx, below); err != nil && !errors.Is(err, engine.ErrClosed) {
			n.log.Warn("journal truncation", "fs_id", name, "err", err)
		}
	}
}

// firstAfter finds the lowest retained seq whose record is newer than t
// (binary search on seq; record times follow commit order).
func firstAfter(ctx context.Context, fs *engine.Replica, t time.Time) (uint64, error) {
	hi := fs.DurableSeq()
	lo, err := fs.JournalStart()
	if err != nil || lo > hi {
		return lo, err
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		recs, err := fs.ReadJournal(ctx, mid, 1, 1)
		if err != nil {
			return 0, err
		}
		if len(recs) == 0 || recs[0].Time.After(t) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// HTTP/2 flow-control windows of the data a source sends on a stream and
// on its connection. net/http's default is 1 MiB for both: a source could
// have only 1 MiB on its way before the destination's handler read it and
// a window update came back, and an initial sync's pushed blocks waited
// for those round trips most of the time (the destination's frame reader
// waited for data meanwhile). A stream's window holds a blocks frame
// (maxBlocksFrame) and the next one's start; the connection's, two
// streams' worth, so that one stream whose destination is busy storing
// does not stall the others. What a window lets in waits in net/http's
// buffers until the handler reads it: at most connWindow (34 MiB) per
// source connection beyond the stream's framesInFlight frames. (net/http
// documents these as below 4 MiB but takes any int32; TestStreamWindow
// reads what the server announces.)
const (
	streamWindow = 2*maxBlocksFrame + 1<<20
	connWindow   = 2 * streamWindow
)
