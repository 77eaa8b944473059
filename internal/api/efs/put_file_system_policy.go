package efs

import "net/http"

// putFileSystemPolicy: PUT /2015-02-01/file-systems/{FileSystemId}/policy → 200.
func putFileSystemPolicy(c *call) error {
	id, b, err := c.labelAndBody("FileSystemId", fileSystemIDRule)
	if err != nil {
		return err
	}
	policy, ok := b.str("Policy")
	b.required("Policy", ok)
	b.check("Policy", policy, policyRule)
	bypass, _ := b.boolean("BypassPolicyLockoutSafetyCheck")
	if err := *b.err; err != nil {
		return err
	}
	got, err := c.h.r.PutFileSystemPolicy(c.req.Context(), id, policy, bypass)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, fileSystemPolicyJSON{FileSystemID: got.FileSystemID, Policy: got.Policy})
}
