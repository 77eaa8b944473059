package replication

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestApplyLagObserve: each record the apply made readable is counted once,
// in the bucket of its source durable time's distance from the apply's
// return; records applied before, resent, or left for a later apply are
// not counted, nor those without a durable time (Unknown).
func TestApplyLagObserve(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	// Each record was committed a minute before it was durable: its
	// commit time must not count.
	recs := func(from uint64, agos ...time.Duration) ([]*engine.Record, []time.Time) {
		var rs []*engine.Record
		var ds []time.Time
		for i, ago := range agos {
			rs = append(rs, &engine.Record{Seq: from + uint64(i), Time: now.Add(-ago - time.Minute)})
			d := now.Add(-ago)
			if ago == unknown {
				d = time.Time{}
			}
			ds = append(ds, d)
		}
		return rs, ds
	}
	in := &inbound{}
	// 4 was applied before; 8 is not applied by this apply (a gap, a
	// missing block).
	rs, ds := recs(4, time.Second, 150*time.Microsecond, 2*time.Millisecond, 12*time.Millisecond, 2*time.Minute)
	in.observeApplied(rs, ds, 4, 7, now)
	// Resent from 6 while 7's apply is not published yet (before is 5):
	// 6 and 7 are not counted again; 9 comes from a clock behind, 10
	// without a durable time.
	rs, ds = recs(6, 2*time.Millisecond, 12*time.Millisecond, 2*time.Minute, -time.Millisecond, unknown)
	in.observeApplied(rs, ds, 5, 10, now)
	h := in.snapshot().ApplyLag
	want := map[float64]uint64{0.0001: 1, 0.0002: 1, 0.002: 1, 0.0125: 1} // 9 (as 0), 5, 6, 7
	above := uint64(1)                                                    // 8: 2 min
	for i, b := range h.Bounds {
		if h.Counts[i] != want[b] {
			t.Errorf("bucket ≤ %g s: %d records, want %d", b, h.Counts[i], want[b])
		}
	}
	if got := h.Counts[len(h.Bounds)]; got != above {
		t.Errorf("above the last bound: %d records, want %d", got, above)
	}
	if h.Count != 5 || h.Unknown != 1 {
		t.Errorf("count %d, unknown %d, want 5 and 1", h.Count, h.Unknown)
	}
	if wantSum := 150*time.Microsecond + 2*time.Millisecond + 12*time.Millisecond + 2*time.Minute; h.Sum != wantSum {
		t.Errorf("sum %v, want %v", h.Sum, wantSum)
	}
	// The snapshot is a copy.
	h.Counts[0] = 99
	if in.snapshot().ApplyLag.Counts[0] != 1 {
		t.Error("a snapshot's counts are the inbound's own")
	}
}

// unknown marks a record without a durable time in TestApplyLagObserve.
const unknown = -time.Hour

// TestApplyLagMetric: the replica exports the apply lag of every record it
// applied in steady state as a histogram, one sample per record.
func TestApplyLagMetric(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	a, b := newPair(t, func(o *Options) {
		if o.Region == "us-west-2" {
			o.Registerer = reg
		}
	})
	src := a.mkfs("fs-src")
	link(t, a, b, "r1", "fs-src", "fs-dst")
	dst := b.fs("fs-dst")
	converged(t, src, dst)
	const dirs = 10
	for i := range dirs {
		if _, err := src.Mkdir(ctx, engine.RootCred, engine.RootIno, fmt.Sprintf("d%02d", i), engine.SetAttr{}); err != nil {
			t.Fatal(err)
		}
	}
	converged(t, src, dst)
	var count, applied uint64
	testkit.WaitFor(t, "the replica's status to count every applied record", 10*time.Second, func() bool {
		st, _ := b.n.InboundStatus("r1")
		count, applied = st.ApplyLag.Count, st.AppliedRecords
		if st.ApplyLag.Unknown > 0 {
			t.Fatalf("%d records applied without the source's durable time", st.ApplyLag.Unknown)
		}
		return count >= dirs && count == applied
	})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got *uint64
	for _, mf := range mfs {
		if mf.GetName() != "regionfs_replication_apply_lag_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			n := m.GetHistogram().GetSampleCount()
			got = &n
			if bs := m.GetHistogram().GetBucket(); len(bs) != len(applyLagBounds) {
				t.Errorf("%d buckets, want %d", len(bs), len(applyLagBounds))
			}
		}
	}
	if got == nil {
		t.Fatal("no regionfs_replication_apply_lag_seconds on the replica")
	}
	if *got < count {
		t.Fatalf("the metric counts %d records, the status %d", *got, count)
	}
	t.Logf("%d records applied, %d lag samples", applied, *got)
}
