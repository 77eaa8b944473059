package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func ep(t time.Time) *epochTime { return &epochTime{t} }

// sampleStatus has every kind of line: file systems with long names, a
// running initial sync, a running resync by journal and one by checksums,
// a finished sync, a long status message and a kept copy.
func sampleStatus(now time.Time) regionStatus {
	lag := 0.054
	rep := func(id, role, method string, s syncInfo) replicationInfo {
		r := replicationInfo{ReplicationID: id, Role: role, SourceFileSystemID: "fs-08273444bee97906d", SourceRegion: "us-east-1",
			LagSeconds: &lag, SourceDurableSeq: 1234567, AppliedSeq: 1234500, PendingRecords: 67, PendingBytes: 123456,
			ShippedRecords: 98765, ShippedBytes: 5 << 30, ShippedBlocks: 4321, AppliedRecords: 9999, LinkUp: true, InitialSync: s}
		r.InitialSync.Method = method
		r.Destinations = append(r.Destinations, struct {
			Status                  string
			FileSystemID            string `json:"FileSystemId"`
			Region                  string
			LastReplicatedTimestamp *epochTime `json:",omitempty"`
			StatusMessage           string     `json:",omitempty"`
		}{Status: "ENABLING", FileSystemID: "fs-051df6ae1dab9a0f4", Region: "ap-southeast-2", LastReplicatedTimestamp: ep(now.Add(-time.Second))})
		return r
	}
	started := ep(now.Add(-10 * time.Second))
	initial := rep("rc-0000000000000001", "source", "", syncInfo{Active: true, BytesDone: 512 << 20, BytesTotal: 1 << 30,
		FilesDone: 120, FilesTotal: 250, Started: started})
	journal := rep("rc-0000000000000002", "source", "journal", syncInfo{Active: true, BytesDone: 3 << 20, KeysDone: 300, KeysTotal: 1000, Started: started})
	sums := rep("rc-0000000000000003", "source", "checksums", syncInfo{Active: true, BytesDone: 7 << 20, Started: started})
	done := rep("rc-0000000000000004", "destination", "", syncInfo{Done: true, BytesDone: 1 << 30, FilesDone: 250,
		Started: started, Finished: ep(now.Add(-2 * time.Second))})
	done.Destinations[0].Status = "PAUSED"
	done.Destinations[0].StatusMessage = "destination region ap-southeast-2 unreachable for 6m12s (connection refused or no route)"
	done.KeptCopy = "fs-0ffffffffffffffff"
	done.LinkUp = false
	return regionStatus{Region: "us-east-1", Time: now,
		FileSystems: []fileSystemInfo{
			{FileSystemID: "fs-08273444bee97906d", Name: "a name much longer than the column can hold", LifeCycleState: "available",
				SizeInBytes: 1<<40 + 12345, Protection: "REPLICATING", MountTargets: 12, Replication: "← ap-southeast-2"},
			{FileSystemID: "fs-0aaaaaaaaaaaaaaaa", LifeCycleState: "available", Protection: "ENABLED"},
		},
		Replications: []replicationInfo{initial, journal, sums, done},
		Storage: &storageStatus{Known: true, AvailableBytes: 20 << 20, TotalBytes: 256 << 20, MinFreeBytes: 32 << 20,
			ReserveBytes: 16 << 20, Full: true, FullSince: ep(now.Add(-time.Minute)), RefusedWrites: 3}}
}

func renderStatus(st regionStatus, d display) string {
	var b bytes.Buffer
	writeRegionStatus(&b, st, d, &rateTracker{})
	return b.String()
}

// TestStatusLayout: every line fits the width (100 columns, or a narrower
// terminal); a terminal gets bars, a pipe words; running syncs show
// percentage, rate and time left.
func TestStatusLayout(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 41, 51, 0, time.UTC)
	st := sampleStatus(now)
	for _, d := range []display{{tty: true, width: 100}, {tty: false, width: 100}, {tty: true, width: 72}} {
		out := renderStatus(st, d)
		t.Logf("tty=%v width=%d:\n%s", d.tty, d.width, out)
		for _, l := range strings.Split(out, "\n") {
			if n := utf8.RuneCountInString(l); n > d.width {
				t.Errorf("%d columns (> %d): %q", n, d.width, l)
			}
		}
		if d.width < 100 {
			continue // a narrow terminal cuts lines
		}
		for _, want := range []string{
			"us-east-1  ", "4 replications", "FILE SYSTEM", "a name much l…", "1.0 TiB", "← ap-southeast-2",
			"rc-0000000000000001  source  ENABLING  link up", "us-east-1 fs-08273444bee97906d → ap-southeast-2 fs-051df6ae1dab9a0f4",
			"lag 0.054s", "pending 67 records, 120.6 KiB", "shipped 98765 records, 5.0 GiB, 4321 blocks",
			"initial sync  ", "50%", "512.0 MiB of 1.0 GiB", "120 of 250 files", "51.2 MiB/s", "ETA 10s",
			"resync by journal  ", "30%", "300 of 1000 keys", "3.0 MiB sent", "ETA 23s",
			"resync by checksums  7.0 MiB sent", "running 10s",
			"initial sync  done: 1.0 GiB, 250 files in 8s (128.0 MiB/s) at ", "applied 9999 records",
			"! destination region ap-southeast-2 unreachable", "kept, read-only, in fs-0ffffffffffffffff",
			"data disk: 20.0 MiB free of 256.0 MiB (floor 32.0 MiB, reserve given back)",
			"DISK FULL since 2026-12-02T00:40:51Z: writes are refused (3 so far); deletions work.",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("tty=%v width=%d: no %q", d.tty, d.width, want)
			}
		}
		if bar := strings.Contains(out, "█") || strings.Contains(out, "░"); bar != d.tty {
			t.Errorf("tty=%v: progress bar drawn %v", d.tty, bar)
		}
	}
	// An unreachable region.
	out := renderStatus(regionStatus{Region: "us-west-2", Time: now, Error: "us-west-2: operation error EFS: DescribeFileSystems, https response error StatusCode: 503, ServiceUnavailableException: Region us-west-2 is unavailable: its API endpoint does not answer."}, display{width: 100})
	if !strings.Contains(out, "unreachable: us-west-2: operation error EFS") || strings.Contains(out, "FILE SYSTEM") {
		t.Errorf("unreachable region:\n%s", out)
	}
	for _, l := range strings.Split(out, "\n") {
		if utf8.RuneCountInString(l) > 100 {
			t.Errorf("too wide: %q", l)
		}
	}
}

// TestStatusJSON: --json carries the same facts, with the API's names.
func TestStatusJSON(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 41, 51, 0, time.UTC)
	b, err := json.Marshal(jsonStatus([]regionStatus{sampleStatus(now), {Region: "us-west-2", Time: now, Error: "down"}}, true))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Regions []struct {
			Region       string
			Error        string
			FileSystems  []map[string]any
			Replications []map[string]any
			Storage      *struct {
				Full           bool
				AvailableBytes uint64
				FullSince      float64
			}
		}
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Regions) != 2 || got.Regions[1].Error != "down" || len(got.Regions[0].Replications) != 4 {
		t.Fatalf("%s", b)
	}
	r := got.Regions[0].Replications[0]
	s := r["InitialSync"].(map[string]any)
	if r["ReplicationId"] != "rc-0000000000000001" || s["BytesTotal"] != float64(1<<30) || s["Started"] != float64(now.Add(-10*time.Second).Unix()) {
		t.Errorf("replication: %v", r)
	}
	if st := got.Regions[0].Storage; st == nil || !st.Full || st.AvailableBytes != 20<<20 || st.FullSince != float64(now.Add(-time.Minute).Unix()) {
		t.Errorf("storage: %+v in %s", st, b)
	}
	if got.Regions[1].Storage != nil {
		t.Errorf("storage of a region that did not answer: %+v", got.Regions[1].Storage)
	}
	if f := got.Regions[0].FileSystems[0]; f["FileSystemId"] != "fs-08273444bee97906d" || f["Replication"] != "← ap-southeast-2" {
		t.Errorf("file system: %v", f)
	}
}

func TestRateTracker(t *testing.T) {
	var r rateTracker
	t0 := time.Unix(1000, 0)
	if got := r.rate("x", t0, 100, 7); got != 7 {
		t.Fatalf("first sample: %v, want the fallback", got)
	}
	if got := r.rate("x", t0.Add(time.Second), 1100, 7); got != 1000 {
		t.Fatalf("second sample: %v", got)
	}
	if got := r.rate("x", t0.Add(2*time.Second), 1600, 7); got != 750 { // smoothed: (500+1000)/2
		t.Fatalf("third sample: %v", got)
	}
}

func TestLiveLine(t *testing.T) {
	var b bytes.Buffer
	l := &liveLine{out: &b, d: display{tty: true, width: 20}}
	l.show("resync 10%")
	l.show("resync 20% and a long tail")
	l.end()
	if got := b.String(); got != "\rresync 10%\x1b[K\rresync 20% and a lo…\x1b[K\r\x1b[K" {
		t.Errorf("terminal: %q", got)
	}
	b.Reset()
	l = &liveLine{out: &b, d: display{width: 100}}
	l.show("resync 10%")
	l.show("resync 10%")
	l.show("resync 20%") // within 5 s of the last line: not printed
	l.end()
	if got := b.String(); got != "resync 10%\n" {
		t.Errorf("pipe: %q", got)
	}
}

// TestStatusSameRegionCountsOnce: a same-region replication's two ends are
// both shown, and counted as one replication.
func TestStatusSameRegionCountsOnce(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 41, 51, 0, time.UTC)
	st := sampleStatus(now)
	src := st.Replications[0]
	dst := src
	dst.Role = "destination"
	st.Replications = []replicationInfo{src, dst}
	out := renderStatus(st, display{width: 100})
	if !strings.Contains(out, "1 replication\n") {
		t.Errorf("want 1 replication in the heading:\n%s", out)
	}
	for _, want := range []string{src.ReplicationID + "  source  ", src.ReplicationID + "  destination  "} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q:\n%s", want, out)
		}
	}
}
