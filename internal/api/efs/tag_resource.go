package efs

import "net/http"

// tagResource: POST /2015-02-01/resource-tags/{ResourceId} → 200, empty body.
func tagResource(c *call) error {
	return c.addTags("ResourceId", resourceIDRule, c.h.r.TagResource, http.StatusOK)
}
