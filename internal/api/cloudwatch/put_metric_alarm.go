package cloudwatch

import (
	"context"

	"github.com/regionfs/regionfs/internal/monitor"
)

type putMetricAlarmInput struct {
	AlarmName                        string            `json:"AlarmName"`
	AlarmDescription                 string            `json:"AlarmDescription"`
	ActionsEnabled                   *bool             `json:"ActionsEnabled"`
	OKActions                        []string          `json:"OKActions"`
	AlarmActions                     []string          `json:"AlarmActions"`
	InsufficientDataActions          []string          `json:"InsufficientDataActions"`
	MetricName                       string            `json:"MetricName"`
	Namespace                        string            `json:"Namespace"`
	Statistic                        string            `json:"Statistic"`
	ExtendedStatistic                string            `json:"ExtendedStatistic"`
	Dimensions                       []dimension       `json:"Dimensions"`
	Period                           int64             `json:"Period"`
	Unit                             string            `json:"Unit"`
	EvaluationPeriods                int               `json:"EvaluationPeriods"`
	DatapointsToAlarm                *int              `json:"DatapointsToAlarm"`
	Threshold                        *float64          `json:"Threshold"`
	ComparisonOperator               string            `json:"ComparisonOperator"`
	TreatMissingData                 string            `json:"TreatMissingData"`
	EvaluateLowSampleCountPercentile string            `json:"EvaluateLowSampleCountPercentile"`
	Metrics                          []metricDataQuery `json:"Metrics"`
	Tags                             []tag             `json:"Tags"`
	ThresholdMetricID                string            `json:"ThresholdMetricId"`
	EvaluationCriteria               any               `json:"EvaluationCriteria"`
	EvaluationInterval               int               `json:"EvaluationInterval"`
}

// putMetricAlarm: PutMetricAlarm.
func putMetricAlarm(ctx context.Context, c *call) (any, error) {
	var in putMetricAlarmInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if in.EvaluationCriteria != nil || in.EvaluationInterval != 0 {
		return nil, &monitor.Error{Kind: monitor.ErrInvalidParameterValue, Message: "EvaluationCriteria and EvaluationInterval (PromQL alarms) are not supported by regionfs."}
	}
	datapoints, err := given("DatapointsToAlarm", in.DatapointsToAlarm, 1)
	if err != nil {
		return nil, err
	}
	tags, err := tagsIn(in.Tags)
	if err != nil {
		return nil, err
	}
	a := monitor.AlarmInput{
		Name: in.AlarmName, Description: in.AlarmDescription, ActionsEnabled: in.ActionsEnabled, OKActions: in.OKActions,
		AlarmActions: in.AlarmActions, InsufficientDataActions: in.InsufficientDataActions,
		Metric:    monitor.Metric{Namespace: in.Namespace, Name: in.MetricName, Dimensions: dimensionsIn(in.Dimensions)},
		Statistic: in.Statistic, ExtendedStatistic: in.ExtendedStatistic, Period: in.Period, Unit: in.Unit,
		EvaluationPeriods: in.EvaluationPeriods, DatapointsToAlarm: datapoints, Threshold: in.Threshold,
		ComparisonOperator: in.ComparisonOperator, TreatMissingData: in.TreatMissingData,
		EvaluateLowSampleCountPercentile: in.EvaluateLowSampleCountPercentile, ThresholdMetricID: in.ThresholdMetricID,
		Tags: tags,
	}
	if len(in.Metrics) > 0 {
		a.Metrics = queriesIn(in.Metrics)
	}
	return nil, c.h.m.PutMetricAlarm(ctx, a)
}
