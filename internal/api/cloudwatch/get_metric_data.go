package cloudwatch

import (
	"context"
	"time"

	"github.com/regionfs/regionfs/internal/monitor"
)

type getMetricDataInput struct {
	MetricDataQueries []metricDataQuery `json:"MetricDataQueries"`
	StartTime         time.Time         `json:"StartTime"`
	EndTime           time.Time         `json:"EndTime"`
	NextToken         string            `json:"NextToken"`
	ScanBy            string            `json:"ScanBy"`
	MaxDatapoints     int               `json:"MaxDatapoints"`
	LabelOptions      *struct {
		Timezone string `json:"Timezone"`
	} `json:"LabelOptions"`
}

type messageData struct {
	Code  string `json:"Code"`
	Value string `json:"Value"`
}

type metricDataResult struct {
	ID         string        `json:"Id"`
	Label      string        `json:"Label"`
	Timestamps []time.Time   `json:"Timestamps"`
	Values     []float64     `json:"Values"`
	StatusCode string        `json:"StatusCode"`
	Messages   []messageData `json:"Messages,omitempty"`
}

type getMetricDataOutput struct {
	MetricDataResults []metricDataResult `json:"MetricDataResults"`
	NextToken         string             `json:"NextToken,omitempty"`
	Messages          []messageData      `json:"Messages"`
}

// getMetricData: GetMetricData (MetricStat queries and metric math).
func getMetricData(ctx context.Context, c *call) (any, error) {
	var in getMetricDataInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	rs, next, err := c.h.m.GetMetricData(ctx, monitor.DataQuery{Queries: queriesIn(in.MetricDataQueries), Start: in.StartTime, End: in.EndTime,
		ScanBy: in.ScanBy, MaxDatapoints: in.MaxDatapoints, NextToken: in.NextToken})
	if err != nil {
		return nil, err
	}
	out := getMetricDataOutput{MetricDataResults: []metricDataResult{}, NextToken: next, Messages: []messageData{}}
	for _, r := range rs {
		out.MetricDataResults = append(out.MetricDataResults, metricDataResult{ID: r.ID, Label: r.Label, Timestamps: r.Timestamps, Values: r.Values, StatusCode: r.StatusCode})
	}
	return &out, nil
}
