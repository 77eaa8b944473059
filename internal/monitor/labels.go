package monitor

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// seriesLabel is the label of series s of query q in GetMetricData (and
// of an alarm's metric queries): with no Label, the series' own (a
// metric's name, a search result's dimension values, else the query's
// id); a Label holding dynamic values (${LABEL}, ${PROP('Dim.Name')},
// ${MAX}, …) has them filled in for the series, ${LABEL} being its own
// label; another Label replaces the label of one series and comes before
// each label of an expression's several series.
func (m *Monitor) seriesLabel(q *MetricQuery, s *tseries, several bool) string {
	own := s.label
	if own == "" {
		own = q.ID
	}
	switch {
	case q.Label == "":
		return own
	case strings.Contains(q.Label, "${"):
		return m.dynamicLabel(q.Label, own, s)
	case several:
		return q.Label + " " + own
	}
	return q.Label
}

// dynamicLabel fills in the dynamic values of label for series s (its
// own label own); an unknown ${…} stays as it is.
func (m *Monitor) dynamicLabel(label, own string, s *tseries) string {
	var b strings.Builder
	for {
		i := strings.Index(label, "${")
		if i < 0 {
			b.WriteString(label)
			return b.String()
		}
		j := strings.IndexByte(label[i:], '}')
		if j < 0 {
			b.WriteString(label)
			return b.String()
		}
		b.WriteString(label[:i])
		name := label[i+2 : i+j]
		if v, ok := m.labelValue(name, own, s); ok {
			b.WriteString(v)
		} else {
			b.WriteString(label[i : i+j+1])
		}
		label = label[i+j+1:]
	}
}

// labelValue is one dynamic value of a label.
func (m *Monitor) labelValue(name, own string, s *tseries) (string, bool) {
	if p, ok := strings.CutPrefix(name, "PROP("); ok {
		p, ok = strings.CutSuffix(p, ")")
		if !ok || len(p) < 2 || (p[0] != '\'' && p[0] != '"') || p[len(p)-1] != p[0] {
			return "", false
		}
		return m.labelProp(p[1:len(p)-1], s)
	}
	n := len(s.vals)
	num := func(v float64) (string, bool) { return strconv.FormatFloat(v, 'f', -1, 64), true }
	at := func(i int) (string, bool) { return time.Unix(s.ts[i], 0).UTC().Format(time.RFC3339), true }
	switch name {
	case "LABEL":
		return own, true
	case "DATAPOINT_COUNT":
		return strconv.Itoa(n), true
	}
	if n == 0 {
		switch name {
		case "AVG", "MAX", "MIN", "SUM", "FIRST", "LAST", "FIRST_LAST_RANGE", "MIN_MAX_RANGE",
			"FIRST_TIME", "LAST_TIME", "MIN_TIME", "MAX_TIME":
			return "", true
		}
		return "", false
	}
	// Series are ascending in time.
	lo, hi := 0, 0
	sum := 0.0
	for i, v := range s.vals {
		sum += v
		if v < s.vals[lo] {
			lo = i
		}
		if v > s.vals[hi] {
			hi = i
		}
	}
	switch name {
	case "AVG":
		return num(sum / float64(n))
	case "SUM":
		return num(sum)
	case "MAX":
		return num(s.vals[hi])
	case "MIN":
		return num(s.vals[lo])
	case "FIRST":
		return num(s.vals[0])
	case "LAST":
		return num(s.vals[n-1])
	case "FIRST_LAST_RANGE":
		return num(math.Abs(s.vals[n-1] - s.vals[0]))
	case "MIN_MAX_RANGE":
		return num(s.vals[hi] - s.vals[lo])
	case "FIRST_TIME":
		return at(0)
	case "LAST_TIME":
		return at(n - 1)
	case "MIN_TIME":
		return at(lo)
	case "MAX_TIME":
		return at(hi)
	}
	return "", false
}

// labelProp is ${PROP('…')}: a property of the metric a series was read
// from (empty for a series computed from several).
func (m *Monitor) labelProp(p string, s *tseries) (string, bool) {
	switch p {
	case "Region":
		return m.o.Region, true
	case "AccountId":
		return m.o.AccountID, true
	}
	if s.src == nil {
		switch p {
		case "MetricName", "Namespace", "Stat", "Period":
			return "", true
		}
		if strings.HasPrefix(p, "Dim.") {
			return "", true
		}
		return "", false
	}
	switch p {
	case "MetricName":
		return s.src.metric.Name, true
	case "Namespace":
		return s.src.metric.Namespace, true
	case "Stat":
		return s.src.stat, true
	case "Period":
		return strconv.FormatInt(s.src.period, 10), true
	}
	if d, ok := strings.CutPrefix(p, "Dim."); ok {
		v, _ := s.src.metric.Dimension(d)
		return v, true
	}
	return "", false
}
