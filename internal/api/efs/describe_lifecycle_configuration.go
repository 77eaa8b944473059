package efs

import "net/http"

// describeLifecycleConfiguration: GET /2015-02-01/file-systems/{FileSystemId}/lifecycle-configuration.
func describeLifecycleConfiguration(c *call) error {
	id, err := c.label("FileSystemId", fileSystemIDRule)
	if err != nil {
		return err
	}
	got, err := c.h.r.DescribeLifecycleConfiguration(c.req.Context(), id)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, lifecycleOut(got))
}
