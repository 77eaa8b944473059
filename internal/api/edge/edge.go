package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/region"
	"github.com/regionfs/regionfs/internal/api/sigv4"
	"github.com/regionfs/regionfs/internal/serve"
)

// DefaultDialTimeout bounds connecting to a region, so that a region that
// is down is reported well within a second.
const DefaultDialTimeout = 500 * time.Millisecond

// Target is how the edge reaches one region's API listener.
type Target struct {
	// Addr is host:port.
	Addr string
	// TLS, when set, makes the edge connect with TLS.
	TLS *tls.Config
}

// Options configure an Edge.
type Options struct {
	// TLS, when set, makes the client endpoint HTTPS.
	TLS *tls.Config
	// Secret returns the secret of an access key id. Required.
	Secret func(accessKeyID string) (string, bool)
	// Regions maps region names to their API listeners.
	Regions map[string]Target
	// Registry receives the edge's metrics and is served on /metrics.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	Clock    func() time.Time
	// DialTimeout defaults to DefaultDialTimeout; ResponseTimeout (how long
	// a region may take to start answering) to 2 minutes.
	DialTimeout, ResponseTimeout time.Duration
	MaxBodyBytes                 int64
}

// Edge forwards signed requests to their region.
type Edge struct {
	o        Options
	verifier *sigv4.Verifier
	clients  map[string]*http.Client
	http     *serve.HTTP
	handler  http.Handler
	metrics  *metrics
	bodies   *region.Bodies
}

// New returns an Edge; it listens only once Serve is called.
func New(o Options) (*Edge, error) {
	if o.Secret == nil || o.Logger == nil || len(o.Regions) == 0 {
		return nil, errors.New("edge: Secret, Logger and Regions are required")
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.ResponseTimeout <= 0 {
		o.ResponseTimeout = 2 * time.Minute
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = region.DefaultMaxBodyBytes
	}
	e := &Edge{o: o, clients: map[string]*http.Client{}, bodies: region.NewBodies(0)}
	for name, t := range o.Regions {
		if _, _, err := net.SplitHostPort(t.Addr); err != nil {
			return nil, fmt.Errorf("edge: region %s: address %q: %w", name, t.Addr, err)
		}
		e.clients[name] = &http.Client{
			Transport: &http.Transport{
				DialContext:           countedDial(&net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}),
				TLSClientConfig:       t.TLS,
				TLSHandshakeTimeout:   o.DialTimeout,
				ResponseHeaderTimeout: o.ResponseTimeout,
				DisableCompression:    true, // forward Accept-Encoding as sent, never add it
				MaxIdleConnsPerHost:   32,
				IdleConnTimeout:       90 * time.Second,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	e.verifier = sigv4.New(sigv4.Options{
		Secret:   o.Secret,
		Region:   func(r string) bool { _, ok := o.Regions[r]; return ok },
		Services: region.Services,
		Clock:    o.Clock,
	})
	reg, g := serve.Registry(o.Registry)
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	e.metrics = m
	// Every path but /metrics is forwarded (the region answers in AWS's
	// error shapes).
	e.handler = serve.WithMetrics(g, http.HandlerFunc(e.forward))
	// A body must arrive within ReadTimeout (a request held open by a
	// client that stops sending holds its buffer until then).
	e.http = serve.NewHTTP(serve.HTTPOptions{Handler: e.handler, TLS: o.TLS, ReadTimeout: 60 * time.Second, Logger: o.Logger})
	return e, nil
}

// Handler is the edge's HTTP handler.
func (e *Edge) Handler() http.Handler { return e.handler }

// Addr is the listening address once Serve has started.
func (e *Edge) Addr() net.Addr { return e.http.Addr() }

// Serve serves on ln until Shutdown, then returns serve.ErrServerClosed
// (package serve's lifecycle).
func (e *Edge) Serve(ctx context.Context, ln net.Listener) error {
	e.o.Logger.Info("edge listening", "addr", ln.Addr().String())
	err := e.http.Serve(ctx, ln)
	if errors.Is(err, serve.ErrServerClosed) {
		return err
	}
	return fmt.Errorf("edge: serve: %w", err)
}

// Shutdown stops accepting and waits for forwarded requests until ctx ends.
func (e *Edge) Shutdown(ctx context.Context) error {
	err := e.http.Shutdown(ctx)
	for _, c := range e.clients {
		c.CloseIdleConnections()
	}
	return err
}

// hopHeaders are not forwarded (RFC 9110 §7.6.1).
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func (e *Edge) forward(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := awserr.NewRequestID()
	now := time.Now
	if e.o.Clock != nil {
		now = e.o.Clock
	}
	body, release, err := e.bodies.Read(w, r, e.o.MaxBodyBytes)
	defer release()
	if err != nil {
		w.Header().Set("Date", now().UTC().Format(http.TimeFormat))
		region.WriteError(w, r, region.ClaimedService(r), nil, err, reqID, e.o.Logger)
		return
	}
	id, err := e.verifier.Verify(r, body)
	if err != nil {
		if !errors.Is(err, sigv4.ErrUnsupportedService) {
			e.metrics.refused.Inc()
		}
		e.o.Logger.Debug("edge request refused", "req_id", reqID, "region", id.Region, "service", id.Service, "err", err)
		w.Header().Set("Date", now().UTC().Format(http.TimeFormat))
		region.WriteError(w, r, id.Service, body, err, reqID, e.o.Logger)
		return
	}
	target := e.o.Regions[id.Region]
	scheme := "http"
	if target.TLS != nil {
		scheme = "https"
	}
	u := &url.URL{Scheme: scheme, Host: target.Addr, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		region.WriteError(w, r, id.Service, body, err, reqID, e.o.Logger)
		return
	}
	out.URL = u // keep the escaped path exactly as received
	out.Host = r.Host
	out.Header = r.Header.Clone()
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""} // add none
	}
	out.ContentLength = int64(len(body))
	if len(body) == 0 {
		out.Body = http.NoBody
		out.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
	}
	resp, err := e.do(id.Region, out)
	if err != nil {
		e.metrics.unavailable.WithLabelValues(id.Region).Inc()
		e.o.Logger.Warn("region unavailable", "req_id", reqID, "region", id.Region, "addr", target.Addr, "err", err)
		kind := awserr.ErrRegionUnavailable
		if r.Context().Err() != nil {
			kind = r.Context().Err()
		}
		w.Header().Set("Date", now().UTC().Format(http.TimeFormat))
		region.WriteError(w, r, id.Service, body,
			awserr.Errorf(kind, "Region %s is unavailable: its API endpoint does not answer.", id.Region), reqID, e.o.Logger)
		return
	}
	defer resp.Body.Close()
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		e.o.Logger.Debug("edge response copy", "req_id", reqID, "region", id.Region, "err", err)
	}
	e.metrics.forwarded.WithLabelValues(id.Region, strconv.Itoa(resp.StatusCode)).Inc()
	e.metrics.duration.WithLabelValues(id.Region).Observe(time.Since(start).Seconds())
}

// countedDial dials with d and counts what is written on the connection.
func countedDial(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countedConn{Conn: c}, nil
	}
}

// do sends out to its region. A request is sent again only when that is
// safe: when nothing of it was written. net/http re-sends such a request
// by itself on a new connection when the write failed, but not, unless its
// method is idempotent, when the region's close of an idle pooled
// connection (a restart, an idle timeout) was seen before the write began;
// do sends that one again. A request of which bytes were written and whose
// answer did not come fails, whatever its method (net/http re-sends it only
// when it is idempotent: GET, HEAD, OPTIONS, an Idempotency-Key header), and
// the caller gets 503, which AWS SDKs retry with their own idempotency
// tokens: the region may have run it before the connection died, and a
// second run would be a second file system, subscription or alarm action
// (RFC 9110 §9.2.2).
func (e *Edge) do(regionName string, out *http.Request) (*http.Response, error) {
	var (
		conn    *countedConn
		reused  bool
		written int64
	)
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		reused, conn = i.Reused, asCounted(i.Conn)
		if conn != nil {
			written = conn.written.Load()
		}
	}}
	resp, err := e.clients[regionName].Do(out.WithContext(httptrace.WithClientTrace(out.Context(), trace)))
	if err == nil || !reused || conn == nil || conn.written.Load() != written || out.Context().Err() != nil {
		return resp, err
	}
	body, gerr := out.GetBody()
	if gerr != nil {
		return nil, err
	}
	retry := out.Clone(out.Context())
	retry.Body = body
	return e.clients[regionName].Do(retry)
}

// countedConn is a connection to a region that counts the bytes written
// to it, so that do can tell a request of which nothing was sent.
type countedConn struct {
	net.Conn
	written atomic.Int64
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// asCounted returns the countedConn under c (a TLS connection's too), or nil.
func asCounted(c net.Conn) *countedConn {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	cc, _ := c.(*countedConn)
	return cc
}

type metrics struct {
	forwarded   *prometheus.CounterVec
	unavailable *prometheus.CounterVec
	refused     prometheus.Counter
	duration    *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regionfs_edge_forwarded_total", Help: "Requests forwarded, by region and the region's HTTP status.",
		}, []string{"region", "status"}),
		unavailable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regionfs_edge_region_unavailable_total", Help: "Requests answered 503 because their region did not answer.",
		}, []string{"region"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "regionfs_edge_refused_total", Help: "Requests refused by SigV4 verification at the edge.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "regionfs_edge_request_duration_seconds", Help: "Latency of forwarded requests by region.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"region"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.forwarded, m.unavailable, m.refused, m.duration} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("edge: metrics: %w", err)
			}
		}
	}
	return m, nil
}
