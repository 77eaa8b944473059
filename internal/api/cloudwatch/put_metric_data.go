package cloudwatch

import (
	"context"
	"strconv"
	"time"

	"github.com/regionfs/regionfs/internal/monitor"
)

type statisticSet struct {
	SampleCount *float64 `json:"SampleCount"`
	Sum         *float64 `json:"Sum"`
	Minimum     *float64 `json:"Minimum"`
	Maximum     *float64 `json:"Maximum"`
}

type metricDatum struct {
	MetricName        string        `json:"MetricName"`
	Dimensions        []dimension   `json:"Dimensions"`
	Timestamp         time.Time     `json:"Timestamp"`
	Value             *float64      `json:"Value"`
	StatisticValues   *statisticSet `json:"StatisticValues"`
	Values            []float64     `json:"Values"`
	Counts            []float64     `json:"Counts"`
	Unit              string        `json:"Unit"`
	StorageResolution *int          `json:"StorageResolution"`
}

type putMetricDataInput struct {
	Namespace        string        `json:"Namespace"`
	MetricData       []metricDatum `json:"MetricData"`
	EntityMetricData []any         `json:"EntityMetricData"`
}

// putMetricData: PutMetricData (standard and high resolution).
func putMetricData(ctx context.Context, c *call) (any, error) {
	var in putMetricDataInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if len(in.EntityMetricData) > 0 {
		return nil, &monitor.Error{Kind: monitor.ErrInvalidParameterValue, Message: "EntityMetricData is not supported by regionfs; use MetricData."}
	}
	data := make([]monitor.Datum, len(in.MetricData))
	for i, d := range in.MetricData {
		resolution, err := given("MetricData.member."+strconv.Itoa(i+1)+".StorageResolution", d.StorageResolution, 1)
		if err != nil {
			return nil, err
		}
		data[i] = monitor.Datum{Metric: monitor.Metric{Name: d.MetricName, Dimensions: dimensionsIn(d.Dimensions)}, Timestamp: d.Timestamp,
			Unit: d.Unit, Resolution: resolution, Value: d.Value, Values: d.Values, Counts: d.Counts}
		if s := d.StatisticValues; s != nil {
			p := "MetricData.member." + strconv.Itoa(i+1) + ".StatisticValues."
			for _, f := range []struct {
				name string
				v    *float64
			}{{"SampleCount", s.SampleCount}, {"Sum", s.Sum}, {"Minimum", s.Minimum}, {"Maximum", s.Maximum}} {
				if f.v == nil {
					return nil, &monitor.Error{Kind: monitor.ErrMissingParameter, Message: "The parameter " + p + f.name + " is required."}
				}
			}
			data[i].Stats = &monitor.StatisticSet{SampleCount: *s.SampleCount, Sum: *s.Sum, Minimum: *s.Minimum, Maximum: *s.Maximum}
		}
		if d.Values != nil && len(d.Values) == 0 {
			data[i].Values = nil
		}
	}
	if in.MetricData == nil {
		data = nil
	}
	return nil, c.h.m.PutMetricData(ctx, in.Namespace, data)
}
