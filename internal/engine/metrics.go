package engine

import (
	"context"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus metrics (Options.Registerer). The
// histograms and counters are always kept (observing costs an atomic add);
// per-file-system values are read at scrape time. The data disk's size and
// free space are package space's (regionfs_disk_*).
type metrics struct {
	groupOps   prometheus.Histogram // operations per durable group commit
	commitSecs prometheus.Histogram // a group commit: block syncs + metadata commit with fsync

	gcRuns      prometheus.Counter
	gcDeleted   prometheus.Counter
	gcReclaimed prometheus.Counter

	scrubRuns     prometheus.Counter
	scrubErrors   prometheus.Counter
	scrubBlocks   prometheus.Counter
	scrubCorrupt  prometheus.Counter
	scrubLast     prometheus.Gauge
	scrubDuration prometheus.Gauge
}

func newMetrics() *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	return &metrics{
		groupOps: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "regionfs_engine_commit_group_operations",
			Help:    "Operations per durable group commit (the committer's batch size).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		commitSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "regionfs_engine_commit_seconds",
			Help:    "Time of a durable group commit: fsync of new block files and directories, then the metadata commit with its WAL fsync.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16), // 50 µs … 1.6 s
		}),
		gcRuns:        c("regionfs_engine_gc_runs_total", "Block collection passes."),
		gcDeleted:     c("regionfs_engine_gc_deleted_blocks_total", "Block files deleted by the collector."),
		gcReclaimed:   c("regionfs_engine_gc_reclaimed_bytes_total", "Bytes of block files deleted by the collector (as stored)."),
		scrubRuns:     c("regionfs_engine_scrub_runs_total", "Scrub passes (every stored block read and verified)."),
		scrubErrors:   c("regionfs_engine_scrub_errors_total", "Scrub passes that stopped on an error other than corruption."),
		scrubBlocks:   c("regionfs_engine_scrub_blocks_total", "Blocks read and verified by scrub passes."),
		scrubCorrupt:  c("regionfs_engine_scrub_corrupt_blocks_total", "Corrupt blocks found by scrub passes."),
		scrubLast:     g("regionfs_engine_scrub_last_run_timestamp_seconds", "When the last scrub pass ended (Unix time; 0: none yet)."),
		scrubDuration: g("regionfs_engine_scrub_last_duration_seconds", "How long the last scrub pass took."),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.groupOps, m.commitSecs, m.gcRuns, m.gcDeleted, m.gcReclaimed,
		m.scrubRuns, m.scrubErrors, m.scrubBlocks, m.scrubCorrupt, m.scrubLast, m.scrubDuration}
}

// fsCollector reads each file system's state at scrape time.
type fsCollector struct {
	e *Engine

	bytes, files, commits, records, corrupt    *prometheus.Desc
	jFirst, jLast, jRetained, jOldestAge, pins *prometheus.Desc
	gcBacklog                                  *prometheus.Desc
}

func newFSCollector(e *Engine) *fsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &fsCollector{e: e,
		bytes:      d("regionfs_engine_file_system_bytes", "Bytes of file data a file system holds.", "fs_id"),
		files:      d("regionfs_engine_file_system_files", "Files, directories and other inodes of a file system.", "fs_id"),
		commits:    d("regionfs_engine_commits_total", "Durable group commits of a file system's committer.", "fs_id"),
		records:    d("regionfs_engine_journal_records_total", "Journal records written by a file system.", "fs_id"),
		corrupt:    d("regionfs_engine_block_corrupt_reads_total", "Block reads that failed verification (tampering or damage).", "fs_id"),
		jFirst:     d("regionfs_engine_journal_first_seq", "Oldest journal record a file system retains.", "fs_id"),
		jLast:      d("regionfs_engine_journal_last_seq", "Newest durable journal record of a file system.", "fs_id"),
		jRetained:  d("regionfs_engine_journal_retained_records", "Journal records a file system retains (for destinations, initial syncs and failback).", "fs_id"),
		jOldestAge: d("regionfs_engine_journal_oldest_record_age_seconds", "Age of the oldest retained journal record (0 when none).", "fs_id"),
		pins:       d("regionfs_engine_journal_pins", "Pins holding a file system's journal (replication destinations, syncs, fork points).", "fs_id"),
		gcBacklog:  d("regionfs_engine_gc_backlog_blocks", "Released blocks waiting for the collector (held by pins, readers or writers, or not looked at yet)."),
	}
}

func (c *fsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.bytes, c.files, c.commits, c.records, c.corrupt, c.jFirst, c.jLast,
		c.jRetained, c.jOldestAge, c.pins, c.gcBacklog} {
		ch <- d
	}
}

func (c *fsCollector) Collect(ch chan<- prometheus.Metric) {
	e := c.e
	e.mu.Lock()
	fss := make([]*FS, 0, len(e.fss))
	for _, fs := range e.fss {
		fss = append(fss, fs)
	}
	backlog := 0.0
	for _, d := range e.domains {
		backlog += float64(d.gcBacklog.Load())
	}
	e.mu.Unlock()
	sort.Slice(fss, func(i, j int) bool { return fss[i].name < fss[j].name })
	ch <- prometheus.MustNewConstMetric(c.gcBacklog, prometheus.GaugeValue, backlog)
	now := e.clock()
	for _, fs := range fss {
		name := fs.name
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
		}
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), name)
		}
		st := fs.Stats()
		counter(c.commits, st.Commits)
		counter(c.records, st.Records)
		counter(c.corrupt, st.Blocks.CorruptReads)
		if u, err := fs.Usage(); err == nil {
			gauge(c.bytes, float64(u.Bytes))
			gauge(c.files, float64(u.Files))
		}
		gauge(c.pins, float64(len(fs.Replica().Pins())))
		first, err := fs.Replica().JournalStart()
		if err != nil {
			continue
		}
		last := st.DurableSeq
		retained, age := 0.0, 0.0
		if last >= first {
			retained = float64(last - first + 1)
			if recs, err := fs.Replica().ReadJournal(context.Background(), first, 1, 1<<30); err == nil && len(recs) == 1 {
				age = max(now.Sub(recs[0].Time).Seconds(), 0)
			}
		}
		gauge(c.jFirst, float64(first))
		gauge(c.jLast, float64(last))
		gauge(c.jRetained, retained)
		gauge(c.jOldestAge, age)
	}
}

// observeCommit records a durable group commit.
func (m *metrics) observeCommit(ops int, d time.Duration) {
	m.groupOps.Observe(float64(ops))
	m.commitSecs.Observe(d.Seconds())
}

// observeScrub records a scrub pass.
func (m *metrics) observeScrub(rep ScrubReport, err error, start, end time.Time) {
	m.scrubRuns.Inc()
	m.scrubBlocks.Add(float64(rep.Blocks))
	m.scrubCorrupt.Add(float64(len(rep.Corrupt)))
	if err != nil {
		m.scrubErrors.Inc()
	}
	m.scrubLast.Set(float64(end.UnixNano()) / 1e9)
	m.scrubDuration.Set(end.Sub(start).Seconds())
}

func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
