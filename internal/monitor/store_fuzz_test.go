package monitor

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// FuzzStoredAlarm: an alarm record read back from the monitor's store at
// open (its own unsynced store: a crash or a bad disk can damage it) is
// refused at open, or opens into an alarm that can be described and
// evaluated; nothing panics (the evaluator runs in a goroutine of the
// server: a panic there ends the region).
func FuzzStoredAlarm(f *testing.F) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	seed := kv.NewMemory()
	m, err := Open(Options{KV: seed, Region: "us-east-1", AccountID: "123456789012", Tick: time.Hour, Clock: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	th, yes, no := 60.0, true, false
	for _, in := range []AlarmInput{
		{Name: "lag", Metric: Metric{Namespace: "AWS/EFS", Name: "TimeSinceLastSync", Dimensions: []Dimension{{Name: "FileSystemId", Value: "fs-1"}}},
			Statistic: "Maximum", Period: 60, EvaluationPeriods: 3, DatapointsToAlarm: 2, Threshold: &th, ComparisonOperator: Greater,
			AlarmActions: []string{"arn:aws:sns:us-east-1:123456789012:t"}, Tags: []Tag{{Key: "k", Value: "v"}}},
		{Name: "p99", Metric: Metric{Namespace: "N", Name: "M"}, ExtendedStatistic: "p99", Period: 10, EvaluationPeriods: 1, Threshold: &th,
			ComparisonOperator: LessOrEqual, TreatMissingData: "breaching"},
		{Name: "math", EvaluationPeriods: 2, Threshold: &th, ComparisonOperator: GreaterOrEqual, Metrics: []MetricQuery{
			{ID: "m1", ReturnData: &no, Stat: &MetricStat{Metric: Metric{Namespace: "N", Name: "M"}, Period: 60, Stat: "Sum"}},
			{ID: "e1", ReturnData: &yes, Expression: "RATE(m1) * 2", Label: "rate"}}},
	} {
		if err := m.PutMetricAlarm(ctx, in); err != nil {
			f.Fatal(err)
		}
	}
	v := 5.0
	if err := m.PutMetricData(ctx, "N", []Datum{{Metric: Metric{Namespace: "N", Name: "M"}, Timestamp: now.Add(-2 * time.Minute), Value: &v}}); err != nil {
		f.Fatal(err)
	}
	m.Close()
	if err := kv.Scan(seed, []byte{pfxWatch, tagAlarm}, []byte{pfxWatch, tagAlarm + 1}, func(k, val []byte) error {
		f.Add(bytes.Clone(val))
		return nil
	}); err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"Name":"z","Period":0,"EvaluationPeriods":1}`))
	f.Add([]byte(`{"Name":"z","Period":60,"EvaluationPeriods":0,"DatapointsToAlarm":5}`))
	f.Add([]byte(`{"Name":"z","Period":60,"EvaluationPeriods":1,"Metrics":[{"ID":"e","Expression":"((("}]}`))
	f.Fuzz(func(t *testing.T, val []byte) {
		store := kv.NewMemory()
		b := store.NewBatch()
		// The metric data of the seeds, and the damaged alarm.
		if err := kv.Scan(seed, []byte{pfxWatch, tagSeries}, []byte{pfxWatch + 1}, func(k, v []byte) error {
			if k[1] != tagAlarm && k[1] != tagHistory {
				b.Set(bytes.Clone(k), bytes.Clone(v))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		b.Set(alarmKey("stored"), val)
		if err := b.Commit(true); err != nil {
			t.Fatal(err)
		}
		b.Close()
		m, err := Open(Options{KV: store, Region: "us-east-1", AccountID: "123456789012", Tick: time.Hour, Clock: func() time.Time { return now }})
		if err != nil {
			return
		}
		defer m.Close()
		if _, err := m.DescribeAlarms(ctx, AlarmFilter{}); err != nil {
			t.Fatalf("describe: %v", err)
		}
		m.alarms.evaluateDue(now)
		m.alarms.evaluateDue(now.Add(10 * time.Minute))
		if _, err := m.DescribeAlarms(ctx, AlarmFilter{}); err != nil {
			t.Fatalf("describe after evaluation: %v", err)
		}
	})
}

// TestDamagedAlarmRefused: a stored alarm with a zero period (or a name
// other than its key's) is refused at open. It was loaded, and the
// evaluator's first pass divided by the period: a panic in the region's
// evaluator goroutine (found by FuzzStoredAlarm).
func TestDamagedAlarmRefused(t *testing.T) {
	for _, val := range []string{
		`{"Name":"stored","Period":0,"EvaluationPeriods":1,"DatapointsToAlarm":1}`,
		`{"Name":"other","Period":60,"EvaluationPeriods":1,"DatapointsToAlarm":1}`,
		`{"Name":"stored","Period":60,"EvaluationPeriods":1000000000,"DatapointsToAlarm":1}`,
	} {
		store := kv.NewMemory()
		b := store.NewBatch()
		b.Set(alarmKey("stored"), []byte(val))
		if err := b.Commit(true); err != nil {
			t.Fatal(err)
		}
		b.Close()
		m, err := Open(Options{KV: store, Region: "us-east-1", AccountID: "123456789012", Tick: time.Hour})
		if err == nil {
			m.alarms.evaluateDue(time.Now())
			m.Close()
			t.Errorf("%s: opened", val)
		}
	}
}
