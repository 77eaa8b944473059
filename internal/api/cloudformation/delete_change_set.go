package cloudformation

import (
	"context"
	"encoding/xml"
)

type deleteChangeSetResult struct {
	XMLName xml.Name `xml:"DeleteChangeSetResult"`
}

func (h *Handler) deleteChangeSet(ctx context.Context, p params) (any, error) {
	if err := h.e.DeleteChangeSet(ctx, p.get("ChangeSetName"), p.get("StackName")); err != nil {
		return nil, err
	}
	return deleteChangeSetResult{}, nil
}
