package cloudwatch

import (
	"fmt"
	"time"

	"github.com/regionfs/regionfs/internal/monitor"
)

// Shapes shared by several operations, named as in the CloudWatch model.

type dimension struct {
	Name  string `json:"Name"`
	Value string `json:"Value"`
}

func dimensionsIn(ds []dimension) []monitor.Dimension {
	out := make([]monitor.Dimension, len(ds))
	for i, d := range ds {
		out[i] = monitor.Dimension(d)
	}
	return out
}

func dimensionsOut(ds []monitor.Dimension) []dimension {
	out := make([]dimension, len(ds))
	for i, d := range ds {
		out[i] = dimension(d)
	}
	return out
}

type metric struct {
	Namespace  string      `json:"Namespace,omitempty"`
	MetricName string      `json:"MetricName,omitempty"`
	Dimensions []dimension `json:"Dimensions,omitempty"`
}

func (m metric) in() monitor.Metric {
	return monitor.Metric{Namespace: m.Namespace, Name: m.MetricName, Dimensions: dimensionsIn(m.Dimensions)}
}

func metricOut(m monitor.Metric) metric {
	return metric{Namespace: m.Namespace, MetricName: m.Name, Dimensions: dimensionsOut(m.Dimensions)}
}

type metricStat struct {
	Metric metric `json:"Metric"`
	Period int64  `json:"Period,omitempty"`
	Stat   string `json:"Stat,omitempty"`
	Unit   string `json:"Unit,omitempty"`
}

type metricDataQuery struct {
	ID         string      `json:"Id"`
	MetricStat *metricStat `json:"MetricStat,omitempty"`
	Expression string      `json:"Expression,omitempty"`
	Label      string      `json:"Label,omitempty"`
	ReturnData *bool       `json:"ReturnData,omitempty"`
	Period     int64       `json:"Period,omitempty"`
	AccountID  string      `json:"AccountId,omitempty"`
}

func queriesIn(qs []metricDataQuery) []monitor.MetricQuery {
	out := make([]monitor.MetricQuery, len(qs))
	for i, q := range qs {
		out[i] = monitor.MetricQuery{ID: q.ID, Label: q.Label, ReturnData: q.ReturnData, Period: q.Period, Expression: q.Expression}
		if s := q.MetricStat; s != nil {
			out[i].Stat = &monitor.MetricStat{Metric: s.Metric.in(), Period: s.Period, Stat: s.Stat, Unit: s.Unit}
		}
	}
	return out
}

func queriesOut(qs []monitor.MetricQuery) []metricDataQuery {
	if qs == nil {
		return nil
	}
	out := make([]metricDataQuery, len(qs))
	for i, q := range qs {
		rd := q.ReturnData == nil || *q.ReturnData
		out[i] = metricDataQuery{ID: q.ID, Label: q.Label, ReturnData: &rd, Period: q.Period, Expression: q.Expression}
		if s := q.Stat; s != nil {
			out[i].MetricStat = &metricStat{Metric: metricOut(s.Metric), Period: s.Period, Stat: s.Stat, Unit: s.Unit}
		}
	}
	return out
}

type tag struct {
	Key   string  `json:"Key"`
	Value *string `json:"Value"`
}

// tagsIn converts the tags of the request; Value is required (it may be
// empty).
func tagsIn(ts []tag) ([]monitor.Tag, error) {
	out := make([]monitor.Tag, len(ts))
	for i, t := range ts {
		if t.Value == nil {
			return nil, &monitor.Error{Kind: monitor.ErrMissingParameter, Message: fmt.Sprintf("The parameter Tags.member.%d.Value is required.", i+1)}
		}
		out[i] = monitor.Tag{Key: t.Key, Value: *t.Value}
	}
	return out, nil
}

// given returns the value of an optional integer member and refuses one
// the request gave below the model's minimum: the member's zero value
// (what an absent member decodes to) may not be one the model allows.
func given[T int | int64](name string, v *T, minimum T) (T, error) {
	if v == nil {
		return 0, nil
	}
	if *v < minimum {
		return 0, &monitor.Error{Kind: monitor.ErrInvalidParameterValue, Message: fmt.Sprintf("The value %d for parameter %s must be at least %d.", *v, name, minimum)}
	}
	return *v, nil
}

// metricAlarm is the MetricAlarm shape.
type metricAlarm struct {
	AlarmName                          string            `json:"AlarmName"`
	AlarmArn                           string            `json:"AlarmArn"`
	AlarmDescription                   string            `json:"AlarmDescription,omitempty"`
	AlarmConfigurationUpdatedTimestamp time.Time         `json:"AlarmConfigurationUpdatedTimestamp"`
	ActionsEnabled                     bool              `json:"ActionsEnabled"`
	OKActions                          []string          `json:"OKActions"`
	AlarmActions                       []string          `json:"AlarmActions"`
	InsufficientDataActions            []string          `json:"InsufficientDataActions"`
	StateValue                         string            `json:"StateValue"`
	StateReason                        string            `json:"StateReason,omitempty"`
	StateReasonData                    string            `json:"StateReasonData,omitempty"`
	StateUpdatedTimestamp              time.Time         `json:"StateUpdatedTimestamp"`
	MetricName                         string            `json:"MetricName,omitempty"`
	Namespace                          string            `json:"Namespace,omitempty"`
	Statistic                          string            `json:"Statistic,omitempty"`
	ExtendedStatistic                  string            `json:"ExtendedStatistic,omitempty"`
	Dimensions                         []dimension       `json:"Dimensions"`
	Period                             int64             `json:"Period,omitempty"`
	Unit                               string            `json:"Unit,omitempty"`
	EvaluationPeriods                  int               `json:"EvaluationPeriods"`
	DatapointsToAlarm                  int               `json:"DatapointsToAlarm"`
	Threshold                          float64           `json:"Threshold"`
	ComparisonOperator                 string            `json:"ComparisonOperator"`
	TreatMissingData                   string            `json:"TreatMissingData,omitempty"`
	EvaluateLowSampleCountPercentile   string            `json:"EvaluateLowSampleCountPercentile,omitempty"`
	Metrics                            []metricDataQuery `json:"Metrics,omitempty"`
	StateTransitionedTimestamp         time.Time         `json:"StateTransitionedTimestamp"`
}

func alarmOut(a monitor.Alarm) metricAlarm {
	out := metricAlarm{
		AlarmName: a.Name, AlarmArn: a.ARN, AlarmDescription: a.Description, AlarmConfigurationUpdatedTimestamp: a.ConfigUpdated,
		ActionsEnabled: a.ActionsEnabled, OKActions: nonNil(a.OKActions), AlarmActions: nonNil(a.AlarmActions),
		InsufficientDataActions: nonNil(a.InsufficientDataActions), StateValue: a.State, StateReason: a.StateReason,
		StateReasonData: a.StateReasonData, StateUpdatedTimestamp: a.StateUpdated, Statistic: a.Statistic,
		ExtendedStatistic: a.ExtendedStatistic, Dimensions: []dimension{}, Unit: a.Unit,
		EvaluationPeriods: a.EvaluationPeriods, DatapointsToAlarm: a.DatapointsToAlarm, Threshold: a.Threshold,
		ComparisonOperator: a.ComparisonOperator, TreatMissingData: a.TreatMissingData,
		EvaluateLowSampleCountPercentile: a.EvaluateLowSampleCountPercentile, Metrics: queriesOut(a.Metrics),
		StateTransitionedTimestamp: a.StateTransitioned,
	}
	if a.Metrics == nil {
		out.MetricName, out.Namespace, out.Period = a.Metric.Name, a.Metric.Namespace, a.Period
		out.Dimensions = dimensionsOut(a.Metric.Dimensions)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
