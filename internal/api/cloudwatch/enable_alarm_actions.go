package cloudwatch

import "context"

// enableAlarmActions: EnableAlarmActions.
func enableAlarmActions(ctx context.Context, c *call) (any, error) {
	var in alarmNamesInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	return nil, c.h.m.SetAlarmActions(ctx, in.AlarmNames, true)
}
