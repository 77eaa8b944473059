package nfs

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/regionfs/regionfs/internal/nfs/proto"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFixture(t, envOpt{opts: Options{Registerer: reg}})
	f.c.GetAttr(f.ctx, f.root)
	f.c.GetAttr(f.ctx, f.root)
	f.c.Lookup(f.ctx, f.root, "missing")
	fh := f.create(t, f.root, "f", "")
	f.c.Write(f.ctx, fh, 0, []byte("x"), proto.Unstable)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range families {
		byName[mf.GetName()] = mf
	}
	count := func(proc, status string) float64 {
		for _, m := range byName["regionfs_nfs_operations_total"].GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["program"] == "nfs" && labels["procedure"] == proc && labels["status"] == status {
				return m.GetCounter().GetValue()
			}
		}
		return 0
	}
	if got := count("GETATTR", "NFS3_OK"); got != 2 {
		t.Fatalf("GETATTR NFS3_OK counted %v", got)
	}
	if got := count("LOOKUP", "NFS3ERR_NOENT"); got != 1 {
		t.Fatalf("LOOKUP NOENT counted %v", got)
	}
	var hist uint64
	for _, m := range byName["regionfs_nfs_operation_duration_seconds"].GetMetric() {
		hist += m.GetHistogram().GetSampleCount()
	}
	if hist < 5 {
		t.Fatalf("latency histogram has %d samples", hist)
	}
	if g := byName["regionfs_nfs_connections"].GetMetric()[0].GetGauge().GetValue(); g != 1 {
		t.Fatalf("connections gauge %v", g)
	}
	if byName["regionfs_nfs_unstable_bytes"] == nil {
		t.Fatal("no unstable bytes gauge")
	}
}
