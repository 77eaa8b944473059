package efs

import (
	"net/http"

	"github.com/regionfs/regionfs/internal/control"
)

type describeMountTargetsOutput struct {
	Marker       string            `json:"Marker,omitempty"`
	MountTargets []mountTargetJSON `json:"MountTargets"`
	NextMarker   string            `json:"NextMarker,omitempty"`
}

// describeMountTargets: GET /2015-02-01/mount-targets?MaxItems&Marker&FileSystemId&MountTargetId&AccessPointId.
func describeMountTargets(c *call) error {
	var q control.MountTargetQuery
	var err error
	if q.Max, err = c.queryInt("MaxItems"); err != nil {
		return err
	}
	if q.Marker, err = c.queryString("Marker", markerRule); err != nil {
		return err
	}
	if q.FileSystemID, err = c.queryString("FileSystemId", fileSystemIDRule); err != nil {
		return err
	}
	if q.MountTargetID, err = c.queryString("MountTargetId", mountTargetIDRule); err != nil {
		return err
	}
	if q.AccessPointID, err = c.queryString("AccessPointId", accessPointIDRule); err != nil {
		return err
	}
	mts, next, err := c.h.r.DescribeMountTargets(c.req.Context(), q)
	if err != nil {
		return err
	}
	out := describeMountTargetsOutput{Marker: q.Marker, MountTargets: make([]mountTargetJSON, len(mts)), NextMarker: next}
	for i, m := range mts {
		out.MountTargets[i] = mountTargetOut(m)
	}
	return c.reply(http.StatusOK, out)
}
