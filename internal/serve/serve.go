package serve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// ErrServerClosed is what Serve returns after Shutdown (net/http's own
// sentinel, so that HTTP servers return it as they are).
var ErrServerClosed = http.ErrServerClosed

// Server is the lifecycle every server of regionfs has.
type Server interface {
	// Serve accepts connections on ln until Shutdown and then returns
	// ErrServerClosed. ctx is the parent of every request's context.
	Serve(ctx context.Context, ln net.Listener) error
	// Shutdown stops accepting, waits for work in flight until ctx ends,
	// then closes what remains.
	Shutdown(ctx context.Context) error
}

// Running is a server serving in the background.
type Running struct {
	srv      Server
	ln       net.Listener
	stopping atomic.Bool // Stop was called
	done     chan struct{}
	err      error // Serve's; set before done is closed
}

// Start serves s on ln in a goroutine until Stop.
func Start(ctx context.Context, s Server, ln net.Listener) *Running {
	r := &Running{srv: s, ln: ln, done: make(chan struct{})}
	go func() {
		err := s.Serve(ctx, ln)
		if r.stopping.Load() && errors.Is(err, net.ErrClosed) {
			// Stop closed the listener before Serve got to it.
			err = ErrServerClosed
		}
		r.err = err
		close(r.done)
	}()
	return r
}

// Done is closed when Serve returns: after Stop, or when the listener
// fails (Err says why).
func (r *Running) Done() <-chan struct{} { return r.done }

// Err is Serve's error once Done is closed (ErrServerClosed after Stop).
func (r *Running) Err() error {
	<-r.done
	return r.err
}

// Stop shuts the server down (bounded by ctx) and waits for Serve to
// return. Serve's ErrServerClosed is not an error here; a listener error
// is.
//
// Start's goroutine may not have reached Serve yet when Stop runs, and a
// server that builds its listener loop in Serve (replication.Node makes
// an HTTP server per Serve) has nothing to shut down then: Stop also
// closes the listener it was started with, so that this one pending Serve
// returns at once (ErrServerClosed) instead of serving on. The Server
// itself keeps no trace of it: a later Start serves normally.
func (r *Running) Stop(ctx context.Context) error {
	r.stopping.Store(true)
	err := r.srv.Shutdown(ctx)
	r.ln.Close() // closed by Shutdown already, unless Serve had not begun
	<-r.done
	return errors.Join(err, served(r.err))
}

// served drops the expected end of Serve.
func served(err error) error {
	if errors.Is(err, ErrServerClosed) {
		return nil
	}
	return err
}

// Run serves s on ln until ctx ends (or Serve fails), then shuts it down,
// giving the work in flight up to grace to finish (a server that buffers
// writes makes them durable). It returns the errors of both.
func Run(ctx context.Context, s Server, ln net.Listener, grace time.Duration) error {
	r := Start(ctx, s, ln)
	select {
	case <-r.done:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	return r.Stop(sctx)
}
