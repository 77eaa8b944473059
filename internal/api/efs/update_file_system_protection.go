package efs

import "net/http"

// updateFileSystemProtection: PUT /2015-02-01/file-systems/{FileSystemId}/protection → 200.
func updateFileSystemProtection(c *call) error {
	id, b, err := c.labelAndBody("FileSystemId", fileSystemIDRule)
	if err != nil {
		return err
	}
	var p *string
	if v, ok := b.str("ReplicationOverwriteProtection"); ok {
		p = &v
	}
	if err := *b.err; err != nil {
		return err
	}
	got, err := c.h.r.UpdateFileSystemProtection(c.req.Context(), id, p)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, protectionJSON{ReplicationOverwriteProtection: got})
}
