package cloudwatch

import (
	"context"
	"time"

	"github.com/regionfs/regionfs/internal/monitor"
)

type getMetricStatisticsInput struct {
	Namespace          string      `json:"Namespace"`
	MetricName         string      `json:"MetricName"`
	Dimensions         []dimension `json:"Dimensions"`
	StartTime          time.Time   `json:"StartTime"`
	EndTime            time.Time   `json:"EndTime"`
	Period             int64       `json:"Period"`
	Statistics         []string    `json:"Statistics"`
	ExtendedStatistics []string    `json:"ExtendedStatistics"`
	Unit               string      `json:"Unit"`
}

type datapoint struct {
	Timestamp          time.Time          `json:"Timestamp"`
	SampleCount        *float64           `json:"SampleCount,omitempty"`
	Average            *float64           `json:"Average,omitempty"`
	Sum                *float64           `json:"Sum,omitempty"`
	Minimum            *float64           `json:"Minimum,omitempty"`
	Maximum            *float64           `json:"Maximum,omitempty"`
	Unit               string             `json:"Unit"`
	ExtendedStatistics map[string]float64 `json:"ExtendedStatistics,omitempty"`
}

type getMetricStatisticsOutput struct {
	Label      string      `json:"Label"`
	Datapoints []datapoint `json:"Datapoints"`
}

// getMetricStatistics: GetMetricStatistics.
func getMetricStatistics(ctx context.Context, c *call) (any, error) {
	var in getMetricStatisticsInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	dps, err := c.h.m.GetMetricStatistics(ctx, monitor.StatisticsQuery{
		Metric: monitor.Metric{Namespace: in.Namespace, Name: in.MetricName, Dimensions: dimensionsIn(in.Dimensions)},
		Start:  in.StartTime, End: in.EndTime, Period: in.Period, Statistics: in.Statistics, ExtendedStatistics: in.ExtendedStatistics, Unit: in.Unit,
	})
	if err != nil {
		return nil, err
	}
	out := getMetricStatisticsOutput{Label: in.MetricName, Datapoints: []datapoint{}}
	for _, dp := range dps {
		d := datapoint{Timestamp: dp.Timestamp, Unit: dp.Unit, ExtendedStatistics: dp.Extended}
		for s, v := range dp.Values {
			v := v
			switch s {
			case monitor.SampleCount:
				d.SampleCount = &v
			case monitor.Average:
				d.Average = &v
			case monitor.Sum:
				d.Sum = &v
			case monitor.Minimum:
				d.Minimum = &v
			case monitor.Maximum:
				d.Maximum = &v
			}
		}
		out.Datapoints = append(out.Datapoints, d)
	}
	return &out, nil
}
