package efs

import "net/http"

// modifyMountTargetSecurityGroups: PUT /2015-02-01/mount-targets/{MountTargetId}/security-groups → 204.
func modifyMountTargetSecurityGroups(c *call) error {
	id, b, err := c.labelAndBody("MountTargetId", mountTargetIDRule)
	if err != nil {
		return err
	}
	sgs := securityGroups(b)
	if err := *b.err; err != nil {
		return err
	}
	if err := c.h.r.ModifyMountTargetSecurityGroups(c.req.Context(), id, sgs); err != nil {
		return err
	}
	return c.noContent(http.StatusNoContent)
}
