package monitor

import (
	"context"
	"strconv"
	"time"
)

// ListQuery is a ListMetrics request.
type ListQuery struct {
	Namespace  string
	MetricName string
	// Dimensions filter: a metric must have each name (with that value
	// when Value is not empty).
	Dimensions     []Dimension
	RecentlyActive string // "" or PT3H
	NextToken      string
}

// ListPage is how many metrics ListMetrics returns at once.
const ListPage = 500

// ListMetrics lists the metrics with data in the last two weeks (three
// hours with RecentlyActive PT3H) that match the filters, in a stable
// order, ListPage at a time.
func (m *Monitor) ListMetrics(ctx context.Context, q ListQuery) ([]Metric, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if q.Namespace != "" {
		if err := checkName("Namespace", q.Namespace, 255); err != nil {
			return nil, "", err
		}
	}
	if q.MetricName != "" {
		if err := checkName("MetricName", q.MetricName, 255); err != nil {
			return nil, "", err
		}
	}
	if len(q.Dimensions) > 10 {
		return nil, "", invalid("The collection Dimensions must not have more than 10 members.")
	}
	for i, d := range q.Dimensions {
		if err := checkName("Dimensions.member."+strconv.Itoa(i+1)+".Name", d.Name, 255); err != nil {
			return nil, "", err
		}
		if len(d.Value) > 1024 {
			return nil, "", invalid("The value of Dimensions.member.%d.Value must be at most 1024 characters long.", i+1)
		}
	}
	window := listWindow
	switch q.RecentlyActive {
	case "":
	case "PT3H":
		window = 3 * time.Hour
	default:
		return nil, "", invalid("The value %s for parameter RecentlyActive is invalid: it must be PT3H.", clip(q.RecentlyActive))
	}
	after, err := decodeToken(tokenMetrics, q.NextToken)
	if err != nil {
		return nil, "", err
	}
	var out []Metric
	next := ""
	for _, s := range m.store.metrics(m.o.Clock().Add(-window)) {
		mt := s.Metric
		if (q.Namespace != "" && mt.Namespace != q.Namespace) || (q.MetricName != "" && mt.Name != q.MetricName) || !hasDimensions(mt, q.Dimensions) {
			continue
		}
		if after != "" && mt.key() <= after {
			continue
		}
		if len(out) == ListPage {
			next = encodeToken(tokenMetrics, out[len(out)-1].key())
			break
		}
		out = append(out, mt)
	}
	return out, next, nil
}

func hasDimensions(m Metric, filter []Dimension) bool {
	for _, f := range filter {
		v, ok := m.Dimension(f.Name)
		if !ok || (f.Value != "" && v != f.Value) {
			return false
		}
	}
	return true
}
