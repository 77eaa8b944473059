package nfs

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// emfileListener fails every accept as a process out of file descriptors
// does. When more than a few accepts come at one instant (Serve retrying
// without waiting), it blocks the caller until closed and notes it, so
// that the test's clock can move on.
type emfileListener struct {
	calls  atomic.Int64
	spun   atomic.Bool
	mu     sync.Mutex
	at     time.Time
	atOnce int
	closed chan struct{}
	once   sync.Once
}

func (l *emfileListener) Accept() (net.Conn, error) {
	l.calls.Add(1)
	l.mu.Lock()
	if now := time.Now(); now.Equal(l.at) {
		l.atOnce++
	} else {
		l.at, l.atOnce = now, 1
	}
	spinning := l.atOnce > 3
	l.mu.Unlock()
	if spinning {
		l.spun.Store(true)
		<-l.closed
	}
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

func (l *emfileListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *emfileListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// TestAcceptErrorsAfterCancelWait: failed accepts are retried after a
// growing wait also once Serve's context is canceled (its connections
// closed, Serve itself running until Shutdown). The wait selected on that
// context too, so from then on each failed accept was retried at once: a
// loop taking a core for as long as the accepts failed.
func TestAcceptErrorsAfterCancelWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewServer(Options{Logger: testLogger(t)})
		ln := &emfileListener{closed: make(chan struct{})}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx, ln) }()
		time.Sleep(10 * time.Second)
		if ln.spun.Load() {
			t.Errorf("failed accepts retried without waiting after the context ended (%d accepts)", ln.calls.Load())
		}
		if n := ln.calls.Load(); n > 20 {
			t.Errorf("%d accepts in 10 s, want a growing wait between them", n)
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve: %v, want ErrServerClosed", err)
		}
	})
}
