package engine

import (
	"bytes"
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// metricValue returns the value of name (with label fs_id=fs when fs is
// not empty) in reg, and whether it was there. Histograms give their
// sample count.
func metricValue(t *testing.T, reg *prometheus.Registry, name, fs string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if fs != "" && !hasLabel(m, "fs_id", fs) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// TestEngineMetrics: capacity in use, committer batches and commit
// latency, block collection (backlog held by a pin, deletions and the
// bytes reclaimed), scrub runs and the corruption they find, and journal
// retention are exported.
func TestEngineMetrics(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	v := newEnv(t, func(o *Options) { o.Registerer = reg })
	fs := v.mkfs("fs-metrics")
	want := func(name, fsName string, ok func(float64) bool) {
		t.Helper()
		got, found := metricValue(t, reg, name, fsName)
		if !found || !ok(got) {
			t.Errorf("%s{fs_id=%q} = %v (found %v)", name, fsName, got, found)
		}
	}
	eq := func(w float64) func(float64) bool { return func(g float64) bool { return g == w } }
	atLeast := func(w float64) func(float64) bool { return func(g float64) bool { return g >= w } }

	for i, name := range []string{"a", "b"} {
		ino := must(fs.Create(ctx, RootCred, RootIno, name, CreateGuarded, SetAttr{}, 0))(t).Attr.Ino
		if _, _, err := fs.Write(ctx, RootCred, ino, 0, bytes.Repeat([]byte{byte('a' + i)}, MinBlockSize)); err != nil {
			t.Fatal(err)
		}
	}
	want("regionfs_engine_file_system_bytes", "fs-metrics", eq(2*MinBlockSize))
	want("regionfs_engine_file_system_files", "fs-metrics", eq(3))
	want("regionfs_engine_commit_group_operations", "", atLeast(4))
	want("regionfs_engine_commit_seconds", "", atLeast(4))
	want("regionfs_engine_commits_total", "fs-metrics", atLeast(4))
	want("regionfs_engine_journal_records_total", "fs-metrics", atLeast(4))
	durable := float64(fs.Replica().DurableSeq())
	want("regionfs_engine_journal_last_seq", "fs-metrics", eq(durable))
	want("regionfs_engine_journal_first_seq", "fs-metrics", eq(1))
	want("regionfs_engine_journal_retained_records", "fs-metrics", eq(durable))
	want("regionfs_engine_journal_oldest_record_age_seconds", "fs-metrics", atLeast(0))

	// A destination's pin holds the released block: backlog, no deletion.
	if err := fs.Replica().SetPin("dst", uint64(durable)+1); err != nil {
		t.Fatal(err)
	}
	want("regionfs_engine_journal_pins", "fs-metrics", eq(1))
	must(fs.Remove(ctx, RootCred, RootIno, "a"))(t)
	if _, err := v.e.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	want("regionfs_engine_gc_backlog_blocks", "", eq(1))
	want("regionfs_engine_gc_deleted_blocks_total", "", eq(0))
	if err := fs.Replica().ClearPin("dst"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	want("regionfs_engine_gc_backlog_blocks", "", eq(0))
	want("regionfs_engine_gc_deleted_blocks_total", "", eq(1))
	want("regionfs_engine_gc_reclaimed_bytes_total", "", atLeast(MinBlockSize))
	want("regionfs_engine_gc_runs_total", "", atLeast(2))

	// Scrub: a clean pass, then one that finds the damaged block.
	if _, err := v.e.Scrub(ctx); err != nil {
		t.Fatal(err)
	}
	want("regionfs_engine_scrub_runs_total", "", eq(1))
	want("regionfs_engine_scrub_blocks_total", "", eq(1))
	want("regionfs_engine_scrub_corrupt_blocks_total", "", eq(0))
	want("regionfs_engine_scrub_last_run_timestamp_seconds", "", atLeast(1))
	files := blockFiles(t, v.disk)
	if len(files) != 1 {
		t.Fatalf("%d block files", len(files))
	}
	rewriteFile(t, v.disk, files[0], func(b []byte) { b[len(b)/2] ^= 0x08 })
	if _, err := v.e.Scrub(ctx); err != nil {
		t.Fatal(err)
	}
	want("regionfs_engine_scrub_runs_total", "", eq(2))
	want("regionfs_engine_scrub_corrupt_blocks_total", "", eq(1))
	want("regionfs_engine_scrub_errors_total", "", eq(0))
	ino := must(fs.Lookup(ctx, RootCred, RootIno, "b"))(t).Ino
	v.e.blocks.reset() // a cold read verifies the stored copy
	_, _, _, err := fs.Read(ctx, RootCred, ino, 0, 10)
	wantErr(t, err, ErrCorrupt)
	want("regionfs_engine_block_corrupt_reads_total", "fs-metrics", eq(2)) // the scrub's read and this one

	if n, err := testutil.GatherAndCount(reg); err != nil || n == 0 {
		t.Fatalf("gather: %d metrics, %v", n, err)
	}
}
