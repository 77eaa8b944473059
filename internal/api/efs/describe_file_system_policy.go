package efs

import "net/http"

// describeFileSystemPolicy: GET /2015-02-01/file-systems/{FileSystemId}/policy.
func describeFileSystemPolicy(c *call) error {
	id, err := c.label("FileSystemId", fileSystemIDRule)
	if err != nil {
		return err
	}
	got, err := c.h.r.DescribeFileSystemPolicy(c.req.Context(), id)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, fileSystemPolicyJSON{FileSystemID: got.FileSystemID, Policy: got.Policy})
}
