package monitor

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeSources is a region with two file systems and what the test says
// about their replications.
type fakeSources struct {
	mu   sync.Mutex
	reps []ReplicationSample
}

func (f *fakeSources) FileSystems(context.Context) []FileSystemSample {
	return []FileSystemSample{
		{ID: "fs-1", SizeBytes: 10 << 30, StandardBytes: 10 << 30, ThroughputMode: "bursting"},
		{ID: "fs-2", SizeBytes: 4 << 40, StandardBytes: 4 << 40, ThroughputMode: "bursting"},
		{ID: "fs-3", ThroughputMode: "provisioned", ProvisionedMibps: 256},
		{ID: "fs-4", ThroughputMode: "elastic"},
	}
}

func (f *fakeSources) Replications(context.Context) []ReplicationSample {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ReplicationSample(nil), f.reps...)
}

func (f *fakeSources) set(r ...ReplicationSample) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reps = r
}

// nfsMetrics are the mount targets' NFS metrics as package nfs registers
// them (through a registerer that adds mount_target and fs_id).
type nfsMetrics struct {
	ops   *prometheus.CounterVec
	bytes *prometheus.CounterVec
	conns *prometheus.GaugeVec
}

func newNFSMetrics(reg *prometheus.Registry) nfsMetrics {
	m := nfsMetrics{
		ops:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regionfs_nfs_operations_total"}, []string{"program", "procedure", "status", "fs_id", "mount_target"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regionfs_nfs_data_bytes_total"}, []string{"direction", "fs_id", "mount_target"}),
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regionfs_nfs_connections"}, []string{"fs_id", "mount_target"}),
	}
	reg.MustRegister(m.ops, m.bytes, m.conns)
	return m
}

func (f *fixture) stat(t *testing.T, ns, name string, dims []Dimension, at time.Time, period int64, stat string) (float64, bool) {
	t.Helper()
	dps, err := f.m.GetMetricStatistics(context.Background(), StatisticsQuery{Metric: Metric{Namespace: ns, Name: name, Dimensions: dims},
		Start: at, End: at.Add(time.Duration(period) * time.Second), Period: period, Statistics: []string{stat}})
	if err != nil {
		t.Fatalf("%s %v: %v", name, dims, err)
	}
	if len(dps) == 0 {
		return 0, false
	}
	if len(dps) != 1 {
		t.Fatalf("%s %v: %d datapoints", name, dims, len(dps))
	}
	return dps[0].Values[stat], true
}

// TestPublisherFileSystemMetrics: every minute, the AWS/EFS metrics of
// each file system from its size, throughput mode and the NFS counters of
// its mount targets over that minute.
func TestPublisherFileSystemMetrics(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	nfs := newNFSMetrics(reg)
	p := StartPublisher(PublisherOptions{Monitor: f.m, Sources: &fakeSources{}, Gatherer: reg, SampleEvery: time.Hour, MinuteEvery: time.Hour})
	defer p.Close()

	// Before the first minute: counters from earlier (not this minute's).
	nfs.ops.WithLabelValues("nfs", "READ", "ok", "fs-1", "mt-a").Add(1000)
	nfs.bytes.WithLabelValues("read", "fs-1", "mt-a").Add(1 << 20)
	f.clock.Advance(30 * time.Second)
	p.minute(ctx, f.m.Now())

	// The minute: 30 reads of 100 bytes over two mount targets, 10
	// writes of 1000, 20 metadata operations, MOUNT and NULL calls (not
	// metered), two open connections.
	nfs.ops.WithLabelValues("nfs", "READ", "ok", "fs-1", "mt-a").Add(20)
	nfs.ops.WithLabelValues("nfs", "READ", "ok", "fs-1", "mt-b").Add(10)
	nfs.bytes.WithLabelValues("read", "fs-1", "mt-a").Add(2000)
	nfs.bytes.WithLabelValues("read", "fs-1", "mt-b").Add(1000)
	nfs.ops.WithLabelValues("nfs", "WRITE", "ok", "fs-1", "mt-a").Add(10)
	nfs.bytes.WithLabelValues("write", "fs-1", "mt-a").Add(10000)
	nfs.ops.WithLabelValues("nfs", "GETATTR", "ok", "fs-1", "mt-a").Add(15)
	nfs.ops.WithLabelValues("nfs", "LOOKUP", "ok", "fs-1", "mt-b").Add(5)
	nfs.ops.WithLabelValues("nfs", "NULL", "ok", "fs-1", "mt-a").Add(7)
	nfs.ops.WithLabelValues("mount", "MNT", "ok", "fs-1", "mt-a").Add(3)
	nfs.conns.WithLabelValues("fs-1", "mt-a").Set(1)
	nfs.conns.WithLabelValues("fs-1", "mt-b").Set(1)
	f.clock.Advance(time.Minute)
	p.minute(ctx, f.m.Now())
	f.clock.Advance(time.Minute)

	minute := t0.Add(time.Minute) // the second call's minute
	fs1 := []Dimension{{"FileSystemId", "fs-1"}}
	const meta = 20 * 4096
	for _, c := range []struct {
		name      string
		dims      []Dimension
		stat      string
		want      float64
		tolerance float64
	}{
		{"DataReadIOBytes", fs1, Sum, 3000, 0},
		{"DataReadIOBytes", fs1, SampleCount, 30, 0},
		{"DataWriteIOBytes", fs1, Sum, 10000, 0},
		{"DataWriteIOBytes", fs1, SampleCount, 10, 0},
		{"MetadataIOBytes", fs1, Sum, meta, 0},
		{"MetadataIOBytes", fs1, SampleCount, 20, 0},
		{"TotalIOBytes", fs1, Sum, 3000 + 10000 + meta, 0},
		{"TotalIOBytes", fs1, SampleCount, 60, 0},
		{"MeteredIOBytes", fs1, Sum, 1000 + 10000 + meta, 0},
		{"ClientConnections", fs1, Maximum, 2, 0},
		{"PercentIOLimit", fs1, Maximum, 60.0 / 60 / 35000 * 100, 1e-9},
		{"StorageBytes", []Dimension{{"FileSystemId", "fs-1"}, {"StorageClass", "Total"}}, Maximum, 10 << 30, 0},
		{"StorageBytes", []Dimension{{"FileSystemId", "fs-1"}, {"StorageClass", "Standard"}}, Maximum, 10 << 30, 0},
		// Bursting: 50 MiB/s per TiB, at least 100 MiB/s.
		{"PermittedThroughput", fs1, Maximum, 100 << 20, 0},
		{"PermittedThroughput", []Dimension{{"FileSystemId", "fs-2"}}, Maximum, 200 << 20, 0},
		{"PermittedThroughput", []Dimension{{"FileSystemId", "fs-3"}}, Maximum, 256 << 20, 0},
		{"PermittedThroughput", []Dimension{{"FileSystemId", "fs-4"}}, Maximum, 3 << 30, 0},
		// A file system without mount targets did no I/O.
		{"TotalIOBytes", []Dimension{{"FileSystemId", "fs-2"}}, Sum, 0, 0},
		{"ClientConnections", []Dimension{{"FileSystemId", "fs-2"}}, Maximum, 0, 0},
	} {
		got, ok := f.stat(t, NamespaceEFS, c.name, c.dims, minute, 60, c.stat)
		if !ok || math.Abs(got-c.want) > c.tolerance {
			t.Errorf("%s %v %s = %v (%v), want %v", c.name, c.dims, c.stat, got, ok, c.want)
		}
	}
	// The first minute counts the counters' whole history (they start
	// with the region, as the publisher does).
	if got, ok := f.stat(t, NamespaceEFS, "DataReadIOBytes", fs1, t0, 60, Sum); !ok || got != 1<<20 {
		t.Errorf("first minute's DataReadIOBytes = %v (%v)", got, ok)
	}
	// A mount target that restarts starts its counters again: the
	// minute counts what the new counters say, never a negative value.
	nfs.ops.Reset()
	nfs.bytes.Reset()
	nfs.ops.WithLabelValues("nfs", "READ", "ok", "fs-1", "mt-a").Add(4)
	nfs.bytes.WithLabelValues("read", "fs-1", "mt-a").Add(400)
	p.minute(ctx, f.m.Now()) // at 12:02:30
	f.clock.Advance(time.Minute)
	if got, ok := f.stat(t, NamespaceEFS, "DataReadIOBytes", fs1, t0.Add(2*time.Minute), 60, Sum); !ok || got != 400 {
		t.Errorf("DataReadIOBytes after a counter reset = %v (%v)", got, ok)
	}
}

// TestPublisherReplicationMetrics: every second, TimeSinceLastSync per
// destination (both dimensions) and for the source alone (the worst
// destination), regionfs's replication metrics, nothing during an
// initial sync, and the lag growing while nothing replicates.
func TestPublisherReplicationMetrics(t *testing.T) {
	f := newFixture(t)
	src := &fakeSources{}
	p := StartPublisher(PublisherOptions{Monitor: f.m, Sources: src, SampleEvery: time.Hour, MinuteEvery: time.Hour})
	defer p.Close()
	ctx := context.Background()
	start := t0.Add(-time.Minute)
	synced := t0.Add(-3 * time.Second)
	src.set(
		ReplicationSample{SourceFileSystemID: "fs-1", DestinationFileSystemID: "fs-9", Source: true, LastReplicated: synced,
			PendingRecords: 5, PendingBytes: 500, ShippedBytes: 1000, LinkUp: true},
		ReplicationSample{SourceFileSystemID: "fs-1", DestinationFileSystemID: "fs-8", Source: true, LastReplicated: t0.Add(-7 * time.Second), LinkUp: false},
		// The destination end of the first pair, also in this region:
		// the source end's sample counts.
		ReplicationSample{SourceFileSystemID: "fs-1", DestinationFileSystemID: "fs-9", LastReplicated: t0.Add(-time.Hour)},
		// An initial sync: no lag yet.
		ReplicationSample{SourceFileSystemID: "fs-5", DestinationFileSystemID: "fs-6", Source: true},
	)
	p.sample(ctx, t0)
	p.sample(ctx, t0.Add(500*time.Millisecond))
	src.mu.Lock()
	src.reps[0].ShippedBytes = 4000
	src.mu.Unlock()
	p.sample(ctx, t0.Add(900*time.Millisecond))
	p.Flush()
	f.clock.Advance(time.Minute)

	pair := []Dimension{{"FileSystemId", "fs-1"}, {"DestinationFileSystemId", "fs-9"}}
	for _, c := range []struct {
		ns, name string
		dims     []Dimension
		stat     string
		want     float64
	}{
		{NamespaceEFS, "TimeSinceLastSync", pair, Minimum, 3},
		{NamespaceEFS, "TimeSinceLastSync", pair, Maximum, 3.9},
		{NamespaceEFS, "TimeSinceLastSync", pair, SampleCount, 3},
		{NamespaceEFS, "TimeSinceLastSync", []Dimension{{"FileSystemId", "fs-1"}, {"DestinationFileSystemId", "fs-8"}}, Maximum, 7.9},
		// The source alone: the worst destination.
		{NamespaceEFS, "TimeSinceLastSync", []Dimension{{"FileSystemId", "fs-1"}}, Minimum, 7},
		{NamespaceEFS, "TimeSinceLastSync", []Dimension{{"FileSystemId", "fs-1"}}, Maximum, 7.9},
		{NamespaceReplication, "ReplicationLag", pair, Maximum, 3.9},
		{NamespaceReplication, "PendingRecords", pair, Maximum, 5},
		{NamespaceReplication, "PendingBytes", pair, Maximum, 500},
		{NamespaceReplication, "LinkUp", pair, Maximum, 1},
		{NamespaceReplication, "LinkUp", []Dimension{{"FileSystemId", "fs-1"}, {"DestinationFileSystemId", "fs-8"}}, Maximum, 0},
		{NamespaceReplication, "ShippedBytes", pair, Sum, 3000},
	} {
		got, ok := f.stat(t, c.ns, c.name, c.dims, t0, 1, c.stat)
		if !ok || math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s %s %v %s = %v (%v), want %v", c.ns, c.name, c.dims, c.stat, got, ok, c.want)
		}
	}
	if _, ok := f.stat(t, NamespaceEFS, "TimeSinceLastSync", []Dimension{{"FileSystemId", "fs-5"}}, start, 3600, Maximum); ok {
		t.Error("TimeSinceLastSync published during an initial sync")
	}
	if got, ok := f.stat(t, NamespaceReplication, "PendingRecords", []Dimension{{"FileSystemId", "fs-5"}, {"DestinationFileSystemId", "fs-6"}}, t0, 1, Maximum); !ok || got != 0 {
		t.Errorf("pending records during an initial sync: %v %v", got, ok)
	}
	// Nothing replicates for 30 seconds: the lag keeps growing.
	later := t0.Add(30 * time.Second)
	p.sample(ctx, later)
	p.Flush()
	if got, ok := f.stat(t, NamespaceEFS, "TimeSinceLastSync", []Dimension{{"FileSystemId", "fs-1"}}, later, 1, Maximum); !ok || got != 37 {
		t.Errorf("lag 30 s later: %v (%v), want 37", got, ok)
	}
}
