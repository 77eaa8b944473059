package efs

import "net/http"

// createTags (deprecated): POST /2015-02-01/create-tags/{FileSystemId} → 204.
func createTags(c *call) error {
	id, b, err := c.labelAndBody("FileSystemId", fileSystemIDRule)
	if err != nil {
		return err
	}
	tags, ok := b.tags("Tags")
	b.required("Tags", ok)
	if err := *b.err; err != nil {
		return err
	}
	if err := c.h.r.CreateTags(c.req.Context(), id, tags); err != nil {
		return err
	}
	return c.noContent(http.StatusNoContent)
}
