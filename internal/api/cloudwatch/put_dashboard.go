package cloudwatch

import (
	"context"

	"github.com/regionfs/regionfs/internal/monitor"
)

type putDashboardInput struct {
	DashboardName string `json:"DashboardName"`
	DashboardBody string `json:"DashboardBody"`
	Tags          []tag  `json:"Tags"`
}

type dashboardValidationMessage struct {
	DataPath string `json:"DataPath,omitempty"`
	Message  string `json:"Message"`
}

type putDashboardOutput struct {
	DashboardValidationMessages []dashboardValidationMessage `json:"DashboardValidationMessages"`
}

// putDashboard: PutDashboard.
func putDashboard(ctx context.Context, c *call) (any, error) {
	var in putDashboardInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	tags, err := tagsIn(in.Tags)
	if err != nil {
		return nil, err
	}
	warnings, err := c.h.m.PutDashboard(ctx, monitor.DashboardInput{Name: in.DashboardName, Body: in.DashboardBody, Tags: tags})
	if err != nil {
		return nil, err
	}
	out := putDashboardOutput{DashboardValidationMessages: []dashboardValidationMessage{}}
	for _, w := range warnings {
		out.DashboardValidationMessages = append(out.DashboardValidationMessages, dashboardValidationMessage{DataPath: w.DataPath, Message: w.Message})
	}
	return &out, nil
}
