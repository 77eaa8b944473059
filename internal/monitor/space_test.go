package monitor

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/testkit"
)

// floorGuard refuses every write while full is set, as space.Guard does
// below its floor, and the server's own writes (CheckInternal) while
// internalFull is set, as it does below half the floor.
type floorGuard struct {
	full, internalFull atomic.Bool
	checked            atomic.Int64
}

var errBelowFloor = errors.New("free space below the floor (test)")

func (g *floorGuard) Check(int64) error {
	g.checked.Add(1)
	if g.full.Load() {
		return errBelowFloor
	}
	return nil
}

func (g *floorGuard) CheckInternal(int64) error {
	g.checked.Add(1)
	if g.internalFull.Load() {
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

// TestAlarmChangesStateBelowFloor (chaos24): an alarm meant to tell the
// operator that the data disk is full must still change state and notify
// when the disk is below the floor. The evaluator's state change, its
// history and the action's history are the server's own writes
// (CheckInternal, down to half the floor); user writes (PutMetricData,
// SetAlarmState) stay refused. Before, the transition was refused like a
// user write and the alarm stayed INSUFFICIENT_DATA, silent. Below half
// the floor the evaluator's writes are refused too (nothing written).
func TestAlarmChangesStateBelowFloor(t *testing.T) {
	g := &floorGuard{}
	store := kv.NewMemory()
	n := &fakeNotifier{}
	open := func() *Monitor {
		m, err := Open(Options{KV: store, Region: "us-east-1", AccountID: "123456789012", Clock: func() time.Time { return t0 }, Tick: time.Hour, Notifier: n, Space: g})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := open()
	ctx := t.Context()
	if err := m.PutMetricAlarm(ctx, simpleAlarm("disk", 10, 3, 2, MissingBreaching)); err != nil {
		t.Fatal(err)
	}

	g.full.Store(true)
	data := []Datum{{Metric: lag, Timestamp: t0.Add(-5 * time.Second), Value: fp(1), Resolution: 1, Unit: "Seconds"}}
	if err := m.PutMetricData(ctx, lag.Namespace, data); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("PutMetricData below the floor: %v, want ErrNoSpace", err)
	}
	m.alarms.evaluateDue(t0.Add(m.o.IngestDelay))
	as, _, err := describeMetric(ctx, m, AlarmFilter{Names: []string{"disk"}})
	if err != nil || len(as) != 1 || as[0].State != StateAlarm {
		t.Fatalf("alarm below the floor: %+v, %v; want ALARM (missing data breaching)", as, err)
	}
	testkit.WaitFor(t, "the alarm's notification", 10*time.Second, func() bool { return len(n.all()) == 1 })
	testkit.WaitFor(t, "the action's history item", 10*time.Second, func() bool {
		h, _, err := m.DescribeAlarmHistory(ctx, HistoryQuery{AlarmName: "disk", Type: HistoryAction})
		return err == nil && len(h) == 1
	})
	if err := m.SetAlarmState(ctx, "disk", StateOK, "user", ""); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("SetAlarmState below the floor: %v, want ErrNoSpace (a user write)", err)
	}
	m.Close()

	// Durable: the state is ALARM after a restart.
	m = open()
	defer func() { m.Close() }()
	as, _, err = describeMetric(ctx, m, AlarmFilter{Names: []string{"disk"}})
	if err != nil || len(as) != 1 || as[0].State != StateAlarm {
		t.Fatalf("alarm after a restart: %+v, %v; want ALARM", as, err)
	}

	// Below half the floor: the evaluator writes nothing either.
	g.full.Store(false)
	if err := m.PutMetricAlarm(ctx, simpleAlarm("other", 10, 3, 2, MissingBreaching)); err != nil {
		t.Fatal(err)
	}
	g.full.Store(true)
	g.internalFull.Store(true)
	keys := func() int {
		c := 0
		if err := kv.Scan(store, nil, nil, func(_, _ []byte) error { c++; return nil }); err != nil {
			t.Fatal(err)
		}
		return c
	}
	before := keys()
	m.alarms.evaluateDue(t0.Add(m.o.IngestDelay))
	as, _, err = describeMetric(ctx, m, AlarmFilter{Names: []string{"other"}})
	if err != nil || len(as) != 1 || as[0].State != StateInsufficientData {
		t.Fatalf("alarm below half the floor: %+v, %v; want INSUFFICIENT_DATA (its change refused)", as, err)
	}
	if k := keys(); k != before {
		t.Fatalf("%d keys written below half the floor", k-before)
	}
}
