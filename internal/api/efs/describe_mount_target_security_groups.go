package efs

import "net/http"

type securityGroupsJSON struct {
	SecurityGroups []string `json:"SecurityGroups"`
}

// describeMountTargetSecurityGroups: GET /2015-02-01/mount-targets/{MountTargetId}/security-groups.
func describeMountTargetSecurityGroups(c *call) error {
	id, err := c.label("MountTargetId", mountTargetIDRule)
	if err != nil {
		return err
	}
	sgs, err := c.h.r.DescribeMountTargetSecurityGroups(c.req.Context(), id)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, securityGroupsJSON{SecurityGroups: sgs})
}
