package efs

import "net/http"

// deleteFileSystemPolicy: DELETE /2015-02-01/file-systems/{FileSystemId}/policy → 200.
func deleteFileSystemPolicy(c *call) error {
	id, err := c.label("FileSystemId", fileSystemIDRule)
	if err != nil {
		return err
	}
	if err := c.h.r.DeleteFileSystemPolicy(c.req.Context(), id); err != nil {
		return err
	}
	return c.noContent(http.StatusOK)
}
