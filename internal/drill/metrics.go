package drill

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the drills' Prometheus metrics.
type metrics struct {
	runs    *prometheus.CounterVec
	rpo     *prometheus.GaugeVec
	rto     *prometheus.GaugeVec
	failed  *prometheus.GaugeVec
	last    *prometheus.GaugeVec
	running prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regionfs_drill_runs_total",
			Help: "Drills finished, by result (succeeded, failed)."}, []string{"result"}),
		rpo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regionfs_drill_rpo_seconds",
			Help: "RPO measured by the last drill of a replica (canary from source to replica)."}, []string{"fs_id"}),
		rto: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regionfs_drill_rto_seconds",
			Help: "RTO measured by the last drill of a replica (start to the first NFS write on its clone)."}, []string{"fs_id"}),
		failed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regionfs_drill_failed",
			Help: "1 when the last drill of a replica failed, 0 when it succeeded."}, []string{"fs_id"}),
		last: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regionfs_drill_last_timestamp_seconds",
			Help: "When the last drill of a replica ended (Unix time)."}, []string{"fs_id"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{Name: "regionfs_drills_running",
			Help: "Drills in progress."}),
	}
	m.runs.WithLabelValues("succeeded")
	m.runs.WithLabelValues("failed")
	if reg != nil {
		for _, c := range []prometheus.Collector{m.runs, m.rpo, m.rto, m.failed, m.last, m.running} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// finished records a finished drill (count: it just finished, rather than
// being loaded from the history).
func (m *metrics) finished(d *Drill, count bool) {
	fs := d.FileSystemID
	if count {
		result := "succeeded"
		if d.State == StateFailed {
			result = "failed"
		}
		m.runs.WithLabelValues(result).Inc()
	}
	if d.RPOSeconds != nil {
		m.rpo.WithLabelValues(fs).Set(*d.RPOSeconds)
	}
	if d.RTOSeconds != nil {
		m.rto.WithLabelValues(fs).Set(*d.RTOSeconds)
	}
	failed := 0.0
	if d.State == StateFailed {
		failed = 1
	}
	m.failed.WithLabelValues(fs).Set(failed)
	m.last.WithLabelValues(fs).Set(float64(d.EndTime.UnixNano()) / 1e9)
}
