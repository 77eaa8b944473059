package nfs

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// metrics are the server's Prometheus collectors. Without a Registerer
// they are created but not registered (updates cost the same and go
// nowhere), so the hot path has no branches.
type metrics struct {
	ops      *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	conns    prometheus.Gauge
	unstable prometheus.Gauge
	drcHits  prometheus.Counter
	flushErr prometheus.Counter
	// tlsHandshakes counts TLS handshakes by result ("ok", "failed").
	tlsHandshakes *prometheus.CounterVec
	// verifierResets counts write verifier changes after lost write-backs.
	verifierResets prometheus.Counter
	// recordTimeouts counts connections closed for an incomplete record,
	// idleClosed those closed after IdleTimeout without traffic.
	recordTimeouts prometheus.Counter
	idleClosed     prometheus.Counter
	// acceptErrors counts failed accepts (e.g. out of file descriptors);
	// connsShed counts connections closed at the connection limit, by
	// which (idle, the longest idle one; new, the new one).
	acceptErrors prometheus.Counter
	connsShed    *prometheus.CounterVec
	shedIdle     prometheus.Counter
	shedNew      prometheus.Counter
	// dataBytes counts file data read and written (CloudWatch's
	// DataReadIOBytes and DataWriteIOBytes, package monitor).
	dataBytes             *prometheus.CounterVec
	dataRead, dataWritten prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regionfs_nfs_operations_total",
			Help: "NFS, MOUNT and portmapper procedures served, by program, procedure and status.",
		}, []string{"program", "procedure", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "regionfs_nfs_operation_duration_seconds",
			Help:    "Time to serve a procedure, from reading its record to queueing its reply.",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2.5, 12),
		}, []string{"program", "procedure"}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "regionfs_nfs_connections",
			Help: "Open client connections.",
		}),
		unstable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "regionfs_nfs_unstable_bytes",
			Help: "UNSTABLE write data buffered in memory, not yet durable.",
		}),
		drcHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "regionfs_nfs_duplicate_requests_total",
			Help: "Retransmitted non-idempotent calls answered from the duplicate request cache.",
		}),
		flushErr: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "regionfs_nfs_unstable_flush_errors_total",
			Help: "Failed background writes of UNSTABLE data (reported to the client at COMMIT).",
		}),
		tlsHandshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regionfs_nfs_tls_handshakes_total",
			Help: "TLS handshakes on NFS connections (RFC 9289 probe or direct), by result.",
		}, []string{"result"}),
		verifierResets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "regionfs_nfs_write_verifier_changes_total",
			Help: "Changes of the write verifier after buffered UNSTABLE data could not be written (clients resend uncommitted data).",
		}),
	}
	m.recordTimeouts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "regionfs_nfs_incomplete_records_total",
		Help: "Connections closed because a request record did not arrive whole in time (or stalled while others waited for memory).",
	})
	m.idleClosed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "regionfs_nfs_idle_connections_closed_total",
		Help: "Connections closed because they were idle (no request read or answered, none in progress) for nfs.idle_timeout.",
	})
	m.acceptErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "regionfs_nfs_accept_errors_total",
		Help: "Failed accepts of client connections (e.g. the process out of file descriptors); the server retries.",
	})
	m.connsShed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "regionfs_nfs_connections_shed_total",
		Help: "Connections closed at the connection limit: the one idle longest to make room (idle), or the new one when none was idle (new).",
	}, []string{"which"})
	m.shedIdle, m.shedNew = m.connsShed.WithLabelValues("idle"), m.connsShed.WithLabelValues("new")
	m.dataBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "regionfs_nfs_data_bytes_total",
		Help: "File data bytes served by READ and accepted by WRITE, by direction (read, write).",
	}, []string{"direction"})
	m.dataRead, m.dataWritten = m.dataBytes.WithLabelValues("read"), m.dataBytes.WithLabelValues("write")
	if reg != nil {
		reg.MustRegister(m.ops, m.latency, m.conns, m.unstable, m.drcHits, m.flushErr, m.tlsHandshakes, m.verifierResets, m.recordTimeouts, m.idleClosed, m.acceptErrors, m.connsShed, m.dataBytes)
	}
	return m
}

func progName(prog uint32) string {
	switch prog {
	case proto.ProgNFS:
		return "nfs"
	case proto.ProgMount:
		return "mount"
	case proto.ProgPortmap:
		return "portmap"
	case proto.ProgRegionFS:
		return "regionfs"
	}
	return strconv.FormatUint(uint64(prog), 10)
}

func (m *metrics) observe(prog uint32, proc, status string, d time.Duration) {
	pn := progName(prog)
	m.ops.WithLabelValues(pn, proc, status).Inc()
	m.latency.WithLabelValues(pn, proc).Observe(d.Seconds())
}

// watchBudgets exports the use of the server's byte budgets.
func (m *metrics) watchBudgets(reg prometheus.Registerer, requests, replies *Budget) {
	if reg == nil {
		return
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "regionfs_nfs_request_buffer_bytes",
			Help: "Request bytes read or being read into memory, of the request budget (which the servers sharing it all report).",
		}, func() float64 { return float64(requests.Used()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "regionfs_nfs_reply_buffer_bytes",
			Help: "Reply bytes reserved for requests not yet answered on the socket, of the reply budget (which the servers sharing it all report).",
		}, func() float64 { return float64(replies.Used()) }),
	)
}
