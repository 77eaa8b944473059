package replication

import (
	"time"

	"github.com/regionfs/regionfs/internal/engine"
)

// applyLagBounds are the upper bounds of the apply-lag histogram's buckets
// (seconds): fine below 20 ms, where a healthy replica's lag lies and a
// goal of ~10 ms is judged, coarse up to a minute.
var applyLagBounds = []float64{
	0.0001, 0.0002, 0.0003, 0.0004, 0.0005, 0.0006, 0.0008,
	0.001, 0.00125, 0.0015, 0.00175, 0.002, 0.0025, 0.003, 0.0035, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009,
	0.010, 0.0125, 0.015, 0.0175, 0.020, 0.025, 0.030, 0.040, 0.050, 0.075,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

// LagHistogram is the distribution of the apply lag of a replica's
// records: for each record, the time from when the source made it durable
// (the source's clock when its group commit's sync returned, which the
// source sends with the record: featureDurableTimes) to when this replica
// made it readable (this process's clock when the apply's store commit
// returned, taken by the engine's committer before it wakes the stream:
// engine.Replica.ApplyAsync). It is exact when both regions read one
// clock (one machine) and off by their clocks' difference otherwise; a negative
// difference counts as 0. Records whose durable time the source did not
// send (an older source; a record durable more than engine.durTimesKept
// groups before it was sent, as in a catch-up) are counted in Unknown
// only.
type LagHistogram struct {
	// Bounds are the buckets' upper bounds in seconds (shared, not to
	// be changed); Counts[i] counts the records of bucket i (not
	// cumulative), Counts[len(Bounds)] those above the last bound.
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    time.Duration
	// Unknown counts the applied records without a durable time.
	Unknown uint64
}

// observe counts one record's lag.
func (h *LagHistogram) observe(d time.Duration) {
	if h.Counts == nil {
		h.Bounds = applyLagBounds
		h.Counts = make([]uint64, len(applyLagBounds)+1)
	}
	d = max(d, 0)
	s := d.Seconds()
	i := 0
	for i < len(h.Bounds) && s > h.Bounds[i] {
		i++
	}
	h.Counts[i]++
	h.Count++
	h.Sum += d
}

// clone returns a copy that shares nothing mutable with h.
func (h LagHistogram) clone() LagHistogram {
	h.Counts = append([]uint64(nil), h.Counts...)
	return h
}

// cumulative returns the buckets as Prometheus wants them: upper bound →
// records at or below it.
func (h LagHistogram) cumulative() map[float64]uint64 {
	m := make(map[float64]uint64, len(h.Bounds))
	var n uint64
	for i, b := range h.Bounds {
		n += h.Counts[i]
		m[b] = n
	}
	return m
}

// observeApplied counts the apply lag of the records of recs (durs[i]: when
// recs[i] became durable at the source) that an apply made readable at now
// (when its commit returned, engine.Replica.ApplyAsync): those after what
// was counted already (lagSeen) and the
// replica's published applied seq before the apply (before), up to the
// apply's new applied seq. A record is counted once even when the source
// sends it again.
func (in *inbound) observeApplied(recs []*engine.Record, durs []time.Time, before, applied uint64, now time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	from := max(before, in.lagSeen)
	for i, r := range recs {
		if r.Seq <= from || r.Seq > applied {
			continue
		}
		if durs[i].IsZero() {
			in.st.ApplyLag.Unknown++
			continue
		}
		in.st.ApplyLag.observe(now.Sub(durs[i]))
	}
	in.lagSeen = max(in.lagSeen, applied)
}
