package efs

import (
	"net/http"

	"github.com/regionfs/regionfs/internal/control"
)

type listTagsOutput struct {
	Tags      []tagJSON `json:"Tags"`
	NextToken string    `json:"NextToken,omitempty"`
}

// listTagsForResource: GET /2015-02-01/resource-tags/{ResourceId}?MaxResults&NextToken.
func listTagsForResource(c *call) error {
	id, err := c.label("ResourceId", resourceIDRule)
	if err != nil {
		return err
	}
	var p control.Page
	if p.Max, err = c.queryInt("MaxResults"); err != nil {
		return err
	}
	if p.Marker, err = c.queryString("NextToken", markerRule); err != nil {
		return err
	}
	tags, next, err := c.h.r.ListTagsForResource(c.req.Context(), id, p)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, listTagsOutput{Tags: tagsJSON(tags), NextToken: next})
}
