package monitor

import (
	"context"
	"math"
	"regexp"
	"sort"
	"strconv"
	"time"
)

// MetricStat is a metric, a period and a statistic.
type MetricStat struct {
	Metric Metric
	Period int64
	Stat   string
	Unit   string
}

// MetricQuery is one query of GetMetricData (or of an alarm on Metrics):
// a MetricStat or an expression over other queries.
type MetricQuery struct {
	ID         string
	Label      string
	ReturnData *bool
	Period     int64 // of an expression (optional)
	Stat       *MetricStat
	Expression string
}

func (q *MetricQuery) returns() bool { return q.ReturnData == nil || *q.ReturnData }

// DataQuery is a GetMetricData request.
type DataQuery struct {
	Queries       []MetricQuery
	Start, End    time.Time
	ScanBy        string // TimestampDescending (default) or TimestampAscending
	MaxDatapoints int
	NextToken     string
}

// DataResult is the result of one query.
type DataResult struct {
	ID         string
	Label      string
	Timestamps []time.Time
	Values     []float64
	StatusCode string // Complete or PartialData
	Messages   []string
}

// Limits of GetMetricData.
const (
	MaxQueries           = 500
	DefaultMaxDatapoints = 100800
)

var queryIDRe = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)

// checkQueries validates a set of metric queries; prefix names them in
// messages (MetricDataQueries or Metrics).
func checkQueries(param string, qs []MetricQuery) error {
	if len(qs) == 0 {
		return missing(param)
	}
	if len(qs) > MaxQueries {
		return invalid("The collection %s must not have more than %d members.", param, MaxQueries)
	}
	ids := map[string]bool{}
	returning := 0
	for i, q := range qs {
		p := param + ".member." + strconv.Itoa(i+1)
		switch {
		case q.ID == "":
			return missing(p + ".Id")
		case len(q.ID) > 255 || !queryIDRe.MatchString(q.ID):
			return invalid("The value %s for parameter %s.Id is invalid: an id starts with a lowercase letter and has only letters, digits and underscores.", clip(q.ID), p)
		case ids[q.ID]:
			return invalid("The Id %s is used by more than one query in %s.", q.ID, param)
		case q.Stat != nil && q.Expression != "":
			return combination("The parameters %[1]s.MetricStat and %[1]s.Expression are mutually exclusive and you have specified both.", p)
		case q.Stat == nil && q.Expression == "":
			return combination("The parameter %[1]s needs one of %[1]s.MetricStat and %[1]s.Expression.", p)
		case len(q.Label) > 2048:
			return invalid("The value of %s.Label must be at most 2048 characters long.", p)
		}
		ids[q.ID] = true
		if q.returns() {
			returning++
		}
		if q.Period != 0 {
			if err := checkPeriod(p+".Period", q.Period); err != nil {
				return err
			}
		}
		if s := q.Stat; s != nil {
			sp := p + ".MetricStat."
			if err := checkMetric(sp+"Metric.", s.Metric); err != nil {
				return err
			}
			if err := checkPeriod(sp+"Period", s.Period); err != nil {
				return err
			}
			if s.Stat == "" {
				return missing(sp + "Stat")
			}
			if !validStat(s.Stat) {
				return invalid("The value %s for parameter %sStat is not a statistic (SampleCount, Average, Sum, Minimum, Maximum or a percentile such as p99).", clip(s.Stat), sp)
			}
			if err := checkUnit(sp+"Unit", s.Unit); err != nil {
				return err
			}
			continue
		}
		n, err := parseExpression(q.Expression)
		if err != nil {
			return invalid("Error in expression %s: %v.", q.ID, err)
		}
		if param == "Metrics" && calls(n, "SEARCH") {
			return invalid("Error in expression %s: an alarm cannot use SEARCH (a search returns many time series; an alarm watches one).", q.ID)
		}
		if err := checkSearches(n); err != nil {
			return invalid("Error in expression %s: %v.", q.ID, err)
		}
	}
	if returning == 0 {
		return invalid("At least one query in %s must return data (ReturnData true).", param)
	}
	return nil
}

// evalQueries evaluates queries over [start, end): each MetricStat over
// its own periods from start, each expression over what it references.
// It returns every query's series by id, labelled: one series, or for an
// expression of GetMetricData that returns several (METRICS, SEARCH),
// each of them.
func (m *Monitor) evalQueries(param string, qs []MetricQuery, start, end time.Time) (map[string][]*tseries, error) {
	byID := map[string]*MetricQuery{}
	for i := range qs {
		byID[qs[i].ID] = &qs[i]
	}
	done := map[string]mvalue{}
	periods := map[string]int64{}
	visiting := map[string]bool{}
	var metricSeries []*tseries
	metricsDone := false
	// Metric queries first (METRICS() sees them all).
	for i := range qs {
		q := &qs[i]
		if q.Stat == nil {
			continue
		}
		s, err := m.statSeries(param, q, start, end)
		if err != nil {
			return nil, err
		}
		done[q.ID] = s
		periods[q.ID] = q.Stat.Period
	}
	metrics := func() []*tseries {
		if !metricsDone {
			for i := range qs {
				if qs[i].Stat != nil {
					metricSeries = append(metricSeries, done[qs[i].ID].(*tseries))
				}
			}
			metricsDone = true
		}
		return metricSeries
	}
	var resolve func(id string) (mvalue, error)
	resolve = func(id string) (mvalue, error) {
		if v, ok := done[id]; ok {
			return v, nil
		}
		q, ok := byID[id]
		if !ok {
			return nil, mathErrorf("%s is not the id of a query", id)
		}
		if visiting[id] {
			return nil, mathErrorf("the expressions of %s refer to each other in a cycle", id)
		}
		visiting[id] = true
		defer delete(visiting, id)
		n, err := parseExpression(q.Expression)
		if err != nil {
			return nil, err
		}
		refs := map[string]bool{}
		references(n, refs)
		period := q.Period
		for r := range refs {
			if r == "\x00metrics" {
				for _, mq := range qs {
					if mq.Stat != nil {
						period = max(period, mq.Stat.Period)
					}
				}
				continue
			}
			if _, err := resolve(r); err != nil && byID[r] != nil {
				return nil, err
			}
			period = max(period, periods[r])
		}
		period = max(period, searchPeriod(n))
		if period == 0 {
			period = 60
		}
		periods[id] = period
		e := &env{resolve: resolve, metrics: metrics, grid: func() []int64 { return grid(start, end, period) }, period: period}
		if param == "MetricDataQueries" {
			e.search = func(sq *searchQuery, stat string, period int64) ([]*tseries, error) {
				return m.searchSeries(param, sq, stat, period, start, end)
			}
		}
		v, err := e.eval(n)
		if err != nil {
			return nil, mathErrorf("Error in expression %s: %v", id, err)
		}
		if s, ok := v.(*tseries); ok {
			s = &tseries{id: id, label: s.label, ts: s.ts, vals: s.vals}
			v = s
		}
		done[id] = v
		return v, nil
	}
	out := map[string][]*tseries{}
	for i := range qs {
		q := &qs[i]
		v, err := resolve(q.ID)
		if err != nil {
			return nil, invalid("%v.", err)
		}
		switch x := v.(type) {
		case *tseries:
			s := &tseries{id: q.ID, label: x.label, ts: x.ts, vals: x.vals, src: x.src}
			s.label = m.seriesLabel(q, s, false)
			out[q.ID] = []*tseries{s}
		case float64:
			// A scalar is a constant on the expression's periods.
			s := &tseries{id: q.ID}
			if !math.IsNaN(x) {
				s.ts = grid(start, end, periods[q.ID])
				s.vals = make([]float64, len(s.ts))
				for j := range s.vals {
					s.vals[j] = x
				}
			}
			s.label = m.seriesLabel(q, s, false)
			out[q.ID] = []*tseries{s}
		case []*tseries:
			if !q.returns() {
				continue
			}
			if param != "MetricDataQueries" {
				return nil, invalid("The expression %s returns %d time series; a query returns one (use SUM, AVG, MIN or MAX).", q.ID, len(x))
			}
			list := make([]*tseries, len(x))
			for j, e := range x {
				s := &tseries{id: q.ID, label: e.label, ts: e.ts, vals: e.vals, src: e.src}
				s.label = m.seriesLabel(q, s, true)
				list[j] = s
			}
			out[q.ID] = list
		}
	}
	return out, nil
}

// grid is every period start from the rounded start to end.
func grid(start, end time.Time, period int64) []int64 {
	s := start.Unix()
	round := min(period, 60)
	s -= mod(s, round)
	var out []int64
	for t := s; t < end.Unix() && len(out) < 1<<20; t += period {
		out = append(out, t)
	}
	return out
}

// statSeries reads one MetricStat query: its statistic in each period
// with data (every unit of the metric merged unless Unit is given).
func (m *Monitor) statSeries(param string, q *MetricQuery, start, end time.Time) (*tseries, error) {
	st := q.Stat
	s0, n, err := m.periods(param+"."+q.ID+".MetricStat.", start, end, st.Period)
	if err != nil {
		return nil, err
	}
	if n > DefaultMaxDatapoints*10 {
		return nil, combination("The query %s asks for %s periods; reduce the time range or increase its Period.", q.ID, thousands(int64(n)))
	}
	merged := make([]*Agg, n)
	for _, sr := range m.store.find(st.Metric, st.Unit) {
		aggs, err := m.store.windows(sr, s0, st.Period, n)
		if err != nil {
			return nil, err
		}
		for i, a := range aggs {
			if a == nil {
				continue
			}
			if merged[i] == nil {
				merged[i] = &Agg{}
			}
			merged[i].merge(a)
		}
	}
	out := &tseries{id: q.ID, label: st.Metric.Name, src: &seriesSource{metric: st.Metric, stat: st.Stat, period: st.Period}}
	for i, a := range merged {
		if v, ok := a.Stat(st.Stat); ok {
			out.ts = append(out.ts, s0+int64(i)*st.Period)
			out.vals = append(out.vals, v)
		}
	}
	return out, nil
}

// GetMetricData evaluates metric queries and expressions.
func (m *Monitor) GetMetricData(ctx context.Context, q DataQuery) ([]DataResult, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if err := checkQueries("MetricDataQueries", q.Queries); err != nil {
		return nil, "", err
	}
	switch {
	case q.Start.IsZero():
		return nil, "", missing("StartTime")
	case q.End.IsZero():
		return nil, "", missing("EndTime")
	case !q.Start.Before(q.End):
		return nil, "", invalid("The parameter StartTime must be less than the parameter EndTime.")
	}
	switch q.ScanBy {
	case "", "TimestampDescending", "TimestampAscending":
	default:
		return nil, "", invalid("The value %s for parameter ScanBy is invalid: it must be TimestampDescending or TimestampAscending.", clip(q.ScanBy))
	}
	maxDP := q.MaxDatapoints
	if maxDP == 0 {
		maxDP = DefaultMaxDatapoints
	}
	if maxDP < 0 {
		return nil, "", invalid("The value %d for parameter MaxDatapoints is invalid.", maxDP)
	}
	offset := 0
	if q.NextToken != "" {
		at, err := decodeToken(tokenMetricData, q.NextToken)
		if err != nil {
			return nil, "", err
		}
		n, perr := strconv.Atoi(at)
		if perr != nil || n <= 0 {
			return nil, "", badToken(q.NextToken)
		}
		offset = n
	}
	series, err := m.evalQueries("MetricDataQueries", q.Queries, q.Start, q.End)
	if err != nil {
		return nil, "", err
	}
	var results []DataResult
	skipped, emitted := 0, 0
	next := ""
	for _, mq := range q.Queries {
		if !mq.returns() {
			continue
		}
		for _, s := range series[mq.ID] {
			r := DataResult{ID: mq.ID, Label: s.label, StatusCode: "Complete", Timestamps: []time.Time{}, Values: []float64{}}
			idx := make([]int, len(s.ts))
			for i := range idx {
				idx[i] = i
			}
			if q.ScanBy != "TimestampAscending" {
				sort.Sort(sort.Reverse(sort.IntSlice(idx)))
			}
			for _, i := range idx {
				if skipped < offset {
					skipped++
					continue
				}
				if emitted == maxDP {
					r.StatusCode = "PartialData"
					next = encodeToken(tokenMetricData, strconv.Itoa(offset+emitted))
					break
				}
				r.Timestamps = append(r.Timestamps, time.Unix(s.ts[i], 0).UTC())
				r.Values = append(r.Values, s.vals[i])
				emitted++
			}
			results = append(results, r)
		}
	}
	return results, next, nil
}
