package cloudwatch

import (
	"context"
	"time"
)

type listDashboardsInput struct {
	DashboardNamePrefix string `json:"DashboardNamePrefix"`
	NextToken           string `json:"NextToken"`
}

type dashboardEntry struct {
	DashboardName string    `json:"DashboardName"`
	DashboardArn  string    `json:"DashboardArn"`
	LastModified  time.Time `json:"LastModified"`
	Size          int64     `json:"Size"`
}

type listDashboardsOutput struct {
	DashboardEntries []dashboardEntry `json:"DashboardEntries"`
	NextToken        string           `json:"NextToken,omitempty"`
}

// listDashboards: ListDashboards (1000 a page).
func listDashboards(ctx context.Context, c *call) (any, error) {
	var in listDashboardsInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	list, next, err := c.h.m.ListDashboards(ctx, in.DashboardNamePrefix, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := listDashboardsOutput{DashboardEntries: []dashboardEntry{}, NextToken: next}
	for _, d := range list {
		out.DashboardEntries = append(out.DashboardEntries, dashboardEntry{DashboardName: d.Name, DashboardArn: d.ARN, LastModified: d.Modified, Size: d.SizeBytes})
	}
	return &out, nil
}
