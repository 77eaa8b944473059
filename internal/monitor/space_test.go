package monitor

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// floorGuard refuses every write while full is set, as space.Guard does
// below its floor.
type floorGuard struct {
	full    atomic.Bool
	checked atomic.Int64
}

var errBelowFloor = errors.New("free space below the floor (test)")

func (g *floorGuard) Check(int64) error {
	g.checked.Add(1)
	if g.full.Load() {
		return errBelowFloor
	}
	return nil
}

// pointKeys counts the store's metric buckets.
func pointKeys(t *testing.T, s kv.Store) int {
	t.Helper()
	n := 0
	if err := kv.Scan(s, []byte{pfxWatch, tagPoint}, []byte{pfxWatch, tagPoint + 1}, func(_, _ []byte) error {
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMetricWritesRefusedBelowFloor (chaos22): the monitor store shares
// the data disk; below the free-space floor its metric writes are refused
// with ErrNoSpace and write nothing. Before, the publisher went on writing
// every second into the room the floor keeps for deletions and the
// metadata store until its own Pebble WAL hit ENOSPC, which Pebble treats
// as fatal: a region whose disk filled up panicked within minutes
// ("pebble: fatal commit error: write …/monitor/000006.log: no space left
// on device").
func TestMetricWritesRefusedBelowFloor(t *testing.T) {
	g := &floorGuard{}
	store := kv.NewMemory()
	m, err := Open(Options{KV: store, Region: "us-east-1", AccountID: "123456789012", Clock: func() time.Time { return t0 }, Tick: time.Hour, Space: g})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	datum := []Datum{{Metric: lag, Timestamp: t0, Value: fp(1), Resolution: 1, Unit: "Seconds"}}

	g.full.Store(true)
	if err := m.Record(datum); !errors.Is(err, ErrNoSpace) || !errors.Is(err, errBelowFloor) {
		t.Fatalf("Record below the floor: %v, want ErrNoSpace wrapping the guard's error", err)
	}
	if g.checked.Load() == 0 {
		t.Fatal("the space guard was not asked")
	}
	if n := pointKeys(t, store); n != 0 {
		t.Fatalf("%d metric buckets written below the floor, want 0", n)
	}

	g.full.Store(false)
	if err := m.Record(datum); err != nil {
		t.Fatalf("Record once there is room: %v", err)
	}
	if n := pointKeys(t, store); n != len(levels) {
		t.Fatalf("%d metric buckets after a write with room, want %d (one a level)", n, len(levels))
	}
}

// TestAlarmWritesRefusedBelowFloor (chaos23, after review22): alarm
// configuration and state changes and their history go to the same store
// as metric data; below the floor PutMetricAlarm and SetAlarmState are
// refused with ErrNoSpace and write nothing (the evaluator logs the same
// refusal and tries again at the next period). Before, they were written
// unchecked into the floor, whose Pebble WAL stops the process at ENOSPC.
func TestAlarmWritesRefusedBelowFloor(t *testing.T) {
	g := &floorGuard{}
	store := kv.NewMemory()
	m, err := Open(Options{KV: store, Region: "us-east-1", AccountID: "123456789012", Clock: func() time.Time { return t0 }, Tick: time.Hour, Space: g})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	keys := func() int {
		n := 0
		if err := kv.Scan(store, nil, nil, func(_, _ []byte) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	ctx := t.Context()
	if err := m.PutMetricAlarm(ctx, simpleAlarm("kept", 10, 3, 2, MissingMissing)); err != nil {
		t.Fatal(err)
	}
	before := keys()

	g.full.Store(true)
	if err := m.PutMetricAlarm(ctx, simpleAlarm("new", 10, 3, 2, MissingMissing)); !errors.Is(err, ErrNoSpace) || !errors.Is(err, errBelowFloor) {
		t.Fatalf("PutMetricAlarm below the floor: %v, want ErrNoSpace wrapping the guard's error", err)
	}
	if err := m.SetAlarmState(ctx, "kept", StateAlarm, "test", ""); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("SetAlarmState below the floor: %v, want ErrNoSpace", err)
	}
	if n := keys(); n != before {
		t.Fatalf("%d keys written below the floor", n-before)
	}

	g.full.Store(false)
	if err := m.SetAlarmState(ctx, "kept", StateAlarm, "test", ""); err != nil {
		t.Fatalf("SetAlarmState with room: %v", err)
	}
}
