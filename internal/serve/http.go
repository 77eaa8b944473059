package serve

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// HTTPOptions configure an HTTP server. Zero durations mean the defaults
// below; a negative one, none.
type HTTPOptions struct {
	Handler http.Handler
	// TLS, when set, makes the server speak TLS.
	TLS *tls.Config
	// HTTP2 serves HTTP/2 as well as HTTP/1.1: over TLS (h2), or in clear
	// text (h2c prior knowledge) without it.
	HTTP2 bool
	// Logger receives the server's own errors (bad handshakes, broken
	// connections) at Debug.
	Logger *slog.Logger
	// ReadHeaderTimeout (10 s), ReadTimeout (none), IdleTimeout (2 min).
	ReadHeaderTimeout, ReadTimeout, IdleTimeout time.Duration
	// MaxHeaderBytes (64 KiB).
	MaxHeaderBytes int
}

// HTTP is an HTTP server with the lifecycle of this package.
type HTTP struct {
	srv *http.Server

	mu sync.Mutex // guards ln
	ln net.Listener
}

var _ Server = (*HTTP)(nil)

// NewHTTP builds a server; it listens only once Serve is called.
func NewHTTP(o HTTPOptions) *HTTP {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d, v time.Duration) time.Duration {
		switch {
		case d < 0:
			return 0
		case d == 0:
			return v
		}
		return d
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	srv := &http.Server{
		Handler:           o.Handler,
		ReadHeaderTimeout: def(o.ReadHeaderTimeout, 10*time.Second),
		ReadTimeout:       def(o.ReadTimeout, -1),
		IdleTimeout:       def(o.IdleTimeout, 2*time.Minute),
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
	}
	if o.TLS != nil {
		srv.TLSConfig = o.TLS.Clone()
	}
	if o.HTTP2 {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		if o.TLS != nil {
			srv.Protocols.SetHTTP2(true)
			srv.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
		} else {
			srv.Protocols.SetUnencryptedHTTP2(true)
		}
	}
	return &HTTP{srv: srv}
}

// Serve accepts on ln (with TLS when configured) until Shutdown, then
// returns ErrServerClosed. ctx is the parent of every request's context.
func (s *HTTP) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.srv.BaseContext = func(net.Listener) context.Context { return ctx }
	if s.srv.TLSConfig != nil {
		return s.srv.ServeTLS(ln, "", "")
	}
	return s.srv.Serve(ln)
}

// Shutdown stops accepting and waits for requests in flight until ctx
// ends; then it closes every connection that remains (long-lived streams
// never go idle) and returns ctx's error.
func (s *HTTP) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	return err
}

// Addr is the address Serve listens on (nil before Serve).
func (s *HTTP) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}
