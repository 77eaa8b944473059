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
	// HTTP2Config, when set, tunes HTTP/2 (flow-control windows, frame
	// sizes); nil keeps net/http's defaults.
	HTTP2Config *http.HTTP2Config
	// Logger receives the server's own errors (bad handshakes, broken
	// connections) at Debug.
	Logger *slog.Logger
	// ReadHeaderTimeout (10 s), ReadTimeout (none), IdleTimeout (2 min).
	ReadHeaderTimeout, ReadTimeout, IdleTimeout time.Duration
	// MaxHeaderBytes (64 KiB).
	MaxHeaderBytes int
}

// freshGrace is how long Shutdown lets a connection that has not sent a
// request yet (a client's spare, dialled ahead of need) start one before
// closing it. net/http alone waits 5 s for such a connection, which made
// a server stop take 5 s whenever an SDK had dialled one.
const freshGrace = 200 * time.Millisecond

// HTTP is an HTTP server with the lifecycle of this package.
type HTTP struct {
	srv *http.Server

	mu    sync.Mutex // guards ln and fresh
	ln    net.Listener
	fresh map[net.Conn]struct{} // accepted, no request read yet (StateNew)
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
		srv.HTTP2 = o.HTTP2Config
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		if o.TLS != nil {
			srv.Protocols.SetHTTP2(true)
			srv.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
		} else {
			srv.Protocols.SetUnencryptedHTTP2(true)
		}
	}
	h := &HTTP{srv: srv, fresh: map[net.Conn]struct{}{}}
	srv.ConnState = h.connState
	return h
}

func (s *HTTP) connState(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == http.StateNew {
		s.fresh[c] = struct{}{}
	} else {
		delete(s.fresh, c)
	}
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
// never go idle) and returns ctx's error. A connection that has not begun
// a request within freshGrace of the Shutdown is closed then, as a
// connection still in the listener's queue would be.
func (s *HTTP) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTimer(freshGrace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			s.closeFresh()
		}
	}()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	return err
}

func (s *HTTP) closeFresh() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.fresh {
		c.Close()
		delete(s.fresh, c)
	}
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
