package efs

import "net/http"

// deleteFileSystem: DELETE /2015-02-01/file-systems/{FileSystemId} → 204.
func deleteFileSystem(c *call) error {
	id, err := c.label("FileSystemId", fileSystemIDRule)
	if err != nil {
		return err
	}
	if err := c.h.r.DeleteFileSystem(c.req.Context(), id); err != nil {
		return err
	}
	return c.noContent(http.StatusNoContent)
}
