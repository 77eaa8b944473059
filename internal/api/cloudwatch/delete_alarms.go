package cloudwatch

import "context"

type alarmNamesInput struct {
	AlarmNames []string `json:"AlarmNames"`
}

// deleteAlarms: DeleteAlarms (all or nothing).
func deleteAlarms(ctx context.Context, c *call) (any, error) {
	var in alarmNamesInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	return nil, c.h.m.DeleteAlarms(ctx, in.AlarmNames)
}
