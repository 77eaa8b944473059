package cloudwatch

import "context"

type getDashboardInput struct {
	DashboardName string `json:"DashboardName"`
}

type getDashboardOutput struct {
	DashboardArn  string `json:"DashboardArn"`
	DashboardBody string `json:"DashboardBody"`
	DashboardName string `json:"DashboardName"`
}

// getDashboard: GetDashboard.
func getDashboard(ctx context.Context, c *call) (any, error) {
	var in getDashboardInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	d, err := c.h.m.GetDashboard(ctx, in.DashboardName)
	if err != nil {
		return nil, err
	}
	return &getDashboardOutput{DashboardArn: d.ARN, DashboardBody: d.Body, DashboardName: d.Name}, nil
}
