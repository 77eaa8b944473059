package sns

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/regionfs/regionfs/internal/api/region"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/monitor/notify"
	"github.com/regionfs/regionfs/internal/serve/servetest"
	"github.com/regionfs/regionfs/internal/testkit"
)

const (
	akid   = "AKIASNSAPITEST00001"
	secret = "sns-api-test-secret-0123456789"
)

// TestMain checks for leaked goroutines (the fuzzing engine's signal handler aside).
func TestMain(m *testing.M) { testkit.Main(m, testkit.IgnoreStacks("os/signal.signal_recv")) }

type server struct {
	url string
	s   *notify.Service
}

// start serves SNS of us-east-1 behind a region API server on a loopback
// port; its public URL is the server itself (SubscribeURL, certificate).
func start(t *testing.T) *server {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	ln := servetest.Listen(t)
	url := "http://" + ln.Addr().String()
	ns, err := notify.Open(notify.Options{KV: kv.NewMemory(), Region: "us-east-1", AccountID: "123456789012", PublicURL: url, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(ns, log)
	s, err := region.New(region.Options{Name: "us-east-1", Secret: func(id string) (string, bool) { return secret, id == akid },
		SNS: h, Unsigned: h.Public(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() }) // after the server stops
	servetest.Serve(t, s, ln)
	return &server{url: url, s: ns}
}

// subscriber confirms by fetching the SubscribeURL and keeps the rest.
type subscriber struct {
	mu   sync.Mutex
	msgs []map[string]string
	srv  *httptest.Server
}

func newSubscriber(t *testing.T) *subscriber {
	s := &subscriber{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]string
		json.Unmarshal(b, &m)
		if m["Type"] == "SubscriptionConfirmation" {
			resp, err := http.Get(m["SubscribeURL"])
			if err == nil {
				resp.Body.Close()
			}
		}
		s.mu.Lock()
		s.msgs = append(s.msgs, m)
		s.mu.Unlock()
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *subscriber) count(typ string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.msgs {
		if m["Type"] == typ {
			n++
		}
	}
	return n
}
