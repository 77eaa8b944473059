package efs

import (
	"context"
	"net/http"

	"github.com/regionfs/regionfs/internal/control"
)

// createTags (deprecated): POST /2015-02-01/create-tags/{FileSystemId} → 204.
func createTags(c *call) error {
	return c.addTags("FileSystemId", fileSystemIDRule, c.h.r.CreateTags, http.StatusNoContent)
}

// addTags reads the Tags of a request on the resource named by the path
// label name, adds them with add and answers status with no body.
func (c *call) addTags(name string, ru rule, add func(ctx context.Context, ref string, tags []control.Tag) error, status int) error {
	id, b, err := c.labelAndBody(name, ru)
	if err != nil {
		return err
	}
	tags, ok := b.tags("Tags")
	b.required("Tags", ok)
	if err := *b.err; err != nil {
		return err
	}
	if err := add(c.req.Context(), id, tags); err != nil {
		return err
	}
	return c.noContent(status)
}
