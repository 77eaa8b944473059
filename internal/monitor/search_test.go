package monitor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestSearchAtoms: the tokens CloudWatch's documentation lists for its
// examples (CustomCount1, SDBFailure, Project2-trial333).
func TestSearchAtoms(t *testing.T) {
	for s, want := range map[string][]string{
		"CustomCount1":      {"Custom", "Count", "1"},
		"SDBFailure":        {"SDB", "Failure"},
		"Project2-trial333": {"Project", "2", "trial", "333"},
		"Network-Errors_2":  {"Network", "Errors", "2"},
		"fs-0a1b":           {"fs", "0", "a", "1", "b"},
		"--":                nil,
	} {
		got, _ := searchAtoms(s)
		if !slices.Equal(got, want) {
			t.Errorf("searchAtoms(%q) = %q, want %q", s, got, want)
		}
	}
}

// TestSearchMatches: partial, composite, exact and property matches and
// the Boolean operators, against the documentation's examples.
func TestSearchMatches(t *testing.T) {
	mk := func(ns, name string, dims ...string) Metric {
		m := Metric{Namespace: ns, Name: name}
		for i := 0; i+1 < len(dims); i += 2 {
			m.Dimensions = append(m.Dimensions, Dimension{dims[i], dims[i+1]})
		}
		return m
	}
	metrics := map[string]Metric{
		"cc1":      mk("MyNamespace", "CustomCount1"),
		"neterr":   mk("App", "Network-Errors-2"),
		"neterr2":  mk("App", "NetworkErrors2"),
		"cpu-i1":   mk("AWS/EC2", "CPUUtilization", "InstanceId", "i-1234567890123456"),
		"cpu-i2":   mk("AWS/EC2", "CPUUtilization", "InstanceId", "i-0000000000000002"),
		"cpu-type": mk("AWS/EC2", "CPUUtilization", "InstanceType", "t2.micro"),
		"cpu-all":  mk("AWS/EC2", "CPUUtilization"),
		"lag-fs1":  mk("AWS/EFS", "TimeSinceLastSync", "FileSystemId", "fs-1", "DestinationFileSystemId", "fs-9"),
		"special":  mk("My Namespace", "Europe\\France Traffic(Network)", "Dimension@Name", "v"),
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{`{AWS/EC2,InstanceId} MetricName="CPUUtilization"`, []string{"cpu-i1", "cpu-i2"}},
		{`{AWS/EC2,InstanceType} MetricName="CPUUtilization"`, []string{"cpu-type"}},
		{`{AWS/EC2} MetricName="CPUUtilization"`, []string{"cpu-all"}},
		{`{AWS/EC2,InstanceType} InstanceType=micro MetricName="CPUUtilization"`, []string{"cpu-type"}},
		{`{AWS/EC2,InstanceType} InstanceType="t2.micro"`, []string{"cpu-type"}},
		{`{AWS/EC2,InstanceType} InstanceType="micro"`, nil},
		{`{AWS/EC2,InstanceId} MetricName="CPUUtilization" NOT i-1234567890123456`, []string{"cpu-i2"}},
		{`count`, []string{"cc1"}},
		{`COUNT`, []string{"cc1"}},
		{`couNT`, nil},
		{`CustomCount`, []string{"cc1"}},
		{`Count1`, []string{"cc1"}},
		{`customcount`, nil},
		{`count1`, nil},
		{`customcount1`, []string{"cc1"}},
		{`{MyNamespace}, "CustomCount1"`, []string{"cc1"}},
		{`{MyNamespace}, "customcount1"`, nil},
		{`{MyNamespace}, "Custom"`, nil},
		{`network/errors`, []string{"neterr", "neterr2"}},
		{`Network_Errors`, []string{"neterr", "neterr2"}},
		{`"Network-Errors-2"`, []string{"neterr"}},
		{`"Network_Errors_2"`, nil},
		{`(EC2 OR EFS) AND MetricName=CPUUtilization`, []string{"cpu-all", "cpu-i1", "cpu-i2", "cpu-type"}},
		{`NOT Namespace=AWS`, []string{"cc1", "neterr", "neterr2", "special"}},
		{`{AWS/EFS,FileSystemId,DestinationFileSystemId} MetricName="TimeSinceLastSync"`, []string{"lag-fs1"}},
		{`{AWS/EFS,FileSystemId} MetricName="TimeSinceLastSync"`, nil},
		{`FileSystemId="fs-1"`, []string{"lag-fs1"}},
		{`{"My Namespace", "Dimension@Name"}, "Europe\\France Traffic\(Network\)"`, []string{"special"}},
		{`MetricName="CPUUtilization" OR (MetricName=TimeSinceLastSync AND fs)`, []string{"cpu-all", "cpu-i1", "cpu-i2", "cpu-type", "lag-fs1"}},
	} {
		q, err := parseSearch(tc.query)
		if err != nil {
			t.Errorf("%s: %v", tc.query, err)
			continue
		}
		var got []string
		for name, m := range metrics {
			if q.matches(&m) {
				got = append(got, name)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: found %q, want %q", tc.query, got, tc.want)
		}
	}
	for _, bad := range []string{``, `  `, `{AWS/EC2,InstanceId`, `{}`, `{AWS/EC2,}`, `a AND`, `(a OR b`, `"open`, `MetricName=`, `NOT`, `a )`,
		strings.Repeat("x", maxSearchQuery+1), strings.Repeat("(", 200) + "a" + strings.Repeat(")", 200)} {
		if _, err := parseSearch(bad); err == nil {
			t.Errorf("parseSearch(%q) accepted", bad)
		}
	}
}

// TestGetMetricDataSearch: a SEARCH returns one result per metric found,
// all with the query's id, labelled by their dimension values (or a
// Label's dynamic values, or a Label before each); an expression over it
// returns one; an alarm and a malformed search are refused before any
// evaluation.
func TestGetMetricDataSearch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ts := t0.Add(-30 * time.Second)
	var data []Datum
	for _, d := range []struct {
		fs string
		v  float64
	}{{"fs-1", 3}, {"fs-2", 9}, {"fs-3", 5}} {
		data = append(data, Datum{Metric: Metric{Namespace: "App/Repl", Name: "Lag", Dimensions: []Dimension{{"FileSystemId", d.fs}}}, Timestamp: ts, Value: fp(d.v)})
	}
	data = append(data, Datum{Metric: Metric{Namespace: "App/Repl", Name: "Lag"}, Timestamp: ts, Value: fp(1)},
		Datum{Metric: Metric{Namespace: "App/Repl", Name: "Ops", Dimensions: []Dimension{{"FileSystemId", "fs-1"}}}, Timestamp: ts, Value: fp(40)})
	if err := f.m.PutMetricData(ctx, "App/Repl", data); err != nil {
		t.Fatal(err)
	}
	type res struct {
		ID, Label string
		Values    []float64
	}
	get := func(qs ...MetricQuery) ([]res, error) {
		rs, _, err := f.m.GetMetricData(ctx, DataQuery{Queries: qs, Start: t0.Add(-5 * time.Minute), End: t0.Add(time.Minute)})
		var out []res
		for _, r := range rs {
			out = append(out, res{r.ID, r.Label, r.Values})
		}
		return out, err
	}
	search := `SEARCH('{App/Repl,FileSystemId} MetricName="Lag"', 'Maximum', 60)`
	for _, tc := range []struct {
		what string
		qs   []MetricQuery
		want []res
	}{
		{"dimension values", []MetricQuery{{ID: "lags", Expression: search}},
			[]res{{"lags", "fs-1", []float64{3}}, {"lags", "fs-2", []float64{9}}, {"lags", "fs-3", []float64{5}}}},
		{"dynamic label", []MetricQuery{{ID: "lags", Expression: search, Label: "${PROP('Dim.FileSystemId')} ${PROP('MetricName')} ${PROP('Stat')}/${PROP('Period')} max ${MAX} ${NOPE}"}},
			[]res{{"lags", "fs-1 Lag Maximum/60 max 3 ${NOPE}", []float64{3}}, {"lags", "fs-2 Lag Maximum/60 max 9 ${NOPE}", []float64{9}}, {"lags", "fs-3 Lag Maximum/60 max 5 ${NOPE}", []float64{5}}}},
		{"plain label before each", []MetricQuery{{ID: "lags", Expression: `SEARCH('{App/Repl,FileSystemId} "fs-1"', 'Sum', 60)`, Label: "sum"}},
			[]res{{"lags", "sum fs-1 Lag", []float64{3}}, {"lags", "sum fs-1 Ops", []float64{40}}}},
		{"no dimensions", []MetricQuery{{ID: "total", Expression: `SEARCH('{App/Repl} Lag', 'Sum', 60)`}},
			[]res{{"total", "Lag", []float64{1}}}},
		{"reduced", []MetricQuery{{ID: "worst", Expression: "MAX(" + search + ")"}, {ID: "scaled", Expression: "FILL(" + search + ", 0) * 2", ReturnData: new(bool)}},
			[]res{{"worst", "worst", []float64{9}}}},
		{"found nothing", []MetricQuery{{ID: "none", Expression: `SEARCH('{App/Repl,FileSystemId} MetricName="Absent"', 'Maximum', 60)`}}, nil},
		{"dynamic label on a MetricStat", []MetricQuery{{ID: "m1", Label: "${LABEL} of ${PROP('Dim.FileSystemId')} in ${PROP('Region')}",
			Stat: &MetricStat{Metric: Metric{Namespace: "App/Repl", Name: "Lag", Dimensions: []Dimension{{"FileSystemId", "fs-2"}}}, Period: 60, Stat: "Maximum"}}},
			[]res{{"m1", "Lag of fs-2 in us-east-1", []float64{9}}}},
	} {
		got, err := get(tc.qs...)
		if err != nil {
			t.Errorf("%s: %v", tc.what, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.what, diff)
		}
	}
	for _, bad := range []string{
		`SEARCH('{App/Repl,FileSystemId Lag', 'Maximum', 60)`,
		`SEARCH('Lag', 'Median', 60)`,
		`SEARCH('Lag', 'Maximum', 7)`,
		`SEARCH('Lag')`,
		`SEARCH(Lag, 'Maximum', 60)`,
		`SEARCH('Lag', 'Maximum', 60, 1)`,
	} {
		_, err := get(MetricQuery{ID: "e1", Expression: bad})
		if !errors.Is(err, ErrInvalidParameterValue) {
			t.Errorf("%s: %v, want InvalidParameterValue", bad, err)
		}
	}
	err := f.m.PutMetricAlarm(ctx, AlarmInput{Name: "worst", EvaluationPeriods: 1, Threshold: fp(1), ComparisonOperator: "GreaterThanThreshold",
		Metrics: []MetricQuery{{ID: "e1", Expression: "MAX(" + search + ")"}}})
	if !errors.Is(err, ErrInvalidParameterValue) || !strings.Contains(err.Error(), "SEARCH") {
		t.Errorf("alarm on SEARCH: %v", err)
	}
}
