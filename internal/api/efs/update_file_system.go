package efs

import (
	"net/http"

	"github.com/regionfs/regionfs/internal/control"
)

// updateFileSystem: PUT /2015-02-01/file-systems/{FileSystemId} → 202 FileSystemDescription.
func updateFileSystem(c *call) error {
	id, b, err := c.labelAndBody("FileSystemId", fileSystemIDRule)
	if err != nil {
		return err
	}
	in := control.UpdateFileSystemInput{FileSystemID: id}
	if v, ok := b.str("ThroughputMode"); ok {
		in.ThroughputMode = &v
	}
	if v, ok := b.number("ProvisionedThroughputInMibps"); ok {
		in.ProvisionedThroughputMibps = &v
	}
	if err := *b.err; err != nil {
		return err
	}
	fs, err := c.h.r.UpdateFileSystem(c.req.Context(), in)
	if err != nil {
		return err
	}
	return c.reply(http.StatusAccepted, fileSystemOut(fs))
}
