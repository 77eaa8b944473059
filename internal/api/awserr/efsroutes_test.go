package awserr

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEFSRoutes(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	e := NewEFSRoutes(next, nil)
	e.Mux.HandleFunc("GET /2015-02-01/x", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	do := func(h http.Handler, method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec
	}
	if rec := do(e, "GET", "/2015-02-01/x"); rec.Code != http.StatusNoContent {
		t.Errorf("a route: status %d, want 204", rec.Code)
	}
	if rec := do(e, "GET", "/2015-02-01/y"); rec.Code != http.StatusTeapot {
		t.Errorf("not a route: status %d, want next's 418", rec.Code)
	}
	e.Next = nil
	rec := do(e, "DELETE", "/2015-02-01/"+strings.Repeat("z", 100))
	if rec.Code != http.StatusNotFound || !strings.HasPrefix(rec.Header().Get("X-Amzn-Errortype"), "UnknownOperation") {
		t.Fatalf("no next: status %d, type %q", rec.Code, rec.Header().Get("X-Amzn-Errortype"))
	}
	if body := rec.Body.String(); !strings.Contains(body, "No EFS operation is DELETE /2015-02-01/zzz") || !strings.Contains(body, "…") || strings.Contains(body, strings.Repeat("z", 60)) {
		t.Errorf("no next: body %s, want the path clipped at 64 characters", body)
	}
}
