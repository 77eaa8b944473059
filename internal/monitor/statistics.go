package monitor

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MaxDatapoints is the most datapoints GetMetricStatistics returns.
const MaxDatapoints = 1440

// StatisticsQuery is a GetMetricStatistics request.
type StatisticsQuery struct {
	Metric             Metric
	Start, End         time.Time
	Period             int64 // seconds
	Statistics         []string
	ExtendedStatistics []string
	Unit               string
}

// Datapoint is one period's statistics.
type Datapoint struct {
	Timestamp time.Time
	Unit      string
	// Values holds the standard statistics asked for, Extended the
	// percentiles (only those available).
	Values   map[string]float64
	Extended map[string]float64
}

// GetMetricStatistics returns the statistics of one metric over periods
// from the (rounded) start time: one datapoint per period and unit with
// data, in time order.
func (m *Monitor) GetMetricStatistics(ctx context.Context, q StatisticsQuery) ([]Datapoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkMetric("", q.Metric); err != nil {
		return nil, err
	}
	if err := checkUnit("Unit", q.Unit); err != nil {
		return nil, err
	}
	switch {
	case len(q.Statistics) == 0 && len(q.ExtendedStatistics) == 0:
		return nil, missing("Statistics or ExtendedStatistics")
	case len(q.Statistics) > 0 && len(q.ExtendedStatistics) > 0:
		return nil, combination("Specify Statistics or ExtendedStatistics, not both.")
	case len(q.Statistics) > 5:
		return nil, invalid("The collection Statistics must not have more than 5 members.")
	case len(q.ExtendedStatistics) > 10:
		return nil, invalid("The collection ExtendedStatistics must not have more than 10 members.")
	}
	for i, s := range q.Statistics {
		if !isStandard(s) {
			return nil, invalid("The parameter Statistics.member.%d must be a value in the set [ %s ]; %s is not.", i+1, strings.Join(Statistics, ", "), clip(s))
		}
	}
	for i, s := range q.ExtendedStatistics {
		if _, ok := parsePercentile(s); !ok {
			return nil, invalid("The parameter ExtendedStatistics.member.%d must be a percentile (p0.0 to p100, e.g. p99 or p99.9); %s is not.", i+1, clip(s))
		}
	}
	start, n, err := m.periods("", q.Start, q.End, q.Period)
	if err != nil {
		return nil, err
	}
	if n > MaxDatapoints {
		return nil, combination("You have requested up to %s datapoints, which exceeds the limit of %s. You may reduce the datapoints requested by increasing Period, or decreasing the time range.",
			thousands(int64(n)), thousands(MaxDatapoints))
	}
	var out []Datapoint
	for _, sr := range m.store.find(q.Metric, q.Unit) {
		aggs, err := m.store.windows(sr, start, q.Period, n)
		if err != nil {
			return nil, err
		}
		for i, a := range aggs {
			if a == nil || a.Count == 0 {
				continue
			}
			dp := Datapoint{Timestamp: time.Unix(start+int64(i)*q.Period, 0).UTC(), Unit: unitOrNone(sr.unit), Values: map[string]float64{}}
			for _, s := range q.Statistics {
				v, _ := a.Stat(s)
				dp.Values[s] = v
			}
			for _, s := range q.ExtendedStatistics {
				if v, ok := a.Stat(s); ok {
					if dp.Extended == nil {
						dp.Extended = map[string]float64{}
					}
					dp.Extended[s] = v
				}
			}
			out = append(out, dp)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Timestamp.Before(out[j].Timestamp) })
	return out, nil
}

func unitOrNone(u string) string {
	if u == "" {
		return "None"
	}
	return u
}

// periods validates a time range and a period as CloudWatch does and
// returns the rounded start (Unix seconds) and how many periods cover
// [start, end). prefix names the parameters in messages (MetricDataQueries.member.1.MetricStat.).
func (m *Monitor) periods(prefix string, start, end time.Time, period int64) (int64, int, error) {
	switch {
	case start.IsZero():
		return 0, 0, missing("StartTime")
	case end.IsZero():
		return 0, 0, missing("EndTime")
	case !start.Before(end):
		return 0, 0, invalid("The parameter StartTime must be less than the parameter EndTime.")
	}
	if err := checkPeriod(prefix+"Period", period); err != nil {
		return 0, 0, err
	}
	now := m.o.Clock()
	age := now.Sub(start)
	switch {
	case period < 60 && age > levels[0].retention:
		return 0, 0, invalid("The parameter %sPeriod must be a multiple of 60 for data older than 3 hours; high-resolution periods (1, 5, 10, 30) only reach back 3 hours.", prefix)
	case age > levels[1].retention && period%300 != 0:
		return 0, 0, invalid("The parameter %sPeriod must be a multiple of 300 for data older than 15 days.", prefix)
	case age > levels[2].retention && period%3600 != 0:
		return 0, 0, invalid("The parameter %sPeriod must be a multiple of 3600 for data older than 63 days.", prefix)
	}
	// CloudWatch rounds the start down: to the period below a minute, to
	// the minute within 15 days, to 5 minutes within 63 days, to the hour
	// beyond.
	s := start.Unix()
	round := int64(60)
	switch {
	case period < 60:
		round = period
	case age > levels[2].retention:
		round = 3600
	case age > levels[1].retention:
		round = 300
	}
	s -= mod(s, round)
	e := end.Unix()
	if end.Nanosecond() > 0 {
		e++
	}
	n := (e - s + period - 1) / period
	return s, int(n), nil
}

// checkPeriod: at least 1 s; 1, 5, 10 or 30 below a minute, a multiple of
// 60 above.
func checkPeriod(param string, p int64) error {
	switch {
	case p == 0:
		return missing(param)
	case p < 0:
		return invalid("The value %d for parameter %s is invalid: it must be at least 1.", p, param)
	case p < 60 && p != 1 && p != 5 && p != 10 && p != 30:
		return invalid("The parameter %s must be 1, 5, 10, 30 or a multiple of 60; %d is not.", param, p)
	case p >= 60 && p%60 != 0:
		return invalid("The parameter %s must be a multiple of 60 (or 1, 5, 10, 30 for high-resolution metrics); %d is not.", param, p)
	case p > 455*24*3600:
		return invalid("The parameter %s must be at most %d seconds.", param, 455*24*3600)
	}
	return nil
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
