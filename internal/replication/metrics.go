package replication

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exports every replication's status at scrape time, so series
// appear and disappear with the replications themselves.
type collector struct {
	n *Node

	lag, pendingRecs, pendingBytes               *prometheus.Desc
	shippedRecs, shippedBytes, shippedBlocks     *prometheus.Desc
	appliedRecs, applyLag, applyLagUnknown       *prometheus.Desc
	syncBytesDone, syncBytesTotal                *prometheus.Desc
	syncFilesDone, syncFilesTotal, state, linkUp *prometheus.Desc
	lastReplicated, destWaiting                  *prometheus.Desc
	verifyPasses, verifyMismatches, verifyFails  *prometheus.Desc
	verifyDiffer, verifyBadBlocks, verifyLast    *prometheus.Desc
}

var labels = []string{"replication_id", "role", "fs_id", "peer_region", "peer_fs_id"}

func newCollector(n *Node) *collector {
	d := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc("regionfs_replication_"+name, help, append(append([]string{}, labels...), extra...), nil)
	}
	return &collector{
		n:             n,
		lag:           d("lag_seconds", "Time since the source time up to which the replica holds every change (TimeSinceLastSync)."),
		pendingRecs:   d("pending_records", "Journal records the source made durable that the replica has not applied."),
		pendingBytes:  d("pending_bytes", "Estimated journal bytes the replica has not applied."),
		shippedRecs:   d("shipped_records_total", "Journal records sent to the destination."),
		shippedBytes:  d("shipped_bytes_total", "Bytes sent to the destination (records, blocks and sync chunks)."),
		shippedBlocks: d("shipped_blocks_total", "Blocks pushed to the destination."),
		appliedRecs:   d("applied_records_total", "Journal records applied on the replica."),
		applyLag: d("apply_lag_seconds", "Time from when the source made each record durable (its clock) "+
			"to when this replica made it readable (this region's clock): exact when both regions read one clock."),
		applyLagUnknown: d("apply_lag_unknown_records_total", "Records applied whose durable time the source did not send (not in apply_lag_seconds)."),
		syncBytesDone:   d("initial_sync_bytes_done", "Bytes sent by the initial sync so far."),
		syncBytesTotal:  d("initial_sync_bytes_total", "Bytes the initial sync has to send (source size at its start)."),
		syncFilesDone:   d("initial_sync_files_done", "Files sent by the initial sync so far."),
		syncFilesTotal:  d("initial_sync_files_total", "Files the initial sync has to send."),
		state:           d("state", "1 for the replication's current status.", "state"),
		linkUp:          d("link_up", "1 when the stream to the peer region is up."),
		lastReplicated:  d("last_replicated_timestamp_seconds", "Source time up to which the replica holds every change (LastReplicatedTimestamp)."),
		destWaiting: d("destination_waiting", "1 while the destination says it applies nothing of what the source sends "+
			"(its data disk is full: the status message says why)."),
		verifyPasses:     d("verify_passes_total", "Verification passes completed (range checksums compared at a common seq)."),
		verifyMismatches: d("verify_mismatches_total", "Verification passes that found differing ranges or bad blocks on the replica."),
		verifyFails:      d("verify_failures_total", "Verification passes that could not complete (stream not in steady state, peer unreachable)."),
		verifyDiffer:     d("verify_differing_ranges", "Ranges the newest verification pass found differing."),
		verifyBadBlocks:  d("verify_bad_blocks", "Blocks the newest verification pass found missing or corrupt on the replica."),
		verifyLast:       d("verify_last_pass_timestamp_seconds", "Start time of the newest completed verification pass."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lag, c.pendingRecs, c.pendingBytes, c.shippedRecs, c.shippedBytes, c.shippedBlocks,
		c.appliedRecs, c.applyLag, c.applyLagUnknown, c.syncBytesDone, c.syncBytesTotal, c.syncFilesDone, c.syncFilesTotal, c.state, c.linkUp, c.lastReplicated, c.destWaiting,
		c.verifyPasses, c.verifyMismatches, c.verifyFails, c.verifyDiffer, c.verifyBadBlocks, c.verifyLast} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	now := c.n.now()
	emit := func(st Status) {
		lv := []string{st.ID, string(st.Role), st.FS, st.PeerRegion, st.PeerFS}
		g := func(d *prometheus.Desc, v float64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append(append([]string{}, lv...), extra...)...)
		}
		ctr := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
		}
		if !st.LastReplicated.IsZero() {
			g(c.lag, st.Lag(now).Seconds())
			g(c.lastReplicated, float64(st.LastReplicated.UnixNano())/1e9)
		}
		g(c.pendingRecs, float64(st.PendingRecords))
		g(c.pendingBytes, float64(st.PendingBytes))
		if st.Role == RoleSource {
			ctr(c.shippedRecs, st.ShippedRecords)
			ctr(c.shippedBytes, st.ShippedBytes)
			ctr(c.shippedBlocks, st.ShippedBlocks)
			g(c.syncBytesDone, float64(st.Sync.BytesDone))
			g(c.syncBytesTotal, float64(st.Sync.BytesTotal))
			g(c.syncFilesDone, float64(st.Sync.FilesDone))
			g(c.syncFilesTotal, float64(st.Sync.FilesTotal))
			waiting := 0.0
			if st.PeerWaiting != "" {
				waiting = 1
			}
			g(c.destWaiting, waiting)
		} else {
			ctr(c.appliedRecs, st.AppliedRecords)
			ctr(c.applyLagUnknown, st.ApplyLag.Unknown)
			if h := st.ApplyLag; h.Count > 0 {
				ch <- prometheus.MustNewConstHistogram(c.applyLag, h.Count, h.Sum.Seconds(), h.cumulative(), lv...)
			}
		}
		for _, s := range []State{StateEnabling, StateEnabled, StatePaused, StateError, StateDeleting} {
			v := 0.0
			if st.State == s {
				v = 1
			}
			g(c.state, v, string(s))
		}
		ctr(c.verifyPasses, st.VerifyPasses)
		ctr(c.verifyMismatches, st.VerifyMismatches)
		ctr(c.verifyFails, st.VerifyFailures)
		if !st.Verify.Time.IsZero() {
			g(c.verifyDiffer, float64(st.Verify.DifferCount))
			g(c.verifyBadBlocks, float64(st.Verify.BadBlockCount))
			g(c.verifyLast, float64(st.Verify.Time.UnixNano())/1e9)
		}
		up := 0.0
		if st.LinkUp || (st.Role == RoleDestination && !st.LastContact.IsZero() && now.Sub(st.LastContact) < c.n.opts.StreamIdle) {
			up = 1
		}
		g(c.linkUp, up)
	}
	for _, st := range c.n.Outbound() {
		emit(st)
	}
	for _, st := range c.n.Inbound() {
		emit(st)
	}
}
