package region

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
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/api/sigv4"
	"github.com/regionfs/regionfs/internal/serve"
)

// DefaultMaxBodyBytes bounds request bodies (CloudWatch PutMetricData
// allows 1 MB; everything else is far smaller).
const DefaultMaxBodyBytes = 2 << 20

// Options configure a Server.
type Options struct {
	// Name is the region (us-east-1); requests scoped to another region
	// are refused.
	Name string
	// TLS, when set, makes the listener HTTPS.
	TLS *tls.Config
	// Secret returns the secret of an access key id. Required.
	Secret func(accessKeyID string) (string, bool)
	// EFS, EC2, Monitoring and SNS serve their service; a nil handler
	// answers every operation with the protocol's unknown-operation error.
	EFS, EC2, Monitoring, SNS http.Handler
	// CloudFormation and KMS serve their services likewise.
	CloudFormation, KMS http.Handler
	// Unsigned, when set, serves the requests it claims without SigV4
	// verification: SNS's SubscribeURL, UnsubscribeURL and signing
	// certificate, which subscribers fetch as plain GETs (as on AWS).
	Unsigned Unsigned
	// Registry receives the server's metrics and is served on /metrics.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Clock is the verifier's clock (time.Now when nil).
	Clock        func() time.Time
	MaxBodyBytes int64
	// Bodies bounds the request bodies buffered at once (shared with
	// other servers, or nil for one of the default size of its own).
	Bodies *Bodies
}

// Unsigned is a handler of requests that carry no signature by design.
type Unsigned interface {
	http.Handler
	// Claims reports whether r is one of its requests.
	Claims(r *http.Request) bool
}

// Server is the API server of one region.
type Server struct {
	o        Options
	verifier *sigv4.Verifier
	http     *serve.HTTP
	handler  http.Handler
	metrics  *metrics
}

// New returns a Server; it listens only once Serve is called.
func New(o Options) (*Server, error) {
	if o.Name == "" || o.Secret == nil || o.Logger == nil {
		return nil, errors.New("region: Name, Secret and Logger are required")
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Bodies == nil {
		o.Bodies = NewBodies(0)
	}
	s := &Server{o: o}
	s.verifier = sigv4.New(sigv4.Options{
		Secret:   o.Secret,
		Region:   func(r string) bool { return r == o.Name },
		Services: Services,
		Clock:    o.Clock,
	})
	reg, g := serve.Registry(o.Registry)
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	// Every path but /metrics is the API's, which answers in AWS's error
	// shapes.
	s.handler = serve.WithMetrics(g, http.HandlerFunc(s.serveAPI))
	s.http = serve.NewHTTP(serve.HTTPOptions{Handler: s.handler, TLS: o.TLS, ReadTimeout: 60 * time.Second, Logger: o.Logger})
	return s, nil
}

func (s *Server) now() time.Time {
	if s.o.Clock != nil {
		return s.o.Clock()
	}
	return time.Now()
}

// Handler is the server's HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Addr is the address the server listens on once Serve has started (nil
// before).
func (s *Server) Addr() net.Addr { return s.http.Addr() }

// Serve serves on ln until Shutdown, then returns serve.ErrServerClosed
// (package serve's lifecycle). ctx is the parent of every request's
// context.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.o.Logger.Info("api listening", "region", s.o.Name, "addr", ln.Addr().String())
	err := s.http.Serve(ctx, ln)
	if errors.Is(err, serve.ErrServerClosed) {
		return err
	}
	return fmt.Errorf("region %s: serve: %w", s.o.Name, err)
}

// Shutdown stops accepting, waits for in-flight requests until ctx ends,
// then closes the remaining connections.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) serveAPI(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := awserr.NewRequestID()
	w := &statusWriter{ResponseWriter: rw}
	w.Header().Set("X-Amzn-Requestid", reqID)
	// The Date header carries the clock the signature is checked against,
	// so that clients can correct their skew (aws-sdk-go-v2 does).
	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
	service := "unknown"
	defer func() {
		s.metrics.observe(service, w.status, time.Since(start))
	}()

	if s.o.Unsigned != nil && s.o.Unsigned.Claims(r) {
		service = ServiceSNS
		s.o.Unsigned.ServeHTTP(w, r)
		s.o.Logger.Debug("api unsigned request", "req_id", reqID, "path", r.URL.Path, "status", w.status)
		return
	}
	body, release, err := s.o.Bodies.Read(w, r, s.o.MaxBodyBytes)
	defer release()
	if err != nil {
		s.o.Logger.Debug("api request rejected", "region", s.o.Name, "req_id", reqID, "err", err)
		WriteError(w, r, ClaimedService(r), nil, err, reqID, s.o.Logger)
		return
	}
	id, err := s.verifier.Verify(r, body)
	if errors.Is(err, sigv4.ErrUnsupportedService) {
		s.o.Logger.Debug("api request for a service not implemented", "region", s.o.Name, "req_id", reqID, "service", id.Service)
		WriteError(w, r, id.Service, body, err, reqID, s.o.Logger)
		return
	}
	if err != nil {
		if known(id.Service) {
			service = id.Service
		}
		s.metrics.authFailures.WithLabelValues(authReason(err)).Inc()
		s.o.Logger.Debug("api request not authenticated", "region", s.o.Name, "req_id", reqID, "method", r.Method, "path", r.URL.Path, "err", err)
		WriteError(w, r, id.Service, body, err, reqID, s.o.Logger)
		return
	}
	service = id.Service
	r = r.WithContext(sigv4.NewContext(r.Context(), id))
	SetBody(r, body)
	var h http.Handler
	switch id.Service {
	case ServiceEFS:
		h = s.o.EFS
	case ServiceEC2:
		h = s.o.EC2
	case ServiceMonitoring:
		h = s.o.Monitoring
	case ServiceSNS:
		h = s.o.SNS
	case ServiceCloudFormation:
		h = s.o.CloudFormation
	case ServiceKMS:
		h = s.o.KMS
	}
	if h == nil {
		op := awsproto.Operation(awsproto.Detect(id.Service, r, body), r, body)
		if op == "" {
			op = r.Method + " " + r.URL.Path
		}
		WriteError(w, r, id.Service, body, awserr.Errorf(awserr.ErrUnknownOperation, "The action %s is not valid for this web service.", clip(op)), reqID, s.o.Logger)
		return
	}
	h.ServeHTTP(w, r)
	if w.status >= 500 {
		s.o.Logger.Warn("api request failed", "region", s.o.Name, "req_id", reqID, "service", id.Service, "method", r.Method, "path", r.URL.Path, "status", w.status)
	} else {
		s.o.Logger.Debug("api request", "region", s.o.Name, "req_id", reqID, "service", id.Service, "method", r.Method, "path", r.URL.Path, "status", w.status)
	}
}

// DefaultBufferedBodyBytes bounds the request bodies a server holds at
// once (Options.Bodies).
const DefaultBufferedBodyBytes = 64 << 20

// Bodies bounds the request-body bytes buffered at once by the servers
// sharing it: a request waits (until its client gives up) for its share
// before its body is read, so many slow or large requests cannot exhaust
// memory.
type Bodies struct {
	sem   *semaphore.Weighted
	limit int64
}

// NewBodies returns a budget of limit bytes (the default when ≤ 0).
func NewBodies(limit int64) *Bodies {
	if limit <= 0 {
		limit = DefaultBufferedBodyBytes
	}
	return &Bodies{sem: semaphore.NewWeighted(limit), limit: limit}
}

// Read reads r's body within the budget (see ReadBody); release gives the
// bytes back once the body is no longer needed.
func (b *Bodies) Read(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, release func(), err error) {
	n := limit
	if r.ContentLength >= 0 && r.ContentLength < limit {
		n = r.ContentLength
	}
	n = min(n, b.limit)
	if n > 0 {
		if err := b.sem.Acquire(r.Context(), n); err != nil {
			return nil, func() {}, awserr.Errorf(awserr.ErrMalformedRequest, "The request was abandoned while waiting to be read.")
		}
	}
	release = func() {
		if n > 0 {
			b.sem.Release(n)
			n = 0
		}
	}
	body, err = ReadBody(w, r, limit)
	if err != nil {
		// The budget is given back before what is left of a body too
		// large is drained: the drained bytes are not kept, and a drain
		// lasts up to drainTime (held, 32 drains of bodies sent slowly
		// made every other request wait for them).
		release()
		if errors.Is(err, awserr.ErrBodyTooLarge) {
			drainRefused(w, r)
		}
	}
	return body, release, err
}

// ReadBody reads r's body up to limit bytes: a larger body is
// awserr.ErrBodyTooLarge, a broken one awserr.ErrMalformedRequest. The
// caller drains what is left of a body too large (drainRefused) once it
// no longer holds anything for it, so that the client sees the error
// rather than a reset connection.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, awserr.Errorf(awserr.ErrBodyTooLarge, "The request body of %d bytes exceeds the limit of %d bytes.", r.ContentLength, limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, awserr.Errorf(awserr.ErrBodyTooLarge, "The request body exceeds the limit of %d bytes.", limit)
		}
		return nil, awserr.Errorf(awserr.ErrMalformedRequest, "The request body could not be read.")
	}
	return b, nil
}

// A refused body is drained up to drainBytes, for at most drainTime.
const (
	drainBytes = 128 << 20
	drainTime  = 10 * time.Second
)

// drainRefused reads and discards, without buffering, the rest of a body
// that is refused for its size, then marks the connection to be closed
// after the answer. The aws CLI, boto3 and curl without Expect send the
// whole body before they read the answer: a server that answers and
// closes with the body unread resets the connection (unread data in its
// receive buffer), and the client sees "connection reset" or "broken pipe"
// instead of the 413. A client that asked to continue (Expect:
// 100-continue) has sent nothing yet and reads the answer first; a body
// past drainBytes or drainTime is left unread (its client may see a reset).
func drainRefused(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Connection", "close")
	if r.Header.Get("Expect") != "" || r.ProtoMajor != 1 {
		return // HTTP/2 resets only the stream
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(drainTime))
	_, _ = io.CopyN(io.Discard, r.Body, drainBytes)
	_ = rc.SetReadDeadline(time.Time{})
}

// SetBody makes body the request's body again after ReadBody.
func SetBody(r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
}

// ClaimedService is the service of r's credential scope, unverified, when
// it is one served ("" otherwise): the protocol of an error answered
// before r can be verified (its body refused or unreadable).
func ClaimedService(r *http.Request) string {
	if s := sigv4.Claimed(r).Service; known(s) {
		return s
	}
	return ""
}

func known(service string) bool {
	for _, s := range Services {
		if s == service {
			return true
		}
	}
	return false
}

func authReason(err error) string {
	for _, r := range []struct {
		err  error
		name string
	}{
		{sigv4.ErrMissingAuthentication, "missing"}, {sigv4.ErrIncompleteSignature, "incomplete"},
		{sigv4.ErrUnknownAccessKey, "unknown_key"}, {sigv4.ErrExpired, "expired"},
		{sigv4.ErrSignatureMismatch, "signature"}, {sigv4.ErrInvalidRegion, "region"},
	} {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return "other"
}

func clip(s string) string {
	if len(s) > 128 {
		return s[:128] + "…"
	}
	return s
}

type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regionfs_api_requests_total", Help: "API requests by service and HTTP status.",
		}, []string{"service", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "regionfs_api_request_duration_seconds", Help: "API request latency by service.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"service"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regionfs_api_auth_failures_total", Help: "Requests refused by SigV4 verification, by reason.",
		}, []string{"reason"}),
	}
	if reg == nil {
		return m, nil
	}
	// A region restarted in the same process (regionfs dev region
	// stop/start) registers again: keep counting in the first collectors.
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.authFailures, err = register(reg, m.authFailures); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("region: metrics: %w", err)
	}
	return c, nil
}

func (m *metrics) observe(service string, status int, d time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	m.requests.WithLabelValues(service, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(service).Observe(d.Seconds())
}
