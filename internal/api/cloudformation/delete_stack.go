package cloudformation

import (
	"context"

	"github.com/regionfs/regionfs/internal/api/awsproto"
)

func (h *Handler) deleteStack(ctx context.Context, p params) (any, error) {
	name := p.get("StackName")
	retain, _, err := p.list("RetainResources")
	if err != nil {
		return nil, err
	}
	if m := p.get("DeletionMode"); m != "" && m != "STANDARD" {
		return nil, validationf("DeletionMode %s is not supported; use STANDARD.", awsproto.Clip(m))
	}
	if err := h.e.DeleteStack(ctx, name, retain, p.get("ClientRequestToken")); err != nil {
		return nil, err
	}
	if ss, _, err := h.e.DescribeStacks(ctx, name, ""); err == nil && len(ss) == 1 {
		h.settle(ctx, ss[0].ID)
	}
	return nil, nil
}
