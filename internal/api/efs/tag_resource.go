package efs

import "net/http"

// tagResource: POST /2015-02-01/resource-tags/{ResourceId} → 200, empty body.
func tagResource(c *call) error {
	id, b, err := c.labelAndBody("ResourceId", resourceIDRule)
	if err != nil {
		return err
	}
	tags, ok := b.tags("Tags")
	b.required("Tags", ok)
	if err := *b.err; err != nil {
		return err
	}
	if err := c.h.r.TagResource(c.req.Context(), id, tags); err != nil {
		return err
	}
	return c.noContent(http.StatusOK)
}
