package cloudformation

import (
	"context"
	"encoding/xml"
)

type updateTerminationProtectionResult struct {
	XMLName xml.Name `xml:"UpdateTerminationProtectionResult"`
	StackID string   `xml:"StackId"`
}

func (h *Handler) updateTerminationProtection(ctx context.Context, p params) (any, error) {
	if !p.has("EnableTerminationProtection") {
		return nil, validationf("1 validation error detected: Value null at 'enableTerminationProtection' failed to satisfy constraint: Member must not be null")
	}
	enable, err := p.boolean("EnableTerminationProtection")
	if err != nil {
		return nil, err
	}
	id, err := h.e.UpdateTerminationProtection(ctx, p.get("StackName"), enable)
	if err != nil {
		return nil, err
	}
	return updateTerminationProtectionResult{StackID: id}, nil
}
