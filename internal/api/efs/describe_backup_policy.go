package efs

import "net/http"

// describeBackupPolicy: GET /2015-02-01/file-systems/{FileSystemId}/backup-policy.
func describeBackupPolicy(c *call) error {
	id, err := c.label("FileSystemId", fileSystemIDRule)
	if err != nil {
		return err
	}
	got, err := c.h.r.DescribeBackupPolicy(c.req.Context(), id)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, backupOut(got))
}
