package cloudwatch

import (
	"log/slog"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/api/region"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/monitor"
	"github.com/regionfs/regionfs/internal/serve/servetest"
	"github.com/regionfs/regionfs/internal/testkit"
)

const (
	akid    = "AKIACLOUDWATCHTEST1"
	secret  = "cloudwatch-test-secret-0123456789"
	account = "123456789012"
)

// TestMain checks for leaked goroutines (the fuzzing engine's signal handler aside).
func TestMain(m *testing.M) { testkit.Main(m, testkit.IgnoreStacks("os/signal.signal_recv")) }

type server struct {
	url string
	m   *monitor.Monitor
}

// start serves CloudWatch of us-east-1 behind a region API server (SigV4
// included) on a loopback port.
func start(t *testing.T) *server {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	m, err := monitor.Open(monitor.Options{KV: kv.NewMemory(), Region: "us-east-1", AccountID: account, Logger: log, Tick: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s, err := region.New(region.Options{
		Name:       "us-east-1",
		Secret:     func(id string) (string, bool) { return secret, id == akid },
		Monitoring: NewHandler(m, log),
		Logger:     log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() }) // after the server stops
	return &server{url: servetest.Start(t, s), m: m}
}
