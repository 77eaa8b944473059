package cloudformation

import (
	"context"
	"encoding/xml"
)

type executeChangeSetResult struct {
	XMLName xml.Name `xml:"ExecuteChangeSetResult"`
}

func (h *Handler) executeChangeSet(ctx context.Context, p params) (any, error) {
	disable, err := p.boolean("DisableRollback")
	if err != nil {
		return nil, err
	}
	id, err := h.e.ExecuteChangeSet(ctx, p.get("ChangeSetName"), p.get("StackName"), p.get("ClientRequestToken"), disable)
	if err != nil {
		return nil, err
	}
	h.settle(ctx, id)
	return executeChangeSetResult{}, nil
}
