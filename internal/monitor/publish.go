package monitor

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Namespaces regionfs publishes.
const (
	NamespaceEFS         = "AWS/EFS"
	NamespaceReplication = "regionfs/Replication"
)

// FileSystemSample is what the publisher needs of a file system.
type FileSystemSample struct {
	ID string
	// SizeBytes is the metered size (StorageClass Total); StandardBytes
	// the part in the Standard class (all of it here).
	SizeBytes, StandardBytes uint64
	ThroughputMode           string // bursting, provisioned or elastic
	ProvisionedMibps         float64
}

// ReplicationSample is one end's view of a replication, as the region
// that holds it sees it now.
type ReplicationSample struct {
	SourceFileSystemID      string
	DestinationFileSystemID string
	// Source is true at the source end.
	Source bool
	// LastReplicated is the source time up to which the replica holds
	// everything (zero during the initial sync: no lag yet).
	LastReplicated time.Time
	PendingRecords uint64
	PendingBytes   uint64
	ShippedBytes   uint64 // a counter (source end)
	LinkUp         bool
}

// Sources is what the publisher samples: the region's file systems and
// replications.
type Sources interface {
	FileSystems(ctx context.Context) []FileSystemSample
	Replications(ctx context.Context) []ReplicationSample
}

// PublisherOptions configure a Publisher.
type PublisherOptions struct {
	Monitor *Monitor
	Sources Sources
	// Gatherer gives the NFS counters (regionfs_nfs_operations_total,
	// regionfs_nfs_data_bytes_total, regionfs_nfs_connections, by fs_id).
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
	// SampleEvery is how often replication lag is sampled (default
	// 250 ms); every second's samples make one high-resolution datapoint.
	SampleEvery time.Duration
	// MinuteEvery is how often the standard-resolution file system
	// metrics are published (default one minute).
	MinuteEvery time.Duration
	// IOPSLimit is what PercentIOLimit is relative to (default 35,000
	// operations per second, EFS General Purpose).
	IOPSLimit float64
}

// Publisher publishes the AWS/EFS metrics of a region's file systems and
// replications, and regionfs's replication metrics, into its monitor:
// TimeSinceLastSync and the replication metrics every second (high
// resolution), the file system metrics every minute.
type Publisher struct {
	o      PublisherOptions
	paused atomic.Bool
	// noSpace: the last write was refused for lack of space (logged
	// once, not every second).
	noSpace atomic.Bool

	mu      sync.Mutex // guards the fields below
	second  int64
	pairs   map[pairKey]*pairBuf
	worst   map[string][]float64 // source fs → lags (worst destination)
	lastMin time.Time
	nfs     map[string]nfsCounters // by fs id

	stop chan struct{}
	wg   sync.WaitGroup
}

type pairKey struct{ src, dst string }

type pairBuf struct {
	lags         []float64
	pending      uint64
	pendingBytes uint64
	shipped      uint64 // counter at the last sample
	shippedStart uint64 // counter at the second's first sample
	source       bool
	linkUp       bool
}

type nfsCounters struct {
	readOps, writeOps, metaOps  float64
	readBytes, writeBytes, conn float64
}

// StartPublisher starts publishing.
func StartPublisher(o PublisherOptions) *Publisher {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = 250 * time.Millisecond
	}
	if o.MinuteEvery <= 0 {
		o.MinuteEvery = time.Minute
	}
	if o.IOPSLimit <= 0 {
		o.IOPSLimit = 35000
	}
	p := &Publisher{o: o, pairs: map[pairKey]*pairBuf{}, worst: map[string][]float64{}, nfs: map[string]nfsCounters{}, stop: make(chan struct{})}
	p.wg.Add(1)
	go p.loop()
	return p
}

// Close stops publishing.
func (p *Publisher) Close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.wg.Wait()
}

// Pause stops (true) or resumes (false) publishing, as a region down on
// demand does.
func (p *Publisher) Pause(paused bool) { p.paused.Store(paused) }

func (p *Publisher) loop() {
	defer p.wg.Done()
	t := time.NewTicker(p.o.SampleEvery)
	defer t.Stop()
	minute := time.NewTicker(p.o.MinuteEvery)
	defer minute.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-p.stop
		cancel()
	}()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			if !p.paused.Load() {
				p.sample(ctx, p.o.Monitor.Now())
			}
		case <-minute.C:
			if !p.paused.Load() {
				p.minute(ctx, p.o.Monitor.Now())
			}
		}
	}
}

// sample takes one sample of every replication; the samples of a second
// are published when the next second begins.
func (p *Publisher) sample(ctx context.Context, now time.Time) {
	samples := p.o.Sources.Replications(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if sec := now.Unix(); sec != p.second {
		p.flushLocked()
		p.second = sec
	}
	// One sample per pair: the source end's when this region has both.
	best := map[pairKey]ReplicationSample{}
	for _, s := range samples {
		k := pairKey{s.SourceFileSystemID, s.DestinationFileSystemID}
		if cur, ok := best[k]; !ok || (s.Source && !cur.Source) {
			best[k] = s
		}
	}
	worst := map[string]float64{}
	for k, s := range best {
		b := p.pairs[k]
		if b == nil {
			b = &pairBuf{shippedStart: s.ShippedBytes}
			p.pairs[k] = b
		}
		if len(b.lags) == 0 && b.shipped != 0 {
			b.shippedStart = b.shipped
		}
		b.pending, b.pendingBytes, b.shipped, b.source, b.linkUp = s.PendingRecords, s.PendingBytes, s.ShippedBytes, s.Source, s.LinkUp
		if s.ShippedBytes < b.shippedStart { // a restarted counter
			b.shippedStart = 0
		}
		if s.LastReplicated.IsZero() {
			continue // initial sync: no lag to publish yet
		}
		lag := math.Max(0, now.Sub(s.LastReplicated).Seconds())
		b.lags = append(b.lags, lag)
		if w, ok := worst[k.src]; !ok || lag > w {
			worst[k.src] = lag
		}
	}
	for src, w := range worst {
		p.worst[src] = append(p.worst[src], w)
	}
}

// flushLocked publishes the finished second's samples.
func (p *Publisher) flushLocked() {
	if p.second == 0 {
		return
	}
	ts := time.Unix(p.second, 0)
	var data []Datum
	seconds := func(m Metric, vals []float64) {
		data = append(data, Datum{Metric: m, Timestamp: ts, Unit: "Seconds", Resolution: 1, Values: append([]float64(nil), vals...)})
	}
	gauge := func(m Metric, unit string, v float64) {
		data = append(data, Datum{Metric: m, Timestamp: ts, Unit: unit, Resolution: 1, Value: &v})
	}
	for k, b := range p.pairs {
		dims := []Dimension{{"FileSystemId", k.src}, {"DestinationFileSystemId", k.dst}}
		if len(b.lags) > 0 {
			seconds(Metric{Namespace: NamespaceEFS, Name: "TimeSinceLastSync", Dimensions: dims}, b.lags)
			seconds(Metric{Namespace: NamespaceReplication, Name: "ReplicationLag", Dimensions: dims}, b.lags)
		}
		gauge(Metric{Namespace: NamespaceReplication, Name: "PendingRecords", Dimensions: dims}, "Count", float64(b.pending))
		gauge(Metric{Namespace: NamespaceReplication, Name: "PendingBytes", Dimensions: dims}, "Bytes", float64(b.pendingBytes))
		up := 0.0
		if b.linkUp {
			up = 1
		}
		gauge(Metric{Namespace: NamespaceReplication, Name: "LinkUp", Dimensions: dims}, "None", up)
		if b.source {
			gauge(Metric{Namespace: NamespaceReplication, Name: "ShippedBytes", Dimensions: dims}, "Bytes", float64(b.shipped-b.shippedStart))
		}
		b.lags = b.lags[:0]
		b.shippedStart = b.shipped
	}
	for src, lags := range p.worst {
		seconds(Metric{Namespace: NamespaceEFS, Name: "TimeSinceLastSync", Dimensions: []Dimension{{"FileSystemId", src}}}, lags)
	}
	p.worst = map[string][]float64{}
	// Forget pairs that were not sampled this second (deleted).
	if len(data) > 0 {
		p.record("replication", data)
	}
}

// record stores what metrics data (replication, file system) in the
// monitor. A full data disk is logged when it starts refusing them and
// when they are stored again.
func (p *Publisher) record(what string, data []Datum) {
	err := p.o.Monitor.Record(data)
	switch {
	case errors.Is(err, ErrNoSpace):
		if !p.noSpace.Swap(true) {
			p.o.Logger.Warn("data disk full: metric data is not stored until there is room", "err", err)
		}
	case err != nil:
		p.o.Logger.Warn("publish "+what+" metrics", "err", err)
	default:
		if p.noSpace.Swap(false) {
			p.o.Logger.Info("metric data is stored again")
		}
	}
}

// Flush publishes the samples of the current second now (tests, shutdown).
func (p *Publisher) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flushLocked()
	p.second = 0
}

// minute publishes the file system metrics of the last minute.
func (p *Publisher) minute(ctx context.Context, now time.Time) {
	fss := p.o.Sources.FileSystems(ctx)
	cur := p.gatherNFS()
	p.mu.Lock()
	prev, last := p.nfs, p.lastMin
	p.nfs, p.lastMin = cur, now
	p.mu.Unlock()
	elapsed := now.Sub(last).Seconds()
	if last.IsZero() || elapsed <= 0 {
		elapsed = p.o.MinuteEvery.Seconds()
	}
	ts := now.Truncate(time.Minute)
	var data []Datum
	put := func(name, unit string, dims []Dimension, v float64) {
		v = math.Max(0, v)
		data = append(data, Datum{Metric: Metric{Namespace: NamespaceEFS, Name: name, Dimensions: dims}, Timestamp: ts, Unit: unit, Resolution: 60, Value: &v})
	}
	io := func(name string, dims []Dimension, ops, bytes float64) {
		if ops <= 0 {
			put(name, "Bytes", dims, bytes)
			return
		}
		avg := bytes / ops
		data = append(data, Datum{Metric: Metric{Namespace: NamespaceEFS, Name: name, Dimensions: dims}, Timestamp: ts, Unit: "Bytes", Resolution: 60,
			Stats: &StatisticSet{SampleCount: ops, Sum: bytes, Minimum: avg, Maximum: avg}})
	}
	for _, fs := range fss {
		dims := []Dimension{{"FileSystemId", fs.ID}}
		put("StorageBytes", "Bytes", []Dimension{{"FileSystemId", fs.ID}, {"StorageClass", "Total"}}, float64(fs.SizeBytes))
		put("StorageBytes", "Bytes", []Dimension{{"FileSystemId", fs.ID}, {"StorageClass", "Standard"}}, float64(fs.StandardBytes))
		d := delta(cur[fs.ID], prev[fs.ID])
		put("ClientConnections", "Count", dims, cur[fs.ID].conn)
		// Metadata operations are metered as 4 KiB each (as on EFS).
		meta := d.metaOps * 4096
		io("DataReadIOBytes", dims, d.readOps, d.readBytes)
		io("DataWriteIOBytes", dims, d.writeOps, d.writeBytes)
		io("MetadataIOBytes", dims, d.metaOps, meta)
		io("TotalIOBytes", dims, d.readOps+d.writeOps+d.metaOps, d.readBytes+d.writeBytes+meta)
		// Reads are metered at a third of the rate of other operations.
		io("MeteredIOBytes", dims, d.readOps+d.writeOps+d.metaOps, d.readBytes/3+d.writeBytes+meta)
		put("PercentIOLimit", "Percent", dims, math.Min(100, (d.readOps+d.writeOps+d.metaOps)/elapsed/p.o.IOPSLimit*100))
		put("PermittedThroughput", "Bytes/Second", dims, permitted(fs))
	}
	if len(data) > 0 {
		p.record("file system", data)
	}
}

// permitted is the throughput a file system may use: its provisioned
// throughput, elastic's 3 GiB/s, or bursting's baseline of 50 MiB/s per
// TiB stored with a floor of 100 MiB/s (the burst of small file systems).
func permitted(fs FileSystemSample) float64 {
	switch fs.ThroughputMode {
	case "provisioned":
		return fs.ProvisionedMibps * (1 << 20)
	case "elastic":
		return 3 << 30
	}
	return math.Max(100<<20, float64(fs.SizeBytes)/(1<<40)*50*(1<<20))
}

func delta(cur, prev nfsCounters) nfsCounters {
	d := func(c, p float64) float64 {
		if c < p { // a counter restarted (mount target restarted)
			return c
		}
		return c - p
	}
	return nfsCounters{readOps: d(cur.readOps, prev.readOps), writeOps: d(cur.writeOps, prev.writeOps), metaOps: d(cur.metaOps, prev.metaOps),
		readBytes: d(cur.readBytes, prev.readBytes), writeBytes: d(cur.writeBytes, prev.writeBytes)}
}

// gatherNFS sums the NFS counters of every mount target by file system.
func (p *Publisher) gatherNFS() map[string]nfsCounters {
	out := map[string]nfsCounters{}
	if p.o.Gatherer == nil {
		return out
	}
	mfs, err := p.o.Gatherer.Gather()
	if err != nil {
		p.o.Logger.Debug("gather nfs metrics", "err", err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			lbl := labels(m)
			fs := lbl["fs_id"]
			if fs == "" {
				continue
			}
			c := out[fs]
			switch mf.GetName() {
			case "regionfs_nfs_operations_total":
				if lbl["program"] != "nfs" {
					continue
				}
				v := m.GetCounter().GetValue()
				switch lbl["procedure"] {
				case "READ":
					c.readOps += v
				case "WRITE":
					c.writeOps += v
				case "NULL":
				default:
					c.metaOps += v
				}
			case "regionfs_nfs_data_bytes_total":
				if lbl["direction"] == "read" {
					c.readBytes += m.GetCounter().GetValue()
				} else {
					c.writeBytes += m.GetCounter().GetValue()
				}
			case "regionfs_nfs_connections":
				c.conn += m.GetGauge().GetValue()
			default:
				continue
			}
			out[fs] = c
		}
	}
	return out
}

func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}
