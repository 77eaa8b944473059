package cloudwatch

import (
	"context"
	"time"

	"github.com/regionfs/regionfs/internal/monitor"
)

type putCompositeAlarmInput struct {
	AlarmName                        string   `json:"AlarmName"`
	AlarmDescription                 string   `json:"AlarmDescription"`
	ActionsEnabled                   *bool    `json:"ActionsEnabled"`
	OKActions                        []string `json:"OKActions"`
	AlarmActions                     []string `json:"AlarmActions"`
	InsufficientDataActions          []string `json:"InsufficientDataActions"`
	AlarmRule                        string   `json:"AlarmRule"`
	Tags                             []tag    `json:"Tags"`
	ActionsSuppressor                string   `json:"ActionsSuppressor"`
	ActionsSuppressorWaitPeriod      *int     `json:"ActionsSuppressorWaitPeriod"`
	ActionsSuppressorExtensionPeriod *int     `json:"ActionsSuppressorExtensionPeriod"`
}

// putCompositeAlarm: PutCompositeAlarm.
func putCompositeAlarm(ctx context.Context, c *call) (any, error) {
	var in putCompositeAlarmInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	tags, err := tagsIn(in.Tags)
	if err != nil {
		return nil, err
	}
	return nil, c.h.m.PutCompositeAlarm(ctx, monitor.CompositeInput{
		Name: in.AlarmName, Description: in.AlarmDescription, ActionsEnabled: in.ActionsEnabled, OKActions: in.OKActions,
		AlarmActions: in.AlarmActions, InsufficientDataActions: in.InsufficientDataActions, Rule: in.AlarmRule,
		ActionsSuppressor: in.ActionsSuppressor, SuppressorWaitPeriod: in.ActionsSuppressorWaitPeriod,
		SuppressorExtensionPeriod: in.ActionsSuppressorExtensionPeriod, Tags: tags,
	})
}

// compositeAlarm is the CompositeAlarm shape.
type compositeAlarm struct {
	ActionsEnabled                     bool       `json:"ActionsEnabled"`
	AlarmActions                       []string   `json:"AlarmActions"`
	AlarmArn                           string     `json:"AlarmArn"`
	AlarmConfigurationUpdatedTimestamp *time.Time `json:"AlarmConfigurationUpdatedTimestamp,omitempty"`
	AlarmDescription                   string     `json:"AlarmDescription,omitempty"`
	AlarmName                          string     `json:"AlarmName"`
	AlarmRule                          string     `json:"AlarmRule,omitempty"`
	InsufficientDataActions            []string   `json:"InsufficientDataActions"`
	OKActions                          []string   `json:"OKActions"`
	StateReason                        string     `json:"StateReason,omitempty"`
	StateReasonData                    string     `json:"StateReasonData,omitempty"`
	StateUpdatedTimestamp              time.Time  `json:"StateUpdatedTimestamp"`
	StateValue                         string     `json:"StateValue"`
	StateTransitionedTimestamp         *time.Time `json:"StateTransitionedTimestamp,omitempty"`
	ActionsSuppressedBy                string     `json:"ActionsSuppressedBy,omitempty"`
	ActionsSuppressedReason            string     `json:"ActionsSuppressedReason,omitempty"`
	ActionsSuppressor                  string     `json:"ActionsSuppressor,omitempty"`
	ActionsSuppressorWaitPeriod        *int       `json:"ActionsSuppressorWaitPeriod,omitempty"`
	ActionsSuppressorExtensionPeriod   *int       `json:"ActionsSuppressorExtensionPeriod,omitempty"`
}

func compositeOut(a monitor.CompositeAlarm) compositeAlarm {
	out := compositeAlarm{
		ActionsEnabled: a.ActionsEnabled, AlarmActions: nonNil(a.AlarmActions), AlarmArn: a.ARN, AlarmDescription: a.Description,
		AlarmName: a.Name, AlarmRule: a.Rule, InsufficientDataActions: nonNil(a.InsufficientDataActions), OKActions: nonNil(a.OKActions),
		StateReason: a.StateReason, StateReasonData: a.StateReasonData, StateUpdatedTimestamp: a.StateUpdated, StateValue: a.State,
		ActionsSuppressedBy: a.ActionsSuppressedBy, ActionsSuppressedReason: a.ActionsSuppressedReason, ActionsSuppressor: a.ActionsSuppressor,
	}
	if !a.ConfigUpdated.IsZero() {
		out.AlarmConfigurationUpdatedTimestamp = &a.ConfigUpdated
	}
	if !a.StateTransitioned.IsZero() {
		out.StateTransitionedTimestamp = &a.StateTransitioned
	}
	if a.ActionsSuppressor != "" {
		out.ActionsSuppressorWaitPeriod, out.ActionsSuppressorExtensionPeriod = &a.SuppressorWaitPeriod, &a.SuppressorExtensionPeriod
	}
	return out
}
