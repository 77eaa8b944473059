package efs

import (
	"net/http"

	"github.com/regionfs/regionfs/internal/control"
)

type describeAccessPointsOutput struct {
	AccessPoints []accessPointJSON `json:"AccessPoints"`
	NextToken    string            `json:"NextToken,omitempty"`
}

// describeAccessPoints: GET /2015-02-01/access-points?MaxResults&NextToken&AccessPointId&FileSystemId.
func describeAccessPoints(c *call) error {
	var q control.AccessPointQuery
	var err error
	if q.Max, err = c.queryInt("MaxResults"); err != nil {
		return err
	}
	if q.Marker, err = c.queryString("NextToken", markerRule); err != nil {
		return err
	}
	if q.AccessPointID, err = c.queryString("AccessPointId", accessPointIDRule); err != nil {
		return err
	}
	if q.FileSystemID, err = c.queryString("FileSystemId", fileSystemIDRule); err != nil {
		return err
	}
	aps, next, err := c.h.r.DescribeAccessPoints(c.req.Context(), q)
	if err != nil {
		return err
	}
	out := describeAccessPointsOutput{AccessPoints: make([]accessPointJSON, len(aps)), NextToken: next}
	for i, a := range aps {
		out.AccessPoints[i] = accessPointOut(a)
	}
	return c.reply(http.StatusOK, out)
}
