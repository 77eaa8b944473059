package efs

import "net/http"

// deleteAccessPoint: DELETE /2015-02-01/access-points/{AccessPointId} → 204.
func deleteAccessPoint(c *call) error {
	id, err := c.label("AccessPointId", accessPointIDRule)
	if err != nil {
		return err
	}
	if err := c.h.r.DeleteAccessPoint(c.req.Context(), id); err != nil {
		return err
	}
	return c.noContent(http.StatusNoContent)
}
