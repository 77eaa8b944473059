package monitor

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// FuzzDecodeAgg: a stored aggregate (read back from the KV store at every
// query and rollup) that is damaged is refused with errBadAgg, never a
// panic; what decodes re-encodes to an aggregate with the same statistics
// and distribution sizes, and its percentiles can be asked.
func FuzzDecodeAgg(f *testing.F) {
	raw := &Agg{}
	for _, v := range []float64{1, 2, 2, 5} {
		raw.addValue(v, 1)
	}
	f.Add(raw.encode())
	sk := &Agg{}
	for i := range 2000 {
		sk.addValue(float64(i%300)-100, 1)
	}
	f.Add(sk.encode())
	f.Add((&Agg{}).encode())
	f.Add([]byte{aggVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeAgg(b)
		if err != nil {
			if !errors.Is(err, errBadAgg) {
				t.Fatalf("error %v is not errBadAgg", err)
			}
			return
		}
		again, err := decodeAgg(a.encode())
		if err != nil {
			t.Fatalf("%x decodes, its re-encoding does not: %v", b, err)
		}
		for i, p := range [][2]float64{{a.Count, again.Count}, {a.Sum, again.Sum}, {a.Min, again.Min}, {a.Max, again.Max}, {a.noDist, again.noDist}} {
			if math.Float64bits(p[0]) != math.Float64bits(p[1]) {
				t.Fatalf("statistic %d: %v, re-decoded %v", i, p[0], p[1])
			}
		}
		if len(a.raw) != len(again.raw) || (a.sk == nil) != (again.sk == nil) ||
			(a.sk != nil && (len(a.sk.pos) != len(again.sk.pos) || len(a.sk.neg) != len(again.sk.neg))) {
			t.Fatalf("distribution changed in a round trip: %+v, re-decoded %+v", a, again)
		}
		for _, p := range []float64{0, 50, 99.9, 100} {
			a.Percentile(p)
		}
	})
}

// FuzzDecodeToken: a NextToken from a caller is either one encodeToken
// issued for that list (and decodes to its position) or refused with
// ErrInvalidNextToken.
func FuzzDecodeToken(f *testing.F) {
	for _, k := range []byte{tokenAlarms, tokenHistory, tokenMetrics, tokenMetricData} {
		f.Add(k, encodeToken(k, "position\x00after"))
		f.Add(k, encodeToken(k, ""))
	}
	f.Add(tokenAlarms, "not-a-token")
	f.Add(tokenAlarms, "")
	f.Fuzz(func(t *testing.T, kind byte, tok string) {
		after, err := decodeToken(kind, tok)
		if err != nil {
			if !errors.Is(err, ErrInvalidNextToken) {
				t.Fatalf("%q: error %v is not ErrInvalidNextToken", tok, err)
			}
			return
		}
		// Accepted only as a token issued for after (base64 may spell
		// the same bytes with other unused low bits in its last letter).
		if again, err := decodeToken(kind, encodeToken(kind, after)); tok != "" && (err != nil || again != after) {
			t.Fatalf("%q accepted as %q; its issued token decodes to %q, %v", tok, after, again, err)
		}
		if b, _ := base64.RawURLEncoding.DecodeString(tok); tok != "" && !bytes.Equal(b[:len(b)-4], append([]byte{kind}, after...)) {
			t.Fatalf("%q accepted as %q, not what it holds", tok, after)
		}
	})
}

// FuzzExpression: a metric math expression (GetMetricData, PutMetricAlarm
// from a caller) is parsed or refused with a mathError, never a panic, and
// whatever parses evaluates (to a value or a mathError) over ids that
// resolve to a series, a number or nothing.
func FuzzExpression(f *testing.F) {
	for _, s := range []string{
		"m1", "m1 + 2 * m2", "SUM([m1, m2])", "AVG(m1)", "MIN([m1, -m2]) ^ 2", "MAX(m1) / 0",
		"FILL(m1, 0)", "FILL(m1, REPEAT)", "FILL(m1, LINEAR)", "ABS(DIFF(m1))", "RATE(m1)",
		"METRICS()", "METRICS('cpu')", "SUM(METRICS())", "(m1", "SUM([m1,", "1e309", "--m1", "[]", "FILL('x')",
		`SEARCH('{AWS/EFS,FileSystemId} MetricName="TimeSinceLastSync"', 'Maximum', 60)`, `MAX(SEARCH('Lag', 'p99'))`,
		`SEARCH('{', 'Sum', 60)`, `SEARCH('a', 'Sum', 1e300)`, `FILL(SEARCH('NOT (a OR "b\\"")', 'Sum', 300), 0)`,
	} {
		f.Add(s)
	}
	series := func(id string) *tseries {
		return &tseries{id: id, label: id, ts: []int64{0, 60, 120, 240}, vals: []float64{1, math.Inf(1), 0, -3}}
	}
	e := &env{
		resolve: func(id string) (mvalue, error) {
			switch id {
			case "m1":
				return series("m1"), nil
			case "m2":
				return &tseries{id: "m2"}, nil
			case "n":
				return 2.5, nil
			case "arr":
				return []*tseries{series("a"), {id: "b", ts: []int64{60}, vals: []float64{math.NaN()}}}, nil
			}
			return nil, mathErrorf("%s is not the id of a query", id)
		},
		metrics: func() []*tseries { return []*tseries{series("x"), series("y")} },
		grid:    func() []int64 { return []int64{0, 60, 120, 180, 240} },
		search: func(q *searchQuery, stat string, period int64) ([]*tseries, error) {
			m := Metric{Namespace: "AWS/EFS", Name: "TimeSinceLastSync", Dimensions: []Dimension{{"FileSystemId", "fs-1"}}}
			if !q.matches(&m) {
				return nil, nil
			}
			s := series("fs-1")
			s.src = &seriesSource{metric: m, stat: stat, period: period}
			return []*tseries{s}, nil
		},
		period: 60,
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseExpression(s)
		var me *mathError
		if err != nil {
			if !errors.As(err, &me) {
				t.Fatalf("%q: error %v is not a mathError", s, err)
			}
			return
		}
		refs := map[string]bool{}
		references(n, refs)
		if _, err := e.eval(n); err != nil && !errors.As(err, &me) {
			t.Fatalf("%q: evaluation error %v is not a mathError", s, err)
		}
	})
}

// TestDamagedAggRefused: two damaged aggregates FuzzDecodeAgg found. A
// list of n exact values was checked against the bytes before its count
// (n = 1 with 15 bytes left read past the record: a panic); an aggregate
// with samples, no statistic-set samples and an empty distribution made
// Percentile index its last value (a panic).
func TestDamagedAggRefused(t *testing.T) {
	head := append([]byte{aggVersion}, make([]byte, 5*8)...)
	short := append(append(head[:len(head):len(head)], 0, 1), make([]byte, 15)...)
	if _, err := decodeAgg(short); !errors.Is(err, errBadAgg) {
		t.Errorf("one value in 15 bytes: %v, want errBadAgg", err)
	}
	empty := &Agg{Count: 3, Sum: 1, Min: 0, Max: 1}
	a, err := decodeAgg(empty.encode())
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := a.Percentile(50); ok {
		t.Errorf("percentile of samples without a distribution: %v", v)
	}
}

// FuzzSearch: a search query (SEARCH's first argument, from a caller) is
// parsed or refused with a mathError, never a panic; what parses matches
// any metric without one, and a search word matches by tokens without one.
func FuzzSearch(f *testing.F) {
	for _, s := range []string{
		`{AWS/EC2,InstanceId} MetricName="CPUUtilization" NOT i-1234567890123456`, `(EC2 OR EBS) AND MetricName=ReadOps`,
		`{"My Namespace", "Dimension@Name"}, "Custom:Name[Special_Characters"`, `NOT Namespace=AWS`, `couNT`, `network/errors`,
		`{a`, `"x`, `a=`, `((((a`, `{}`, `\\`, `ÄÖ9ü`,
	} {
		f.Add(s, "CustomCount1-fs-0a9")
	}
	metrics := []Metric{
		{Namespace: "AWS/EC2", Name: "CPUUtilization", Dimensions: []Dimension{{"InstanceId", "i-1234567890123456"}}},
		{Namespace: "My Namespace", Name: "Custom:Name[Special_Characters", Dimensions: []Dimension{{"Dimension@Name", "ÄÖ9ü"}}},
		{Namespace: "x", Name: ""},
	}
	f.Fuzz(func(t *testing.T, query, name string) {
		q, err := parseSearch(query)
		var me *mathError
		if err != nil {
			if !errors.As(err, &me) {
				t.Fatalf("%q: error %v is not a mathError", query, err)
			}
		} else {
			for _, m := range append(metrics, Metric{Namespace: name, Name: name, Dimensions: []Dimension{{name, name}}}) {
				q.matches(&m)
			}
		}
		if partialMatch(name, name) != (len(mustAtoms(name)) > 0) {
			t.Fatalf("%q does not match itself", name)
		}
	})
}

func mustAtoms(s string) []string {
	a, _ := searchAtoms(s)
	return a
}

// FuzzDynamicLabel: a query's Label (from a caller, ≤ 2048 characters)
// with dynamic values (${LABEL}, ${PROP('Dim.X')}, ${MAX}, …) is filled in
// for any series (empty, one point, from a metric or computed), never a
// panic; a label without "${" is the label itself, and the text outside
// ${…} is kept.
func FuzzDynamicLabel(f *testing.F) {
	for _, s := range []string{
		"${LABEL} max ${MAX} at ${MAX_TIME}", "${PROP('Dim.FileSystemId')} ${PROP(\"MetricName\")} ${PROP('Stat')}/${PROP('Period')}",
		"${PROP('Region')} ${PROP('AccountId')} ${AVG} ${SUM} ${MIN} ${FIRST} ${LAST} ${DATAPOINT_COUNT}",
		"${FIRST_LAST_RANGE} ${MIN_MAX_RANGE} ${FIRST_TIME} ${LAST_TIME} ${MIN_TIME}", "${", "${}", "}${", "${PROP(')}", "${PROP('x\")}", "plain",
	} {
		f.Add(s, 3, true)
	}
	m := &Monitor{o: Options{Region: "us-east-1", AccountID: "123456789012"}}
	f.Fuzz(func(t *testing.T, label string, points int, fromMetric bool) {
		if len(label) > 2048 {
			return
		}
		s := &tseries{id: "q1", label: "own"}
		for i := range min(max(points, 0), 5) {
			s.ts = append(s.ts, int64(60*i))
			s.vals = append(s.vals, float64((i*7)%5)-1.5)
		}
		if fromMetric {
			s.src = &seriesSource{metric: Metric{Namespace: "AWS/EFS", Name: "Lag", Dimensions: []Dimension{{"FileSystemId", "fs-1"}}}, stat: "Maximum", period: 60}
		}
		q := &MetricQuery{ID: "q1", Label: label}
		got := m.seriesLabel(q, s, false)
		if !strings.Contains(label, "${") && label != "" && got != label {
			t.Fatalf("label %q became %q", label, got)
		}
		if i := strings.Index(label, "${"); i >= 0 && !strings.HasPrefix(got, label[:i]) {
			t.Fatalf("label %q became %q: the text before ${ changed", label, got)
		}
	})
}

// FuzzParseRule: an AlarmRule (client input, and read back at every
// start) parses or is refused with one of CloudWatch's errors, never a
// panic; what parses names at most MaxRuleChildren alarms, and its
// canonical form parses to a rule that evaluates the same for every
// assignment of states to its alarms.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"TRUE", "ALARM(a) AND NOT OK(\"b c\")", "(ALARM(a) OR INSUFFICIENT_DATA(b)) AND ALARM(arn:aws:cloudwatch:us-east-1:1:alarm:c)",
		"NOT NOT (FALSE)", "ALARM(a) AND", "ALARM(\"a", ")(", "alarm(x) or ok(y)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseRule(s)
		if err != nil {
			var re *Error
			if !errors.As(err, &re) || !(errors.Is(err, ErrValidation) || errors.Is(err, ErrMissingParameter) || errors.Is(err, ErrInvalidParameterValue)) {
				t.Fatalf("%q: error %v is not a refusal", s, err)
			}
			return
		}
		refs := r.refs(nil)
		distinct := map[string]int{}
		for _, n := range refs {
			if _, ok := distinct[n]; !ok {
				distinct[n] = len(distinct)
			}
		}
		if len(distinct) > MaxRuleChildren {
			t.Fatalf("%q names %d alarms", s, len(distinct))
		}
		canon := r.String()
		again, err := parseRule(canon)
		if strings.Contains(strings.Join(refs, ""), `"`) {
			return // a name with a quote has no canonical form
		}
		if err != nil {
			// The canonical form adds parentheses: a rule at the
			// nesting or length limit may not reparse.
			if len(canon) > MaxRuleLength || strings.Contains(err.Error(), "nests more than") {
				return
			}
			t.Fatalf("%q: canonical form %q does not parse: %v", s, canon, err)
		}
		states := []string{StateOK, StateAlarm, StateInsufficientData}
		for seed := range 16 {
			state := func(ref string) string { return states[(distinct[ref]+seed*(distinct[ref]+1))%3] }
			if r.eval(state) != again.eval(state) {
				t.Fatalf("%q and its canonical form %q differ", s, canon)
			}
		}
	})
}

// FuzzDashboardBody: a dashboard body (client input) is accepted or
// refused with messages, never a panic; an accepted one is a JSON object
// whose widgets are an array of at most MaxDashboardWidgets objects, and
// every message has a JSON-pointer path.
func FuzzDashboardBody(f *testing.F) {
	for _, s := range []string{`{"widgets":[]}`, `{"widgets":[{"type":"metric","x":0,"y":0,"width":24,"height":6,"properties":{"metrics":[["A","B"]],"region":"us-east-1"}}]}`,
		`{"widgets":[{"type":"alarm","properties":{"alarms":["arn:aws:cloudwatch:us-east-1:123456789012:alarm:a"]}},{"type":"text","properties":{"markdown":"m"}}],"periodOverride":"auto"}`,
		`{"widgets":[{"type":"metric","properties":{"annotations":{"alarms":[1]}}}]}`, `[]`, `{"widgets":{}}`, `null`} {
		f.Add(s)
	}
	m, err := Open(Options{KV: kv.NewMemory(), Region: "us-east-1", AccountID: "123456789012", Tick: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { m.Close() })
	f.Fuzz(func(t *testing.T, body string) {
		errs, warnings := m.checkDashboardBody(body)
		for _, msg := range append(append([]DashboardMessage{}, errs...), warnings...) {
			if msg.Message == "" || msg.DataPath != "" && !strings.HasPrefix(msg.DataPath, "/") {
				t.Fatalf("%q: message %+v", body, msg)
			}
		}
		if len(errs) > 0 {
			return
		}
		var top struct {
			Widgets []map[string]json.RawMessage `json:"widgets"`
		}
		if err := json.Unmarshal([]byte(body), &top); err != nil || top.Widgets == nil || len(top.Widgets) > MaxDashboardWidgets {
			t.Fatalf("%q accepted: %v", body, err)
		}
		for i, w := range top.Widgets {
			if w == nil || w["type"] == nil || w["properties"] == nil {
				t.Fatalf("%q accepted with widget %d %v", body, i, w)
			}
		}
	})
}
