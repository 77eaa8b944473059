package pebblekv

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkSyncedCommits: small synced commits one after another on the
// real disk, on a store opened as the servers open theirs (WAL files
// overwritten), through the first logs of a fresh store and their
// extensions: each commit's time (p50, p99, p99.9, max), the commits
// that took over 1 ms, and the extensions of the WAL made meanwhile (a
// figure, not a goal: the guard is TestWALExtendedAheadOfCommits).
//
//	go test ./internal/engine/kv/pebblekv -run '^$' -bench SyncedCommits -benchtime 3x
func BenchmarkSyncedCommits(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "db"), Options{OverwriteWAL: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// About a small-file create's record (CREATE, 4 KiB inline, COMMIT
	// are ~9 KB; a mkdir's ~1 KB).
	val := make([]byte, 2500)
	const commits = 4000
	lat := make([]time.Duration, 0, commits*b.N)
	ext := s.wal.extensions.Load()
	b.ResetTimer()
	for n := range b.N {
		for i := range commits {
			t0 := time.Now()
			bt := s.NewBatch()
			bt.Set(fmt.Appendf(nil, "k%d-%06d", n, i), val)
			if err := bt.Commit(true); err != nil {
				b.Fatal(err)
			}
			bt.Close()
			lat = append(lat, time.Since(t0))
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	at := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) }
	over := 0
	if i := slices.IndexFunc(lat, func(d time.Duration) bool { return d > time.Millisecond }); i >= 0 {
		over = len(lat) - i
	}
	b.ReportMetric(at(0.5), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
	b.ReportMetric(at(0.999), "p99.9-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
	b.ReportMetric(float64(over)/float64(b.N), "over-1ms/run")
	b.ReportMetric(float64(s.wal.extensions.Load()-ext)/float64(b.N), "extensions/run")
}
