package cloudwatch

import "context"

type deleteDashboardsInput struct {
	DashboardNames []string `json:"DashboardNames"`
}

// deleteDashboards: DeleteDashboards (all or nothing).
func deleteDashboards(ctx context.Context, c *call) (any, error) {
	var in deleteDashboardsInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if err := c.h.m.DeleteDashboards(ctx, in.DashboardNames); err != nil {
		return nil, err
	}
	return &struct{}{}, nil // an empty DeleteDashboardsResult (query)
}
