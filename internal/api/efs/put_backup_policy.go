package efs

import "net/http"

// putBackupPolicy: PUT /2015-02-01/file-systems/{FileSystemId}/backup-policy → 200.
func putBackupPolicy(c *call) error {
	id, b, err := c.labelAndBody("FileSystemId", fileSystemIDRule)
	if err != nil {
		return err
	}
	p, ok := b.objectAt("BackupPolicy")
	b.required("BackupPolicy", ok)
	var status string
	if ok {
		var has bool
		status, has = p.str("Status")
		p.required("Status", has)
	}
	if err := *b.err; err != nil {
		return err
	}
	got, err := c.h.r.PutBackupPolicy(c.req.Context(), id, status)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, backupOut(got))
}
