package efs

import (
	"fmt"
	"net/http"

	"github.com/regionfs/regionfs/internal/control"
)

// putLifecycleConfiguration: PUT /2015-02-01/file-systems/{FileSystemId}/lifecycle-configuration → 200.
func putLifecycleConfiguration(c *call) error {
	id, b, err := c.labelAndBody("FileSystemId", fileSystemIDRule)
	if err != nil {
		return err
	}
	l, ok := b.list("LifecyclePolicies")
	b.required("LifecyclePolicies", ok)
	if len(l) > maxLifecycle {
		b.fail("1 validation error detected: Value at 'lifecyclePolicies' failed to satisfy constraint: Member must have length less than or equal to %d.", maxLifecycle)
	}
	policies := make([]control.LifecyclePolicy, 0, len(l))
	for i, v := range l {
		p, ok := b.sub(v, fmt.Sprintf("lifecyclePolicies.%d.member", i+1))
		if !ok {
			break
		}
		var lp control.LifecyclePolicy
		lp.TransitionToIA, _ = p.str("TransitionToIA")
		lp.TransitionToPrimaryStorageClass, _ = p.str("TransitionToPrimaryStorageClass")
		lp.TransitionToArchive, _ = p.str("TransitionToArchive")
		policies = append(policies, lp)
	}
	if err := *b.err; err != nil {
		return err
	}
	got, err := c.h.r.PutLifecycleConfiguration(c.req.Context(), id, policies)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, lifecycleOut(got))
}
