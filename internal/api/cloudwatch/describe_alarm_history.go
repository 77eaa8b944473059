package cloudwatch

import (
	"context"
	"time"

	"github.com/regionfs/regionfs/internal/monitor"
)

type describeAlarmHistoryInput struct {
	AlarmName          string    `json:"AlarmName"`
	AlarmContributorID string    `json:"AlarmContributorId"`
	AlarmTypes         []string  `json:"AlarmTypes"`
	HistoryItemType    string    `json:"HistoryItemType"`
	StartDate          time.Time `json:"StartDate"`
	EndDate            time.Time `json:"EndDate"`
	MaxRecords         *int      `json:"MaxRecords"`
	NextToken          string    `json:"NextToken"`
	ScanBy             string    `json:"ScanBy"`
}

type alarmHistoryItem struct {
	AlarmName       string    `json:"AlarmName"`
	AlarmType       string    `json:"AlarmType"`
	Timestamp       time.Time `json:"Timestamp"`
	HistoryItemType string    `json:"HistoryItemType"`
	HistorySummary  string    `json:"HistorySummary"`
	HistoryData     string    `json:"HistoryData,omitempty"`
}

type describeAlarmHistoryOutput struct {
	AlarmHistoryItems []alarmHistoryItem `json:"AlarmHistoryItems"`
	NextToken         string             `json:"NextToken,omitempty"`
}

// describeAlarmHistory: DescribeAlarmHistory.
func describeAlarmHistory(ctx context.Context, c *call) (any, error) {
	var in describeAlarmHistoryInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if in.AlarmContributorID != "" {
		return nil, &monitor.Error{Kind: monitor.ErrInvalidParameterValue, Message: "AlarmContributorId applies to multi-time-series alarms, which regionfs does not have."}
	}
	maxRecords, err := given("MaxRecords", in.MaxRecords, 1)
	if err != nil {
		return nil, err
	}
	items, next, err := c.h.m.DescribeAlarmHistory(ctx, monitor.HistoryQuery{AlarmName: in.AlarmName, AlarmTypes: in.AlarmTypes, Type: in.HistoryItemType,
		Start: in.StartDate, End: in.EndDate, MaxRecords: maxRecords, NextToken: in.NextToken, ScanBy: in.ScanBy})
	if err != nil {
		return nil, err
	}
	out := describeAlarmHistoryOutput{AlarmHistoryItems: []alarmHistoryItem{}, NextToken: next}
	for _, it := range items {
		typ := monitor.TypeMetric
		if it.AlarmType != "" {
			typ = it.AlarmType
		}
		out.AlarmHistoryItems = append(out.AlarmHistoryItems, alarmHistoryItem{AlarmName: it.AlarmName, AlarmType: typ,
			Timestamp: it.Timestamp, HistoryItemType: it.Type, HistorySummary: it.Summary, HistoryData: it.Data})
	}
	return &out, nil
}
