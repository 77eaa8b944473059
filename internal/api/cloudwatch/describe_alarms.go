package cloudwatch

import (
	"context"

	"github.com/regionfs/regionfs/internal/monitor"
)

type describeAlarmsInput struct {
	AlarmNames          []string `json:"AlarmNames"`
	AlarmNamePrefix     string   `json:"AlarmNamePrefix"`
	AlarmTypes          []string `json:"AlarmTypes"`
	ChildrenOfAlarmName string   `json:"ChildrenOfAlarmName"`
	ParentsOfAlarmName  string   `json:"ParentsOfAlarmName"`
	StateValue          string   `json:"StateValue"`
	ActionPrefix        string   `json:"ActionPrefix"`
	MaxRecords          *int     `json:"MaxRecords"`
	NextToken           string   `json:"NextToken"`
}

type describeAlarmsOutput struct {
	CompositeAlarms []compositeAlarm `json:"CompositeAlarms"`
	MetricAlarms    []metricAlarm    `json:"MetricAlarms"`
	NextToken       string           `json:"NextToken,omitempty"`
}

// describeAlarms: DescribeAlarms.
func describeAlarms(ctx context.Context, c *call) (any, error) {
	var in describeAlarmsInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	maxRecords, err := given("MaxRecords", in.MaxRecords, 1)
	if err != nil {
		return nil, err
	}
	list, err := c.h.m.DescribeAlarms(ctx, monitor.AlarmFilter{Names: in.AlarmNames, NamePrefix: in.AlarmNamePrefix, Types: in.AlarmTypes,
		ChildrenOfAlarmName: in.ChildrenOfAlarmName, ParentsOfAlarmName: in.ParentsOfAlarmName, State: in.StateValue,
		ActionPrefix: in.ActionPrefix, MaxRecords: maxRecords, NextToken: in.NextToken})
	if err != nil {
		return nil, err
	}
	out := describeAlarmsOutput{CompositeAlarms: []compositeAlarm{}, MetricAlarms: []metricAlarm{}, NextToken: list.NextToken}
	for _, a := range list.Metric {
		out.MetricAlarms = append(out.MetricAlarms, alarmOut(a))
	}
	for _, a := range list.Composite {
		out.CompositeAlarms = append(out.CompositeAlarms, compositeOut(a))
	}
	return &out, nil
}
