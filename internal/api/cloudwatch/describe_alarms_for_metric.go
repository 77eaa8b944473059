package cloudwatch

import (
	"context"

	"github.com/regionfs/regionfs/internal/monitor"
)

type describeAlarmsForMetricInput struct {
	MetricName        string      `json:"MetricName"`
	Namespace         string      `json:"Namespace"`
	Statistic         string      `json:"Statistic"`
	ExtendedStatistic string      `json:"ExtendedStatistic"`
	Dimensions        []dimension `json:"Dimensions"`
	Period            *int64      `json:"Period"`
	Unit              string      `json:"Unit"`
}

type describeAlarmsForMetricOutput struct {
	MetricAlarms []metricAlarm `json:"MetricAlarms"`
}

// describeAlarmsForMetric: DescribeAlarmsForMetric.
func describeAlarmsForMetric(ctx context.Context, c *call) (any, error) {
	var in describeAlarmsForMetricInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	period, err := given("Period", in.Period, 1)
	if err != nil {
		return nil, err
	}
	as, err := c.h.m.DescribeAlarmsForMetric(ctx, monitor.MetricAlarmFilter{
		Metric:    monitor.Metric{Namespace: in.Namespace, Name: in.MetricName, Dimensions: dimensionsIn(in.Dimensions)},
		Statistic: in.Statistic, ExtendedStatistic: in.ExtendedStatistic, Period: period, Unit: in.Unit})
	if err != nil {
		return nil, err
	}
	out := describeAlarmsForMetricOutput{MetricAlarms: []metricAlarm{}}
	for _, a := range as {
		out.MetricAlarms = append(out.MetricAlarms, alarmOut(a))
	}
	return &out, nil
}
