package serve

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestWithMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "serve_test_total", Help: "a test counter"})
	reg.MustRegister(c)
	c.Add(3)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte("next " + r.Method + " " + r.URL.Path))
	})
	for _, tc := range []struct {
		g            prometheus.Gatherer
		method, path string
		status       int
		body         string
	}{
		{reg, http.MethodGet, "/metrics", http.StatusOK, "serve_test_total 3"},
		{reg, http.MethodHead, "/metrics", http.StatusOK, ""},
		{reg, http.MethodPost, "/metrics", http.StatusTeapot, "next POST /metrics"},
		{reg, http.MethodGet, "/metrics/x", http.StatusTeapot, "next GET /metrics/x"},
		{reg, http.MethodGet, "/2015-02-01/../metrics", http.StatusTeapot, "next GET /2015-02-01/../metrics"},
		{nil, http.MethodGet, "/metrics", http.StatusTeapot, "next GET /metrics"},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(tc.method, "http://x"+tc.path, nil)
		r.URL.Path = tc.path // unclean as sent, as a server sees it
		WithMetrics(tc.g, next).ServeHTTP(w, r)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("%v %s %s: %d %q, want %d with %q", tc.g != nil, tc.method, tc.path, w.Code, w.Body.String(), tc.status, tc.body)
		}
	}
}

// TestRegistry: no registry serves no /metrics (WithMetrics passes every
// request on), which a nil *prometheus.Registry in the Gatherer would not.
func TestRegistry(t *testing.T) {
	if reg, g := Registry(nil); reg != nil || g != nil {
		t.Fatalf("Registry(nil) = %v, %v", reg, g)
	}
	r := prometheus.NewRegistry()
	if reg, g := Registry(r); reg != r || g != r {
		t.Fatalf("Registry(r) = %v, %v", reg, g)
	}
}
