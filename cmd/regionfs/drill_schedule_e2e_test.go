package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/config"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestScheduledDrillFailureInHistory: a drill scheduled in the region's
// config runs by itself; one that cannot run (its file system is no
// replica of the region) is recorded as a failed drill in the history
// (trigger schedule:NAME) and raises regionfs_drill_failed.
func TestScheduledDrillFailureInHistory(t *testing.T) {
	p := startOpsPairOn(t, "127.36.0.1", "127.37.0.1", func(_, b *config.Config) {
		b.Drills.Schedules = []config.DrillSchedule{{Name: "every-second", FileSystemID: "fs-0123456789abcdef0", Schedule: "@every 1s"}}
	})
	var sums []struct {
		DrillID      string `json:"drill_id"`
		State        string `json:"state"`
		Succeeded    bool   `json:"succeeded"`
		Failure      string `json:"failure"`
		Trigger      string `json:"trigger"`
		FileSystemID string `json:"file_system_id"`
	}
	testkit.WaitFor(t, "a scheduled drill in the history", 20*time.Second, func() bool {
		out, err := runRoot(t, "drill", "history", "--region", "ap-northeast-2", "--json")
		if err != nil {
			return false
		}
		sums = nil
		return json.Unmarshal([]byte(out), &sums) == nil && len(sums) > 0
	})
	d := sums[0]
	t.Logf("scheduled drill: %+v", d)
	if d.Trigger != "schedule:every-second" || d.Succeeded || d.State != "FAILED" || d.Failure == "" || d.FileSystemID != "fs-0123456789abcdef0" {
		t.Fatalf("scheduled drill: %+v", d)
	}
	out, err := runRoot(t, "drill", "history", "--region", "ap-northeast-2")
	if err != nil || !strings.Contains(out, d.DrillID) || strings.Contains(out, "UNREACHABLE") {
		t.Fatalf("drill history: %v\n%s", err, out)
	}
	t.Logf("drill history:\n%s", out)
	mfs, err := p.b.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() != "regionfs_drill_failed" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetGauge().GetValue() == 1 {
				found = true
			}
		}
	}
	if !found {
		t.Fatal("regionfs_drill_failed is not 1 after a failed scheduled drill")
	}
}
