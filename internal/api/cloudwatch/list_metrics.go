package cloudwatch

import (
	"context"

	"github.com/regionfs/regionfs/internal/monitor"
)

type dimensionFilter struct {
	Name  string `json:"Name"`
	Value string `json:"Value"`
}

type listMetricsInput struct {
	Namespace             string            `json:"Namespace"`
	MetricName            string            `json:"MetricName"`
	Dimensions            []dimensionFilter `json:"Dimensions"`
	NextToken             string            `json:"NextToken"`
	RecentlyActive        string            `json:"RecentlyActive"`
	IncludeLinkedAccounts bool              `json:"IncludeLinkedAccounts"`
	OwningAccount         string            `json:"OwningAccount"`
}

type listMetricsOutput struct {
	Metrics   []metric `json:"Metrics"`
	NextToken string   `json:"NextToken,omitempty"`
}

// listMetrics: ListMetrics.
func listMetrics(ctx context.Context, c *call) (any, error) {
	var in listMetricsInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	q := monitor.ListQuery{Namespace: in.Namespace, MetricName: in.MetricName, RecentlyActive: in.RecentlyActive, NextToken: in.NextToken}
	for _, d := range in.Dimensions {
		q.Dimensions = append(q.Dimensions, monitor.Dimension(d))
	}
	ms, next, err := c.h.m.ListMetrics(ctx, q)
	if err != nil {
		return nil, err
	}
	out := listMetricsOutput{Metrics: []metric{}, NextToken: next}
	for _, m := range ms {
		o := metricOut(m)
		o.Dimensions = dimensionsOut(m.Dimensions)
		out.Metrics = append(out.Metrics, o)
	}
	return &out, nil
}
