package efs

import "net/http"

// deleteMountTarget: DELETE /2015-02-01/mount-targets/{MountTargetId} → 204.
func deleteMountTarget(c *call) error {
	id, err := c.label("MountTargetId", mountTargetIDRule)
	if err != nil {
		return err
	}
	if err := c.h.r.DeleteMountTarget(c.req.Context(), id); err != nil {
		return err
	}
	return c.noContent(http.StatusNoContent)
}
