package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/regionfs/regionfs/internal/config"
)

// writeRegionStatus prints one region in at most d.width columns: a
// heading, the file systems, then one block per replication. Each section
// is its own function so that more can be added (storage, alarms).
func writeRegionStatus(w io.Writer, st regionStatus, d display, rates *rateTracker) {
	head := fmt.Sprintf("%s  %s  %s, %s", st.Region, st.Time.Local().Format("2006-01-02 15:04:05"),
		plural(len(st.FileSystems), "file system"), plural(countReplications(st.Replications), "replication"))
	if st.Error != "" {
		head = st.Region + "  " + st.Time.Local().Format("2006-01-02 15:04:05")
	}
	fmt.Fprintln(w, clipWidth(head, d.width))
	if st.Error != "" {
		for _, l := range wrap(st.Error, "  unreachable: ", "    ", d.width) {
			fmt.Fprintln(w, l)
		}
		return
	}
	writeFileSystems(w, st.FileSystems, d)
	writeStorage(w, st.Storage, d)
	for _, r := range st.Replications {
		fmt.Fprintln(w)
		writeReplication(w, r, st.Time, d, rates)
	}
	writeAlarms(w, st.Alarms, d)
	if st.AlarmsError != "" {
		for _, l := range wrap(st.AlarmsError, "\nalarms unavailable: ", "    ", d.width) {
			fmt.Fprintln(w, l)
		}
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// writeFileSystems is a table that fits 100 columns: ids take 20, names
// are cut at 14, the replication column names the peer region (a
// narrower terminal cuts the lines).
func writeFileSystems(w io.Writer, fss []fileSystemInfo, d display) {
	if len(fss) == 0 {
		fmt.Fprintln(w, "\nno file systems")
		return
	}
	fmt.Fprintln(w)
	var b strings.Builder
	defer func() {
		for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
			fmt.Fprintln(w, clipWidth(l, d.width))
		}
	}()
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE SYSTEM\tNAME\tSTATE\tSIZE\tPROTECTION\tMTS\tREPLICATION")
	for _, f := range fss {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", f.FileSystemID, clipWidth(orDash(f.Name), 14), f.LifeCycleState,
			config.FormatBytes(uint64(max(f.SizeInBytes, 0))), orDash(f.Protection), f.MountTargets, orDash(f.Replication))
	}
	tw.Flush()
}

// countReplications counts configurations, not ends: a same-region
// replication has both of its ends in one region's status.
func countReplications(rs []replicationInfo) int {
	ids := map[string]bool{}
	for _, r := range rs {
		ids[r.ReplicationID] = true
	}
	return len(ids)
}

// writeReplication is one replication's block:
//
//	rc-bafc5a2e19fd2e49  source  ENABLED  link up
//	  us-east-1 fs-08273444bee97906d → us-west-2 fs-051df6ae1dab9a0f4
//	  lag 0.054s  last replicated 2026-12-02 00:41:51.201  pending 0 records
//	  shipped 12 records, 629 B, 0 blocks  acknowledged seq 14
//	  initial sync  done: 1.2 MiB, 3 files in 412ms (2.9 MiB/s) at 2026-12-02 00:41:40
func writeReplication(w io.Writer, r replicationInfo, now time.Time, d display, rates *rateTracker) {
	dst := r.Destinations[0]
	link := "link down"
	if r.LinkUp {
		link = "link up"
	}
	line := func(s string) { fmt.Fprintln(w, clipWidth(s, d.width)) }
	line(fmt.Sprintf("%s  %s  %s  %s", r.ReplicationID, r.Role, dst.Status, link))
	line(fmt.Sprintf("  %s %s → %s %s", r.SourceRegion, r.SourceFileSystemID, dst.Region, dst.FileSystemID))
	lag := "-"
	if r.LagSeconds != nil {
		lag = fmt.Sprintf("%.3fs", *r.LagSeconds)
	}
	line(fmt.Sprintf("  lag %s  last replicated %s  pending %s", lag, dst.LastReplicatedTimestamp,
		recordsAndBytes(r.PendingRecords, r.PendingBytes)))
	if r.Role == "source" {
		line(fmt.Sprintf("  shipped %s, %s  acknowledged seq %d of %d", recordsAndBytes(r.ShippedRecords, r.ShippedBytes),
			plural(int(r.ShippedBlocks), "block"), r.AppliedSeq, r.SourceDurableSeq))
	} else {
		line(fmt.Sprintf("  applied %s  at seq %d (source at %d)", plural(int(r.AppliedRecords), "record"), r.AppliedSeq, r.SourceDurableSeq))
	}
	if s := syncLine(r, now, d, rates); s != "" {
		line(s)
	}
	if g := r.MaxPromotionLagSeconds; g != nil {
		line(fmt.Sprintf("  promotion guard: failover refuses a replica more than %s behind (unless --force)",
			time.Duration(*g*float64(time.Second))))
	}
	if a := r.AutoFailoverAfterSeconds; a != nil {
		line(fmt.Sprintf("  automatic failover: after %s without the source region, once its lease has expired",
			time.Duration(*a*float64(time.Second))))
	}
	if m := dst.StatusMessage; m != "" {
		for _, l := range wrap(m, "  ! ", "    ", d.width) {
			fmt.Fprintln(w, l)
		}
	}
	if r.KeptCopy != "" {
		for _, l := range wrap("the destination's earlier state is kept, read-only, in "+r.KeptCopy, "  ", "    ", d.width) {
			fmt.Fprintln(w, l)
		}
	}
}

func recordsAndBytes(n, b uint64) string {
	return fmt.Sprintf("%s, %s", plural(int(n), "record"), config.FormatBytes(b))
}

// syncName says what kind of sync s is.
func syncName(s syncInfo) string {
	if s.Method != "" {
		return "resync by " + s.Method
	}
	return "initial sync"
}

// syncLine is the initial sync's (or resync's) line: a progress bar while
// it runs, what it did once done, nothing before either.
func syncLine(r replicationInfo, now time.Time, d display, rates *rateTracker) string {
	s := r.InitialSync
	label := "  " + syncName(s) + "  "
	switch {
	case s.Active:
		p := syncProgress(r, now, rates)
		return label + p.render(d, d.width-utf8.RuneCountInString(label))
	case s.Done:
		took := ""
		if s.Started != nil && s.Finished != nil {
			dur := s.Finished.Sub(s.Started.Time)
			took = " in " + shortDuration(dur)
			if dur > 0 {
				took += fmt.Sprintf(" (%s/s)", config.FormatBytes(uint64(float64(s.BytesDone)/dur.Seconds())))
			}
			took += " at " + s.Finished.String()
		}
		what := config.FormatBytes(s.BytesDone)
		if s.FilesDone > 0 {
			what += ", " + plural(int(s.FilesDone), "file")
		}
		if s.KeysDone > 0 {
			what += ", " + plural(int(s.KeysDone), "key")
		}
		return label + "done: " + what + took
	}
	return ""
}

// syncProgress is where a running sync stands: by bytes for an initial
// sync, by keys for a resync by journal, bytes sent only for a resync by
// checksums (whose size is not known ahead).
func syncProgress(r replicationInfo, now time.Time, rates *rateTracker) progress {
	s := r.InitialSync
	var elapsed time.Duration
	if s.Started != nil {
		elapsed = now.Sub(s.Started.Time)
	}
	avg := 0.0
	if elapsed > 0 {
		avg = float64(s.BytesDone) / elapsed.Seconds()
	}
	p := progress{elapsed: elapsed, rate: rates.rate(r.ReplicationID+"/"+r.Role+"/sync", now, s.BytesDone, avg)}
	switch {
	case s.Method == "":
		p.done, p.total, p.unit = s.BytesDone, s.BytesTotal, "bytes"
		if s.FilesTotal > 0 {
			p.extra = fmt.Sprintf("%d of %d files", s.FilesDone, s.FilesTotal)
		}
	case s.KeysTotal > 0:
		p.done, p.total, p.unit = s.KeysDone, s.KeysTotal, "keys"
		p.extra = config.FormatBytes(s.BytesDone) + " sent"
	default:
		p.done, p.unit, p.suffix = s.BytesDone, "bytes", " sent"
	}
	return p
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeStorage prints the data disk's line, and what a full disk means:
//
//	data disk: 1.2 GiB free of 20.0 GiB (floor 256.0 MiB, reserve 64.0 MiB held)
//	DISK FULL since 2026-12-04T19:20:00Z: writes are refused (3 so far); deletions work. …
func writeStorage(w io.Writer, s *storageStatus, d display) {
	if s == nil || !s.Known {
		return
	}
	reserve := "reserve given back"
	if s.Reserved {
		reserve = "reserve " + config.FormatBytes(uint64(max(s.ReserveBytes, 0))) + " held"
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, clipWidth(fmt.Sprintf("data disk: %s free of %s (floor %s, %s)", config.FormatBytes(s.AvailableBytes),
		config.FormatBytes(s.TotalBytes), config.FormatBytes(uint64(max(s.MinFreeBytes, 0))), reserve), d.width))
	if s.Full {
		since := ""
		if s.FullSince != nil {
			since = " since " + s.FullSince.UTC().Format(time.RFC3339)
		}
		msg := fmt.Sprintf("DISK FULL%s: writes are refused (%d so far); deletions work. Free space or grow the disk: writes resume on their own.",
			since, s.RefusedWrites)
		for _, l := range wrap(msg, "", "  ", d.width) {
			fmt.Fprintln(w, l)
		}
	}
	if s.Error != "" {
		for _, l := range wrap(s.Error, "data disk: ", "  ", d.width) {
			fmt.Fprintln(w, l)
		}
	}
}
