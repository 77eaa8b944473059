package cloudformation

import (
	"context"
	"encoding/xml"
)

type createStackResult struct {
	XMLName     xml.Name `xml:"CreateStackResult"`
	StackID     string   `xml:"StackId"`
	OperationID string   `xml:"OperationId,omitempty"`
}

func (h *Handler) createStack(ctx context.Context, p params) (any, error) {
	in, err := p.stackInput()
	if err != nil {
		return nil, err
	}
	if in.UsePreviousTemplate {
		return nil, validationf("UsePreviousTemplate cannot be used to create a stack")
	}
	id, err := h.e.CreateStack(ctx, in)
	if err != nil {
		return nil, err
	}
	h.settle(ctx, id)
	return createStackResult{StackID: id}, nil
}
