package main

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestScrapeHist: the destination series are summed, the difference of two
// scrapes is what happened between them, and a percentile is interpolated
// inside its bucket, whose bounds are reported.
func TestScrapeHist(t *testing.T) {
	body := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	series := func(role string, a, b, c float64) string {
		l := fmt.Sprintf(`fs_id="fs-1",role=%q`, role)
		return fmt.Sprintf("%[1]s_bucket{%[2]s,le=\"0.001\"} %[3]g\n%[1]s_bucket{%[2]s,le=\"0.002\"} %[4]g\n%[1]s_bucket{%[2]s,le=\"+Inf\"} %[5]g\n%[1]s_count{%[2]s} %[5]g\n",
			applyLagMetric, l, a, b, c)
	}
	body = "# TYPE x histogram\n" + series("destination", 10, 10, 10) + series("source", 5, 5, 5)
	before, err := scrapeHist(t.Context(), addr, applyLagMetric, `role="destination"`)
	if err != nil {
		t.Fatal(err)
	}
	body = series("destination", 60, 110, 110) + series("destination", 0, 100, 101) +
		applyLagUnknown + "{fs_id=\"fs-1\",role=\"destination\"} 7\n" + applyLagUnknown + "{fs_id=\"fs-2\",role=\"source\"} 5\n"
	if n, err := scrapeCounter(t.Context(), addr, applyLagUnknown, `role="destination"`); err != nil || n != 7 {
		t.Fatalf("counter: %g, %v; want 7", n, err)
	}
	after, err := scrapeHist(t.Context(), addr, applyLagMetric, `role="destination"`)
	if err != nil {
		t.Fatal(err)
	}
	d := after.minus(before)
	if d.count() != 201 {
		t.Fatalf("count %g, want 201", d.count())
	}
	// 50 at ≤ 1 ms, 150 in (1, 2], 1 above: p50 is in (1, 2].
	v, lo, hi := d.pct(50)
	if lo != 1 || hi != 2 || math.Abs(v-(1+(100.5-50)/150)) > 1e-9 {
		t.Fatalf("p50 %g in (%g, %g]", v, lo, hi)
	}
	if v, lo, hi := d.pct(99.9); v != 2 || lo != 2 || !math.IsInf(hi, 1) {
		t.Fatalf("p99.9 %g in (%g, %g], want the last bound 2 and +Inf", v, lo, hi)
	}
}
