package nfs

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/testkit"
)

// served counts the connections v's server serves.
func (v *testEnv) served() int {
	v.srv.mu.Lock()
	defer v.srv.mu.Unlock()
	return len(v.srv.conns)
}

// A connection idle for IdleTimeout is closed, as Linux's nfsd closes its
// idle connections: a client that connects and says nothing, or goes
// silent after a call, does not hold a connection slot for ever.
func TestIdleConnectionClosed(t *testing.T) {
	v := newEnv(t, envOpt{opts: Options{IdleTimeout: 200 * time.Millisecond}})
	silent := v.rawDial(t)
	after := v.rawDial(t)
	after.send(rawCall(1, proto.ProgNFS, proto.VersNFS, proto.ProcNull, client.Unix("t", 0, 0), nil))
	after.reply()
	silent.closed()
	after.closed()
	testkit.WaitFor(t, "the idle connections gone", time.Minute, func() bool { return v.served() == 0 })
	if n := testutil.ToFloat64(v.srv.met.idleClosed); n != 2 {
		t.Fatalf("idle connections closed: %v, want 2", n)
	}
}

// A connection with a request in progress is not idle, however long the
// request takes: here a FILE_SYNC WRITE waits for its durable commit for
// many idle timeouts, the connection is still read meanwhile (another call
// is answered) and the WRITE is answered on it; once answered, the
// connection is idle and closed.
func TestIdleTimeoutSparesRequestInProgress(t *testing.T) {
	const idle = 100 * time.Millisecond
	v := newEnv(t, envOpt{opts: Options{IdleTimeout: idle}})
	c := v.dial()
	fh := v.file(c, "held")
	var (
		held    atomic.Bool
		once    sync.Once
		entered = make(chan struct{})
		release = make(chan struct{})
	)
	v.mem.SetSyncHook(func() {
		if held.Load() {
			once.Do(func() { close(entered) })
			<-release
		}
	})
	held.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(context.Background(), fh, 0, []byte("held for a while"), proto.FileSync)
		done <- err
	}()
	select {
	case <-entered:
	case err := <-done:
		t.Fatalf("the WRITE ended before its commit was held: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the WRITE's commit was not held")
	}
	// Ten idle timeouts with the request in progress: the connection
	// must stay (it is not idle).
	select {
	case err := <-done:
		t.Fatalf("the WRITE ended while its commit was held (its connection closed as idle?): %v", err)
	case <-time.After(10 * idle):
	}
	// The connection is still read: a call sent now is answered while
	// the WRITE waits.
	gctx, gcancel := context.WithTimeout(t.Context(), 30*time.Second) // a hang detector
	defer gcancel()
	if _, err := c.GetAttr(gctx, fh); err != nil {
		t.Fatalf("GETATTR beside the held WRITE, after %v: %v", 10*idle, err)
	}
	held.Store(false)
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the WRITE held past the idle timeout failed: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the WRITE was not answered")
	}
	testkit.WaitFor(t, "the connection closed once idle", time.Minute, func() bool { return v.served() == 0 })
	if n := testutil.ToFloat64(v.srv.met.idleClosed); n != 1 {
		t.Fatalf("idle connections closed: %v, want 1", n)
	}
}

// A session (the mount helper's client) whose connection was closed as
// idle reconnects at its next call, which succeeds.
func TestSessionReconnectsAfterIdleClose(t *testing.T) {
	v := newEnv(t, envOpt{opts: Options{IdleTimeout: 100 * time.Millisecond}})
	var dials atomic.Int32
	sess := client.NewSession(client.SessionOptions{Logger: testLogger(t), Dial: func(ctx context.Context) (client.Dialed, error) {
		dials.Add(1)
		c, err := client.Dial(ctx, v.addr)
		return client.Dialed{Conn: c, Addr: v.addr}, err
	}})
	t.Cleanup(func() { sess.Close() })
	c := sess.Client(client.Unix("t", 0, 0))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a hang detector
	defer cancel()
	root, _, err := c.Mount(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	cr, err := c.Create(ctx, root, "f", proto.Unchecked, proto.Sattr{})
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the idle connection closed", time.Minute, func() bool {
		return testutil.ToFloat64(v.srv.met.idleClosed) == 1 && v.served() == 0
	})
	if _, err := c.Write(ctx, cr.FH, 0, []byte("after the idle close"), proto.FileSync); err != nil {
		t.Fatalf("WRITE after the idle close: %v", err)
	}
	if n := dials.Load(); n != 2 {
		t.Fatalf("dials: %d, want 2 (one reconnection)", n)
	}
}
