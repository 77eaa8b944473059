package efs

import "net/http"

// deleteTags (deprecated): POST /2015-02-01/delete-tags/{FileSystemId} → 204.
func deleteTags(c *call) error {
	id, b, err := c.labelAndBody("FileSystemId", fileSystemIDRule)
	if err != nil {
		return err
	}
	raw, ok := b.strings("TagKeys")
	b.required("TagKeys", ok)
	if err := *b.err; err != nil {
		return err
	}
	keys, err := c.tagKeys(raw)
	if err != nil {
		return err
	}
	if err := c.h.r.DeleteTags(c.req.Context(), id, keys); err != nil {
		return err
	}
	return c.noContent(http.StatusNoContent)
}
