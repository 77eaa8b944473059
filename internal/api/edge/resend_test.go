package edge

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionfs/regionfs/internal/serve/servetest"
)

// rawRegion stands in for a region's API listener on raw HTTP/1.1
// connections, so that a test can drop a connection exactly where it
// wants: after executing a request, or while it is idle.
type rawRegion struct {
	ln net.Listener
	wg sync.WaitGroup

	mu       sync.Mutex     // guards the fields below
	executed map[string]int // request body → times the region ran it
	conns    map[net.Conn]bool
	// dropExecuted makes the region run a POST that is not the first
	// request on its connection and then close that connection without
	// answering (a region killed, or restarted, mid-request).
	dropExecuted bool
	dropped      int
}

func startRawRegion(t *testing.T) *rawRegion {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &rawRegion{ln: ln, executed: map[string]int{}, conns: map[net.Conn]bool{}}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns[c] = true
			r.mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		r.resetIdle()
		r.wg.Wait()
	})
	return r
}

func (r *rawRegion) serve(c net.Conn) {
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
		c.Close()
	}()
	br := bufio.NewReader(c)
	for n := 1; ; n++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		r.mu.Lock()
		r.executed[string(body)]++
		drop := r.dropExecuted && n > 1 && req.Method == http.MethodPost
		if drop {
			r.dropped++
		}
		r.mu.Unlock()
		if drop {
			return
		}
		const answer = `{"FileSystemId":"fs-0123456789abcdef0","OwnerId":"123456789012","CreationToken":"t","LifeCycleState":"creating","NumberOfMountTargets":0,"SizeInBytes":{"Value":0},"PerformanceMode":"generalPurpose","Tags":[]}`
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(answer), answer); err != nil {
			return
		}
	}
}

// resetIdle resets every open connection (SO_LINGER 0): the edge's kernel
// has the reset before resetIdle returns, so nothing the edge sends on
// such a connection afterwards can reach the region.
func (r *rawRegion) resetIdle() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
}

func (r *rawRegion) counts(body string) (executed, dropped int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.executed[body], r.dropped
}

// edgeTo starts an edge whose one region, us-east-1, is r.
func edgeTo(t *testing.T, r *rawRegion) *efs.Client {
	t.Helper()
	e, err := New(Options{
		Secret:   secretOf,
		Regions:  map[string]Target{"us-east-1": {Addr: r.ln.Addr().String()}},
		Registry: prometheus.NewRegistry(),
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return client(servetest.Start(t, e), "us-east-1")
}

// createBody is the body the SDK sends for CreateFileSystem with token.
func createBody(token string) string { return `{"CreationToken":"` + token + `"}` }

// TestExecutedPostNotResent: a region that ran a POST and lost the
// connection before answering (killed, restarted) must not get it again
// from the edge (RFC 9110 §9.2.2: only idempotent requests are retried
// automatically). The edge re-sent it on a new connection: a second file
// system, a second alarm action, a second subscription.
func TestExecutedPostNotResent(t *testing.T) {
	r := startRawRegion(t)
	c := edgeTo(t, r)
	r.mu.Lock()
	r.dropExecuted = true
	r.mu.Unlock()
	for i := 0; ; i++ {
		// A pooled connection first, so that the POST is its second request
		// (unless the edge's transport has not put it back in the pool yet:
		// then the POST is answered normally, and the test tries again).
		if _, err := c.DescribeFileSystems(t.Context(), &efs.DescribeFileSystemsInput{}); err != nil {
			t.Fatal(err)
		}
		token := fmt.Sprintf("tok-%d", i)
		_, err := c.CreateFileSystem(t.Context(), &efs.CreateFileSystemInput{CreationToken: aws.String(token)})
		executed, dropped := r.counts(createBody(token))
		if executed != 1 {
			t.Fatalf("CreateFileSystem %s ran %d times in the region (err %v), want once", token, executed, err)
		}
		if dropped == 0 {
			if i == 20 {
				t.Fatal("no POST in 20 went out on a pooled connection")
			}
			continue
		}
		wantAPIError(t, err, "ServiceUnavailableException", "Region us-east-1 is unavailable")
		return
	}
}

// TestUnsentRequestResent: a request the edge could not send at all,
// because the region had closed the pooled connection just before (an idle
// timeout, a restart), is sent again on a new connection, POSTs included:
// it reaches the region exactly once, and the caller sees no error.
func TestUnsentRequestResent(t *testing.T) {
	r := startRawRegion(t)
	c := edgeTo(t, r)
	for i := range 50 {
		if _, err := c.DescribeFileSystems(t.Context(), &efs.DescribeFileSystemsInput{}); err != nil {
			t.Fatal(err)
		}
		r.resetIdle()
		token := fmt.Sprintf("tok-%d", i)
		_, err := c.CreateFileSystem(t.Context(), &efs.CreateFileSystemInput{CreationToken: aws.String(token)})
		executed, _ := r.counts(createBody(token))
		if err != nil || executed != 1 {
			t.Fatalf("CreateFileSystem %s after the region reset the idle connection: ran %d times, err %v; want once, no error", token, executed, err)
		}
	}
}

// roundTripFunc is an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestResendOnlyWhatWasNotWritten: do's own decision, on the case net/http
// leaves to it: a request that failed on a pooled connection is sent again
// when no byte of it reached that connection (net/http saw the region's
// close of the idle connection before it began to write, and returns its
// error for a POST), and not when some did.
func TestResendOnlyWhatWasNotWritten(t *testing.T) {
	for _, tc := range []struct {
		name    string
		written int // bytes the failed attempt wrote
		want    int // attempts
	}{{"nothing written", 0, 2}, {"written", 100, 1}} {
		e, err := New(Options{Secret: secretOf, Regions: map[string]Target{"r": {Addr: "127.0.0.1:1"}}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		attempts := 0
		e.clients["r"] = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			attempts++
			if attempts > 1 {
				return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
			}
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			c := &countedConn{Conn: a}
			if trace := httptrace.ContextClientTrace(r.Context()); trace != nil && trace.GotConn != nil {
				trace.GotConn(httptrace.GotConnInfo{Conn: c, Reused: true})
			}
			c.written.Add(int64(tc.written))
			return nil, errors.New("http: server closed idle connection")
		})}
		out, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/", strings.NewReader("Action=CreateTopic&Name=t"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.do("r", out)
		if resp != nil {
			resp.Body.Close()
		}
		if attempts != tc.want || (tc.want == 2) != (err == nil) {
			t.Errorf("%s: %d attempts, err %v; want %d", tc.name, attempts, err, tc.want)
		}
	}
}
