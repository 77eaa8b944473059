// Package servetest serves a server of package serve's lifecycle on a
// loopback port for the length of a test.
package servetest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/serve"
)

// Listen returns a new listener on a free loopback port.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// Serve serves s on ln until the test ends, then stops it (5 s at most;
// an error of Shutdown or Serve fails the test), and returns ln's URL,
// http://host:port.
func Serve(t testing.TB, s serve.Server, ln net.Listener) string {
	t.Helper()
	run := serve.Start(context.Background(), s, ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := run.Stop(ctx); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// Start is Serve on a new loopback listener.
func Start(t testing.TB, s serve.Server) string {
	t.Helper()
	return Serve(t, s, Listen(t))
}
