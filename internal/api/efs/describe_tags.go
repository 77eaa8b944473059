package efs

import (
	"net/http"

	"github.com/regionfs/regionfs/internal/control"
)

type describeTagsOutput struct {
	Marker     string    `json:"Marker,omitempty"`
	Tags       []tagJSON `json:"Tags"`
	NextMarker string    `json:"NextMarker,omitempty"`
}

// describeTags (deprecated): GET /2015-02-01/tags/{FileSystemId}/?MaxItems&Marker.
func describeTags(c *call) error {
	id, err := c.label("FileSystemId", fileSystemIDRule)
	if err != nil {
		return err
	}
	var p control.Page
	if p.Max, err = c.queryInt("MaxItems"); err != nil {
		return err
	}
	if p.Marker, err = c.queryString("Marker", markerRule); err != nil {
		return err
	}
	tags, next, err := c.h.r.DescribeTags(c.req.Context(), id, p)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, describeTagsOutput{Marker: p.Marker, Tags: tagsJSON(tags), NextMarker: next})
}
