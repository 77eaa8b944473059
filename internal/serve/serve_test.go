package serve

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

type ctxKey struct{}

func TestHTTPLifecycle(t *testing.T) {
	h := NewHTTP(HTTPOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Context().Value(ctxKey{}).(string)+" "+r.Proto)
	})})
	if h.Addr() != nil {
		t.Fatal("an address before Serve")
	}
	ln := listen(t)
	ctx := context.WithValue(context.Background(), ctxKey{}, "base")
	done := make(chan error, 1)
	go func() { done <- h.Serve(ctx, ln) }()
	testkit.WaitFor(t, "Addr", 5*time.Second, func() bool { return h.Addr() != nil })
	resp, err := http.Get("http://" + h.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "base HTTP/1.1" {
		t.Fatalf("body %q: the request context does not come from Serve's", b)
	}
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v after Shutdown", err)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestHTTP2Cleartext(t *testing.T) {
	h := NewHTTP(HTTPOptions{HTTP2: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	})})
	run := Start(context.Background(), h, listen(t))
	defer run.Stop(context.Background())
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	testkit.WaitFor(t, "Addr", 5*time.Second, func() bool { return h.Addr() != nil })
	resp, err := (&http.Client{Transport: tr}).Get("http://" + h.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "HTTP/2.0" {
		t.Fatalf("protocol %q", b)
	}
}

// A request that never ends (a replication stream) does not hold Stop past
// its context: the connection is closed.
func TestStopClosesStuckRequests(t *testing.T) {
	started := make(chan struct{})
	h := NewHTTP(HTTPOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done()
	})})
	run := Start(context.Background(), h, listen(t))
	testkit.WaitFor(t, "Addr", 5*time.Second, func() bool { return h.Addr() != nil })
	resp, err := http.Get("http://" + h.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := run.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want the deadline", err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("the stuck request's connection stayed open")
	}
}

func TestStartReportsListenerFailure(t *testing.T) {
	ln := listen(t)
	ln.Close()
	run := Start(context.Background(), NewHTTP(HTTPOptions{}), ln)
	select {
	case <-run.Done():
		if err := run.Err(); err == nil || errors.Is(err, ErrServerClosed) || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("Serve on a closed listener: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve on a closed listener did not return")
	}
	if err := run.Stop(context.Background()); err == nil {
		t.Fatal("Stop after a listener failure reported nothing")
	}
}

func TestRunUntilCanceled(t *testing.T) {
	h := NewHTTP(HTTPOptions{Handler: http.NotFoundHandler()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, h, listen(t), time.Second) }()
	testkit.WaitFor(t, "Addr", 5*time.Second, func() bool { return h.Addr() != nil })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after its context ended: %v", err)
	}
	if _, err := http.Get("http://" + h.Addr().String() + "/"); err == nil {
		t.Fatal("still serving after Run returned")
	}
}

// perServe builds a new HTTP server in each Serve, as replication.Node
// does; its Serve waits for gate first (a goroutine that has not got
// there yet), and Shutdown reaches only a server that exists.
type perServe struct {
	gate     chan struct{}
	shutdown chan struct{} // closed by the first Shutdown

	mu   sync.Mutex // guards the fields below
	cur  *HTTP
	shut bool
}

func (p *perServe) Serve(ctx context.Context, ln net.Listener) error {
	<-p.gate
	h := NewHTTP(HTTPOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })})
	p.mu.Lock()
	p.cur = h
	p.mu.Unlock()
	return h.Serve(ctx, ln)
}

func (p *perServe) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	h := p.cur
	p.cur = nil
	if !p.shut {
		p.shut = true
		close(p.shutdown)
	}
	p.mu.Unlock()
	if h == nil {
		return nil
	}
	return h.Shutdown(ctx)
}

// A Stop that comes before Start's goroutine reached Serve makes that
// Serve return at once (it served on, and Stop waited for it forever);
// the server keeps no trace of it: the next Start serves.
func TestStopBeforeServe(t *testing.T) {
	p := &perServe{gate: make(chan struct{}), shutdown: make(chan struct{})}
	run := Start(context.Background(), p, listen(t))
	stopped := make(chan error, 1)
	go func() { stopped <- run.Stop(context.Background()) }()
	<-p.shutdown
	close(p.gate) // Serve begins only now
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Stop waits for a Serve that began after the Shutdown")
	}
	if err := run.Err(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after an early Stop returned %v", err)
	}

	ln := listen(t)
	run = Start(context.Background(), p, ln)
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatalf("the next Start does not serve: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
	if err := run.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
}

// A client's spare connection, dialled but never used, does not hold a
// Shutdown up: net/http alone waits 5 s for it (CI saw an edge's Stop
// exceed its 5 s this way after a cancelled SDK call left one behind).
func TestShutdownClosesUnusedConnections(t *testing.T) {
	h := NewHTTP(HTTPOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	r := Start(context.Background(), h, listen(t))
	testkit.WaitFor(t, "Addr", 5*time.Second, func() bool { return h.Addr() != nil })
	c, err := net.Dial("tcp", h.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testkit.WaitFor(t, "the connection accepted", 5*time.Second, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.fresh) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("Stop with an unused connection open: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the unused connection is still open")
	}
}
