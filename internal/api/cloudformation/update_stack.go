package cloudformation

import (
	"context"
	"encoding/xml"
)

type updateStackResult struct {
	XMLName xml.Name `xml:"UpdateStackResult"`
	StackID string   `xml:"StackId"`
}

func (h *Handler) updateStack(ctx context.Context, p params) (any, error) {
	in, err := p.stackInput()
	if err != nil {
		return nil, err
	}
	if p.has("OnFailure") || p.has("EnableTerminationProtection") {
		return nil, validationf("OnFailure and EnableTerminationProtection are not parameters of UpdateStack")
	}
	id, err := h.e.UpdateStack(ctx, in)
	if err != nil {
		return nil, err
	}
	h.settle(ctx, id)
	return updateStackResult{StackID: id}, nil
}
