package nfs

import (
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regionfs/regionfs/internal/nfs/tlsca/tlscatest"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestRefusalLogBounded: a client that repeats a refused connection as
// fast as it can (here a TLS record that is no ClientHello, 300 times)
// costs the log at most a line a second of that kind, the next one saying
// how many were held back; the metric counts every one. Before, each was a
// line: 2300 lines a second from one black-box client, a log filling the
// disk.
func TestRefusalLogBounded(t *testing.T) {
	const n = 300
	_, cert := tlscatest.Cert(t)
	var logs testkit.Buffer
	v := newEnv(t, envOpt{opts: Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}},
		log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	failed := v.srv.met.tlsHandshakes.WithLabelValues("failed")
	start := time.Now()
	for range n {
		nc, err := net.Dial("tcp", v.addr)
		if err != nil {
			t.Fatal(err)
		}
		// A handshake record whose message is not a ClientHello.
		if _, err := nc.Write([]byte("\x16\x03\x01\x00\x05hello")); err != nil {
			t.Fatal(err)
		}
		nc.Close()
	}
	testkit.WaitFor(t, "every handshake to fail", 30*time.Second, func() bool { return testutil.ToFloat64(failed) >= n })
	elapsed := time.Since(start)
	lines := strings.Count(logs.String(), `msg="nfs tls handshake failed"`)
	// The limiter's bound: the first line, then one per refusalLogEvery.
	if limit := 1 + int(elapsed/refusalLogEvery); lines < 1 || lines > limit {
		t.Fatalf("%d handshake failures in %s logged %d lines, want 1..%d:\n%s", n, elapsed, lines, limit, logs.String())
	}
	t.Logf("%d handshake failures in %s: %d log lines", n, elapsed.Round(time.Millisecond), lines)
}
