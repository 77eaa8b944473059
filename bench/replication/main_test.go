package main

import (
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		v    []float64
		want float64
	}{
		{[]float64{5}, 5},
		{[]float64{3, 1}, 2},
		{[]float64{9, 1, 5}, 5},
		{[]float64{4, 1, 3, 10}, 3.5},
	} {
		if got := median(tc.v); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestSyncTimeline(t *testing.T) {
	t0 := time.Unix(100, 0)
	tl := syncTimeline{start: t0, created: t0.Add(20 * time.Millisecond)}
	for i, p := range []struct{ done, total uint64 }{{0, 0}, {0, 10}, {4, 10}, {7, 10}, {10, 10}, {10, 10}} {
		tl.saw(t0.Add(time.Duration(i+1)*100*time.Millisecond), p.done, p.total)
	}
	if got, want := tl.firstSent.Sub(t0), 300*time.Millisecond; got != want {
		t.Errorf("first sent at %v, want %v (the first poll with a file done)", got, want)
	}
	if got, want := tl.lastSent.Sub(t0), 500*time.Millisecond; got != want {
		t.Errorf("last sent at %v, want %v (the first poll with every file done)", got, want)
	}
	if tl.polls != 6 {
		t.Errorf("%d polls, want 6", tl.polls)
	}
	if s := tl.String(t0.Add(700 * time.Millisecond)); !strings.Contains(s, "all files sent by 0.50 s, ENABLED 0.70 s") {
		t.Errorf("timeline %q", s)
	}
}

func TestCPUTimesSince(t *testing.T) {
	a := cpuTimes{region: map[string]float64{"us-east-1": 1, "us-west-2": 2}, busy: 10, idle: 5}
	b := cpuTimes{region: map[string]float64{"us-east-1": 3.5, "us-west-2": 2.25, "gone": 1}, busy: 16, idle: 5.5}
	d := b.since(a)
	if d.region["us-east-1"] != 2.5 || d.region["us-west-2"] != 0.25 || d.busy != 6 || d.idle != 0.5 {
		t.Errorf("since = %+v", d)
	}
	if _, ok := d.region["gone"]; ok {
		t.Errorf("a region not read at the start is counted: %+v", d)
	}
}
