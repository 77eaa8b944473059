package serve

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// WithMetrics answers GET and HEAD /metrics from g (Prometheus's text
// format) and hands every other request to h; with a nil g it is h. It is
// no http.ServeMux on purpose: a mux answers unclean paths
// (/2015-02-01/../x) with a bare redirect, while h answers them in its own
// error shapes.
func WithMetrics(g prometheus.Gatherer, h http.Handler) http.Handler {
	if g == nil {
		return h
	}
	metrics := promhttp.HandlerFor(g, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			metrics.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Registry returns r as the Registerer a server's metrics register with
// and the Gatherer its /metrics serves (WithMetrics): both nil when r is
// nil (a nil *prometheus.Registry in an interface would not be).
func Registry(r *prometheus.Registry) (prometheus.Registerer, prometheus.Gatherer) {
	if r == nil {
		return nil, nil
	}
	return r, r
}
