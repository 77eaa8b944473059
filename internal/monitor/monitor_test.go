package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/testkit"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	m     *Monitor
	kv    *kv.Memory
	clock *testkit.Clock
	n     *fakeNotifier
}

// fakeNotifier records published messages (the SNS side is tested in
// package notify).
type fakeNotifier struct {
	mu   sync.Mutex
	msgs []published
	fail error
}

type published struct{ arn, subject, message string }

func (f *fakeNotifier) Notify(_ context.Context, arn, subject, message string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return "", f.fail
	}
	f.msgs = append(f.msgs, published{arn, subject, message})
	return "id", nil
}

func (f *fakeNotifier) all() []published {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]published(nil), f.msgs...)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{kv: kv.NewMemory(), clock: testkit.NewClock(t0), n: &fakeNotifier{}}
	f.open(t)
	return f
}

func (f *fixture) open(t *testing.T) {
	t.Helper()
	m, err := Open(Options{KV: f.kv, Region: "us-east-1", AccountID: "123456789012", Clock: f.clock.Now, Notifier: f.n, Tick: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	t.Cleanup(func() { m.Close() })
}

func fp(v float64) *float64 { return &v }

var lag = Metric{Namespace: "App/Repl", Name: "Lag", Dimensions: []Dimension{{"FileSystemId", "fs-1"}}}

func (f *fixture) put(t *testing.T, ts time.Time, res int, values ...float64) {
	t.Helper()
	var data []Datum
	for _, v := range values {
		data = append(data, Datum{Metric: lag, Timestamp: ts, Value: fp(v), Resolution: res, Unit: "Seconds"})
	}
	if err := f.m.PutMetricData(context.Background(), lag.Namespace, data); err != nil {
		t.Fatal(err)
	}
}

func TestStatistics(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Two minutes of 1-second data: minute 0 has 1..60, minute 1 has 100.
	for i := 0; i < 60; i++ {
		f.put(t, t0.Add(-2*time.Minute+time.Duration(i)*time.Second), 1, float64(i+1))
	}
	f.put(t, t0.Add(-time.Minute+5*time.Second), 1, 100)
	q := StatisticsQuery{Metric: lag, Start: t0.Add(-2 * time.Minute), End: t0, Period: 60, Statistics: Statistics}
	dps, err := f.m.GetMetricStatistics(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	want := []Datapoint{
		{Timestamp: t0.Add(-2 * time.Minute), Unit: "Seconds", Values: map[string]float64{SampleCount: 60, Sum: 1830, Average: 30.5, Minimum: 1, Maximum: 60}},
		{Timestamp: t0.Add(-time.Minute), Unit: "Seconds", Values: map[string]float64{SampleCount: 1, Sum: 100, Average: 100, Minimum: 100, Maximum: 100}},
	}
	if d := cmp.Diff(want, dps, cmpopts.IgnoreFields(Datapoint{}, "Extended")); d != "" {
		t.Fatal(d)
	}
	q.Statistics, q.ExtendedStatistics = nil, []string{"p50", "p99", "p100"}
	if dps, err = f.m.GetMetricStatistics(ctx, q); err != nil {
		t.Fatal(err)
	}
	want = []Datapoint{
		{Timestamp: t0.Add(-2 * time.Minute), Unit: "Seconds", Extended: map[string]float64{"p50": 30, "p99": 60, "p100": 60}},
		{Timestamp: t0.Add(-time.Minute), Unit: "Seconds", Extended: map[string]float64{"p50": 100, "p99": 100, "p100": 100}},
	}
	if d := cmp.Diff(want, dps, cmpopts.IgnoreFields(Datapoint{}, "Values")); d != "" {
		t.Fatal(d)
	}
	// One or the other, not both (GetMetricStatistics's documentation; qa10).
	q.Statistics = Statistics
	if _, err := f.m.GetMetricStatistics(ctx, q); !errors.Is(err, ErrInvalidParameterCombination) {
		t.Fatalf("Statistics and ExtendedStatistics: %v, want InvalidParameterCombination", err)
	}
	// The same through 10-second periods (the 1-second level).
	q.Period, q.ExtendedStatistics, q.Statistics = 10, nil, []string{Maximum}
	dps, err = f.m.GetMetricStatistics(ctx, q)
	if err != nil || len(dps) != 7 || dps[0].Values[Maximum] != 10 || dps[5].Values[Maximum] != 60 || dps[6].Values[Maximum] != 100 {
		t.Fatalf("%+v %v", dps, err)
	}
	// A 5-minute period starting on the minute, not on 5 minutes.
	q.Period, q.Start = 300, t0.Add(-4*time.Minute)
	dps, err = f.m.GetMetricStatistics(ctx, q)
	if err != nil || len(dps) != 1 || dps[0].Values[Maximum] != 100 || !dps[0].Timestamp.Equal(t0.Add(-4*time.Minute)) {
		t.Fatalf("%+v %v", dps, err)
	}
	// Another unit is another series; Unit selects.
	if err := f.m.PutMetricData(ctx, lag.Namespace, []Datum{{Metric: lag, Timestamp: t0.Add(-90 * time.Second), Value: fp(7), Unit: "Milliseconds"}}); err != nil {
		t.Fatal(err)
	}
	q = StatisticsQuery{Metric: lag, Start: t0.Add(-2 * time.Minute), End: t0, Period: 60, Statistics: []string{SampleCount}, Unit: "Milliseconds"}
	dps, err = f.m.GetMetricStatistics(ctx, q)
	if err != nil || len(dps) != 1 || dps[0].Unit != "Milliseconds" || dps[0].Values[SampleCount] != 1 {
		t.Fatalf("%+v %v", dps, err)
	}
}

func TestPercentileSketch(t *testing.T) {
	a := &Agg{}
	for i := 1; i <= 10000; i++ {
		a.addValue(float64(i), 1)
	}
	for _, p := range []float64{50, 90, 99, 99.9} {
		got, ok := a.Percentile(p)
		want := p / 100 * 10000
		if !ok || math.Abs(got-want)/want > 0.02 {
			t.Errorf("p%v = %v, want %v ±2%%", p, got, want)
		}
	}
	// Round trip through the encoding, and merge.
	b, err := decodeAgg(a.encode())
	if err != nil {
		t.Fatal(err)
	}
	b.merge(a)
	if got, _ := b.Percentile(50); math.Abs(got-5000)/5000 > 0.02 || b.Count != 20000 {
		t.Errorf("merged: p50 %v count %v", got, b.Count)
	}
	// Statistic sets without a distribution have no percentiles.
	c := &Agg{}
	d := Datum{Stats: &StatisticSet{SampleCount: 4, Sum: 10, Minimum: 1, Maximum: 4}}
	c.merge(d.agg())
	if _, ok := c.Percentile(50); ok {
		t.Error("percentile of a statistic set")
	}
	if _, err := decodeAgg([]byte{1, 2, 3}); err == nil {
		t.Error("damaged aggregate decoded")
	}
}

func TestRollupsAndRetention(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Standard-resolution data 20 days ago is refused by PutMetricData
	// (two weeks at most) but regionfs's own data rolls up the same way.
	old := t0.Add(-10 * 24 * time.Hour)
	if err := f.m.Record([]Datum{{Metric: lag, Timestamp: old, Value: fp(5), Resolution: 1}}); err != nil {
		t.Fatal(err)
	}
	f.put(t, t0.Add(-time.Minute), 1, 3)
	// Ten days ago: only minute (and coarser) data remains.
	dps, err := f.m.GetMetricStatistics(ctx, StatisticsQuery{Metric: lag, Start: old.Add(-time.Hour), End: old.Add(time.Hour), Period: 3600, Statistics: []string{Sum}})
	if err != nil || len(dps) != 1 || dps[0].Values[Sum] != 5 {
		t.Fatalf("%+v %v", dps, err)
	}
	if _, err := f.m.GetMetricStatistics(ctx, StatisticsQuery{Metric: lag, Start: old, End: old.Add(time.Minute), Period: 10, Statistics: []string{Sum}}); !errors.Is(err, ErrInvalidParameterValue) {
		t.Fatalf("10 s period on old data: %v", err)
	}
	// Retention deletes 1-second buckets after 3 hours.
	f.clock.Advance(4 * time.Hour)
	f.m.store.retain()
	n := 0
	it, _ := f.kv.NewIter([]byte{pfxWatch, tagPoint, 0}, []byte{pfxWatch, tagPoint, 1})
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	it.Close()
	if n != 0 {
		t.Fatalf("%d one-second buckets outlived their retention", n)
	}
	dps, err = f.m.GetMetricStatistics(ctx, StatisticsQuery{Metric: lag, Start: t0.Add(-time.Hour), End: t0, Period: 60, Statistics: []string{Sum}})
	if err != nil || len(dps) != 1 || dps[0].Values[Sum] != 3 {
		t.Fatalf("minute data after retention: %+v %v", dps, err)
	}
}

// TestDurable: metrics, alarms and history survive a restart (and a crash
// after the store's sync).
func TestDurable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.put(t, t0.Add(-30*time.Second), 1, 42)
	if err := f.m.PutMetricAlarm(ctx, simpleAlarm("a1", 10, 3, 2, MissingMissing)); err != nil {
		t.Fatal(err)
	}
	if err := f.m.store.sync(); err != nil {
		t.Fatal(err)
	}
	f.kv = f.kv.CrashClone()
	f.m.Close()
	f.open(t)
	dps, err := f.m.GetMetricStatistics(ctx, StatisticsQuery{Metric: lag, Start: t0.Add(-time.Minute), End: t0, Period: 60, Statistics: []string{Maximum}})
	if err != nil || len(dps) != 1 || dps[0].Values[Maximum] != 42 {
		t.Fatalf("%+v %v", dps, err)
	}
	as, _, err := describeMetric(ctx, f.m, AlarmFilter{})
	if err != nil || len(as) != 1 || as[0].State != StateInsufficientData {
		t.Fatalf("%+v %v", as, err)
	}
	h, _, err := f.m.DescribeAlarmHistory(ctx, HistoryQuery{AlarmName: "a1"})
	if err != nil || len(h) != 1 || h[0].Type != HistoryConfigurationUpdate {
		t.Fatalf("%+v %v", h, err)
	}
}

// describeMetric is DescribeAlarms of metric alarms.
func describeMetric(ctx context.Context, m *Monitor, f AlarmFilter) ([]Alarm, string, error) {
	l, err := m.DescribeAlarms(ctx, f)
	return l.Metric, l.NextToken, err
}

func simpleAlarm(name string, period int64, n, m int, missing string) AlarmInput {
	return AlarmInput{Name: name, Metric: lag, Statistic: Maximum, Period: period, EvaluationPeriods: n, DatapointsToAlarm: m,
		Threshold: fp(20), ComparisonOperator: Greater, TreatMissingData: missing,
		AlarmActions: []string{"arn:aws:sns:us-east-1:123456789012:alerts"}, OKActions: []string{"arn:aws:sns:us-east-1:123456789012:alerts"}}
}

func (f *fixture) state(t *testing.T, name string) Alarm {
	t.Helper()
	list, err := f.m.DescribeAlarms(context.Background(), AlarmFilter{Names: []string{name}})
	as := list.Metric
	if err != nil || len(as) != 1 {
		t.Fatalf("%+v %v", as, err)
	}
	return as[0]
}

// TestAlarmEvaluation: M out of N with each TreatMissingData, on 10-second
// periods, with actions and history on each transition.
func TestAlarmEvaluation(t *testing.T) {
	for _, tc := range []struct {
		missing string
		// values per 10-second period (NaN: no data), newest last
		values []float64
		want   string
	}{
		{MissingMissing, []float64{1, 2, 3}, StateOK},
		{MissingMissing, []float64{1, 25, 30}, StateAlarm},
		{MissingMissing, []float64{25, 1, 30}, StateAlarm},
		{MissingMissing, []float64{25, 1, 1}, StateOK},
		{MissingMissing, []float64{math.NaN(), math.NaN(), math.NaN()}, StateInsufficientData},
		{MissingMissing, []float64{math.NaN(), math.NaN(), 30}, StateOK}, // 1 of 2 needed
		{MissingBreaching, []float64{math.NaN(), math.NaN(), math.NaN()}, StateAlarm},
		{MissingBreaching, []float64{1, math.NaN(), 30}, StateAlarm},
		{MissingBreaching, []float64{1, math.NaN(), 1}, StateOK},
		{MissingNotBreaching, []float64{math.NaN(), math.NaN(), math.NaN()}, StateOK},
		{MissingNotBreaching, []float64{math.NaN(), 30, 30}, StateAlarm},
		{MissingIgnore, []float64{math.NaN(), math.NaN(), math.NaN()}, StateInsufficientData}, // kept
		{MissingIgnore, []float64{math.NaN(), 30, 30}, StateAlarm},
	} {
		t.Run(tc.missing+"/"+fmtValues(tc.values), func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			if err := f.m.PutMetricAlarm(ctx, simpleAlarm("a", 10, 3, 2, tc.missing)); err != nil {
				t.Fatal(err)
			}
			start := t0.Add(-30 * time.Second)
			for i, v := range tc.values {
				if !math.IsNaN(v) {
					f.put(t, start.Add(time.Duration(i)*10*time.Second+time.Second), 1, v)
				}
			}
			f.m.alarms.evaluateDue(t0.Add(f.m.o.IngestDelay))
			a := f.state(t, "a")
			if a.State != tc.want {
				t.Fatalf("state %s (%s), want %s", a.State, a.StateReason, tc.want)
			}
			if a.State != StateInsufficientData && (!strings.HasPrefix(a.StateReason, "Threshold Crossed") || !json.Valid([]byte(a.StateReasonData))) {
				t.Fatalf("reason %q data %q", a.StateReason, a.StateReasonData)
			}
		})
	}
}

func fmtValues(v []float64) string {
	var s []string
	for _, x := range v {
		if math.IsNaN(x) {
			s = append(s, "-")
		} else {
			s = append(s, formatDouble(x))
		}
	}
	return strings.Join(s, "_")
}

func TestAlarmTransitionsAndActions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		f.put(t, t0.Add(-time.Duration(i)*10*time.Second), 1, 0.3)
	}
	if err := f.m.PutMetricAlarm(ctx, simpleAlarm("lag", 10, 3, 2, MissingBreaching)); err != nil {
		t.Fatal(err)
	}
	step := func(v float64) {
		t.Helper()
		now := f.clock.Now()
		if !math.IsNaN(v) {
			f.put(t, now.Add(5*time.Second), 1, v)
		}
		f.clock.Advance(10 * time.Second)
		f.m.alarms.evaluateDue(f.clock.Now().Add(f.m.o.IngestDelay))
	}
	for i := 0; i < 3; i++ {
		step(0.2)
	}
	if s := f.state(t, "lag"); s.State != StateOK {
		t.Fatalf("%+v", s)
	}
	step(25)
	if s := f.state(t, "lag"); s.State != StateOK {
		t.Fatalf("one breaching datapoint of 3 alarmed: %+v", s)
	}
	step(math.NaN()) // missing = breaching
	s := f.state(t, "lag")
	if s.State != StateAlarm {
		t.Fatalf("%+v", s)
	}
	step(0.1)
	step(0.1)
	if s := f.state(t, "lag"); s.State != StateOK {
		t.Fatalf("%+v", s)
	}
	f.m.Close() // runs the queued actions
	msgs := f.n.all()
	if len(msgs) != 3 { // OK (from INSUFFICIENT_DATA), ALARM, OK
		t.Fatalf("%d notifications: %+v", len(msgs), msgs)
	}
	var n struct {
		AlarmName, NewStateValue, OldStateValue, NewStateReason, AlarmArn, Region string
		Trigger                                                                   struct {
			MetricName, Namespace, Statistic string
			Period                           int
			Threshold                        float64
			Dimensions                       []struct{ Name, Value string }
		}
	}
	if err := json.Unmarshal([]byte(msgs[1].message), &n); err != nil {
		t.Fatal(err)
	}
	if n.AlarmName != "lag" || n.NewStateValue != StateAlarm || n.OldStateValue != StateOK || n.Region != "US East (N. Virginia)" ||
		n.Trigger.MetricName != "Lag" || n.Trigger.Statistic != "MAXIMUM" || n.Trigger.Period != 10 || n.Trigger.Threshold != 20 ||
		n.Trigger.Dimensions[0].Value != "fs-1" || !strings.Contains(n.NewStateReason, "greater than the threshold (20.0)") ||
		msgs[1].subject != `ALARM: "lag" in US East (N. Virginia)` || msgs[1].arn != "arn:aws:sns:us-east-1:123456789012:alerts" {
		t.Fatalf("%+v %s", n, msgs[1].subject)
	}
	f.open(t)
	h, _, err := f.m.DescribeAlarmHistory(ctx, HistoryQuery{AlarmName: "lag", Type: HistoryStateUpdate})
	if err != nil || len(h) != 3 || h[0].Summary != "Alarm updated from ALARM to OK" || h[1].Summary != "Alarm updated from OK to ALARM" {
		t.Fatalf("%+v %v", h, err)
	}
	acts, _, _ := f.m.DescribeAlarmHistory(ctx, HistoryQuery{Type: HistoryAction, ScanBy: "TimestampAscending"})
	if len(acts) != 3 || !strings.HasPrefix(acts[0].Summary, "Successfully executed action arn:aws:sns:") {
		t.Fatalf("%+v", acts)
	}
	// Paging.
	page, next, err := f.m.DescribeAlarmHistory(ctx, HistoryQuery{MaxRecords: 2})
	if err != nil || len(page) != 2 || next == "" {
		t.Fatalf("%+v %q %v", page, next, err)
	}
	rest, next2, err := f.m.DescribeAlarmHistory(ctx, HistoryQuery{MaxRecords: 100, NextToken: next})
	if err != nil || len(rest) != 7-2 || next2 != "" {
		t.Fatalf("%d items, %q %v", len(rest), next2, err)
	}
}

func TestSetAlarmStateAndActionsSwitch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.m.PutMetricAlarm(ctx, simpleAlarm("x", 60, 1, 1, MissingMissing))
	if err := f.m.SetAlarmActions(ctx, []string{"x", "nope"}, false); err != nil {
		t.Fatal(err)
	}
	if err := f.m.SetAlarmState(ctx, "x", StateAlarm, "testing", `{"a":1}`); err != nil {
		t.Fatal(err)
	}
	if s := f.state(t, "x"); s.State != StateAlarm || s.StateReason != "testing" || s.ActionsEnabled {
		t.Fatalf("%+v", s)
	}
	for _, tc := range []struct {
		name, state, reason, data string
		want                      error
	}{
		{"nope", StateAlarm, "r", "", ErrResourceNotFound},
		{"x", "BAD", "r", "", ErrInvalidParameterValue},
		{"x", StateOK, "", "", ErrMissingParameter},
		{"x", StateOK, "r", "{not json", ErrInvalidFormat},
	} {
		if err := f.m.SetAlarmState(ctx, tc.name, tc.state, tc.reason, tc.data); !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v", tc, err)
		}
	}
	f.m.Close()
	if n := len(f.n.all()); n != 0 {
		t.Fatalf("%d actions ran while disabled", n)
	}
}

func TestAlarmValidation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ok := simpleAlarm("v", 60, 3, 2, "")
	for _, tc := range []struct {
		name   string
		modify func(a *AlarmInput)
		want   error
	}{
		{"no name", func(a *AlarmInput) { a.Name = "" }, ErrMissingParameter},
		{"period 15", func(a *AlarmInput) { a.Period = 15 }, ErrInvalidParameterValue},
		{"period 90", func(a *AlarmInput) { a.Period = 90 }, ErrInvalidParameterValue},
		{"too long", func(a *AlarmInput) { a.Period, a.EvaluationPeriods, a.DatapointsToAlarm = 600, 200, 1 }, ErrInvalidParameterValue},
		{"m > n", func(a *AlarmInput) { a.DatapointsToAlarm = 5 }, ErrInvalidParameterValue},
		{"no stat", func(a *AlarmInput) { a.Statistic = "" }, ErrMissingParameter},
		{"both stats", func(a *AlarmInput) { a.ExtendedStatistic = "p99" }, ErrInvalidParameterCombination},
		{"bad stat", func(a *AlarmInput) { a.Statistic = "Median" }, ErrInvalidParameterValue},
		{"bad op", func(a *AlarmInput) { a.ComparisonOperator = "Equal" }, ErrInvalidParameterValue},
		{"band op", func(a *AlarmInput) { a.ComparisonOperator = "LessThanLowerThreshold" }, ErrInvalidParameterValue},
		{"no threshold", func(a *AlarmInput) { a.Threshold = nil }, ErrMissingParameter},
		{"treat", func(a *AlarmInput) { a.TreatMissingData = "sometimes" }, ErrInvalidParameterValue},
		{"ec2 action", func(a *AlarmInput) { a.AlarmActions = []string{"arn:aws:automate:us-east-1:ec2:stop"} }, ErrInvalidParameterValue},
		{"other region", func(a *AlarmInput) { a.AlarmActions = []string{"arn:aws:sns:eu-west-1:123456789012:t"} }, ErrInvalidParameterValue},
		{"six actions", func(a *AlarmInput) {
			a.OKActions = strings.Split(strings.Repeat("arn:aws:sns:us-east-1:123456789012:t,", 6), ",")[:6]
		}, ErrInvalidParameterValue},
		{"metrics and metric", func(a *AlarmInput) {
			a.Metrics = []MetricQuery{{ID: "m1", Stat: &MetricStat{Metric: lag, Period: 60, Stat: "Maximum"}}}
		}, ErrInvalidParameterCombination},
		{"30 dims", func(a *AlarmInput) {
			for i := 0; i < 31; i++ {
				a.Metric.Dimensions = append(a.Metric.Dimensions, Dimension{"d" + strings.Repeat("x", i), "v"})
			}
		}, ErrInvalidParameterValue},
		{"aws tag", func(a *AlarmInput) { a.Tags = []Tag{{"aws:x", "y"}} }, ErrInvalidParameterValue},
	} {
		in := ok
		in.Metric.Dimensions = append([]Dimension(nil), ok.Metric.Dimensions...)
		tc.modify(&in)
		if err := f.m.PutMetricAlarm(ctx, in); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if as, _, _ := describeMetric(ctx, f.m, AlarmFilter{}); len(as) != 0 {
		t.Fatalf("a refused alarm was stored: %+v", as)
	}
	if err := f.m.PutMetricAlarm(ctx, ok); err != nil {
		t.Fatal(err)
	}
	if err := f.m.DeleteAlarms(ctx, []string{"v", "absent"}); !errors.Is(err, ErrResourceNotFound) {
		t.Fatal(err)
	}
	if as, _, _ := describeMetric(ctx, f.m, AlarmFilter{}); len(as) != 1 {
		t.Fatal("a failed DeleteAlarms deleted something")
	}
}

func TestAlarmOnMetricMath(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in := AlarmInput{Name: "math", EvaluationPeriods: 1, Threshold: fp(50), ComparisonOperator: GreaterOrEqual,
		Metrics: []MetricQuery{
			{ID: "m1", Stat: &MetricStat{Metric: lag, Period: 60, Stat: "Sum"}, ReturnData: new(bool)},
			{ID: "e1", Expression: "m1 * 10", Label: "ten times"},
		}}
	if err := f.m.PutMetricAlarm(ctx, in); err != nil {
		t.Fatal(err)
	}
	f.put(t, t0.Add(-30*time.Second), 60, 6)
	f.m.alarms.evaluateDue(t0.Add(f.m.o.IngestDelay))
	if s := f.state(t, "math"); s.State != StateAlarm {
		t.Fatalf("%+v", s)
	}
}

func TestDescribeAlarmsFilters(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, n := range []string{"b", "a", "c-1", "c-2"} {
		f.m.PutMetricAlarm(ctx, simpleAlarm(n, 60, 1, 1, ""))
	}
	f.m.SetAlarmState(ctx, "c-2", StateAlarm, "r", "")
	names := func(as []Alarm) string {
		var s []string
		for _, a := range as {
			s = append(s, a.Name)
		}
		return strings.Join(s, ",")
	}
	as, next, _ := describeMetric(ctx, f.m, AlarmFilter{MaxRecords: 3})
	rest, _, _ := describeMetric(ctx, f.m, AlarmFilter{NextToken: next})
	if names(as) != "a,b,c-1" || names(rest) != "c-2" {
		t.Fatalf("%s | %s", names(as), names(rest))
	}
	if as, _, _ := describeMetric(ctx, f.m, AlarmFilter{NamePrefix: "c-", State: StateAlarm}); names(as) != "c-2" {
		t.Fatal(names(as))
	}
	if as, _, _ := describeMetric(ctx, f.m, AlarmFilter{Types: []string{"CompositeAlarm"}}); len(as) != 0 {
		t.Fatal(names(as))
	}
	if _, _, err := describeMetric(ctx, f.m, AlarmFilter{Names: []string{"a"}, NamePrefix: "a"}); !errors.Is(err, ErrInvalidParameterCombination) {
		t.Fatal(err)
	}
	if _, _, err := describeMetric(ctx, f.m, AlarmFilter{NextToken: "!!"}); !errors.Is(err, ErrInvalidNextToken) {
		t.Fatal(err)
	}
	as, err := f.m.DescribeAlarmsForMetric(ctx, MetricAlarmFilter{Metric: lag, Statistic: Maximum, Period: 60})
	if err != nil || len(as) != 4 {
		t.Fatalf("%d %v", len(as), err)
	}
	arn := f.m.AlarmARN("a")
	if err := f.m.TagResource(ctx, arn, []Tag{{"team", "dr"}, {"env", "prod"}}); err != nil {
		t.Fatal(err)
	}
	f.m.UntagResource(ctx, arn, []string{"env"})
	if tags, err := f.m.ListTagsForResource(ctx, arn); err != nil || len(tags) != 1 || tags[0].Key != "team" {
		t.Fatalf("%+v %v", tags, err)
	}
	if _, err := f.m.ListTagsForResource(ctx, f.m.AlarmARN("zz")); !errors.Is(err, ErrTagResourceNotFound) {
		t.Fatal(err)
	}
	if _, err := f.m.ListTagsForResource(ctx, "arn:aws:sns:us-east-1:123456789012:t"); !errors.Is(err, ErrInvalidParameterValue) {
		t.Fatal(err)
	}
}

// TestSetAlarmStateHoldsUntilNextPeriod: a state set with SetAlarmState
// holds until the alarm's next evaluation, after the period running now
// has ended, and that evaluation then sets the state the data says. Before,
// a new alarm's first evaluation (due at the next tick) undid a state set
// right after PutMetricAlarm: the boto3 conformance run saw its alarm back
// in INSUFFICIENT_DATA 0.4 s after setting ALARM.
func TestSetAlarmStateHoldsUntilNextPeriod(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.m.PutMetricAlarm(ctx, simpleAlarm("x", 60, 1, 1, MissingMissing)); err != nil {
		t.Fatal(err)
	}
	if err := f.m.SetAlarmState(ctx, "x", StateAlarm, "testing", ""); err != nil {
		t.Fatal(err)
	}
	f.m.alarms.evaluateDue(f.clock.Now())
	if s := f.state(t, "x"); s.State != StateAlarm {
		t.Fatalf("state %s (%s) right after SetAlarmState, want ALARM until the next period's evaluation", s.State, s.StateReason)
	}
	f.clock.Advance(time.Minute + f.m.o.IngestDelay)
	f.m.alarms.evaluateDue(f.clock.Now())
	if s := f.state(t, "x"); s.State != StateInsufficientData {
		t.Fatalf("state %s after the next period's evaluation without data, want %s", s.State, StateInsufficientData)
	}
}
