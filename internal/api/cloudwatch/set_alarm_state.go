package cloudwatch

import "context"

type setAlarmStateInput struct {
	AlarmName       string `json:"AlarmName"`
	StateValue      string `json:"StateValue"`
	StateReason     string `json:"StateReason"`
	StateReasonData string `json:"StateReasonData"`
}

// setAlarmState: SetAlarmState.
func setAlarmState(ctx context.Context, c *call) (any, error) {
	var in setAlarmStateInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	return nil, c.h.m.SetAlarmState(ctx, in.AlarmName, in.StateValue, in.StateReason, in.StateReasonData)
}
