package cloudformation

import (
	"context"
	"encoding/xml"

	"github.com/regionfs/regionfs/internal/api/awsproto"
)

type getTemplateResult struct {
	XMLName         xml.Name `xml:"GetTemplateResult"`
	TemplateBody    string   `xml:"TemplateBody"`
	StagesAvailable []string `xml:"StagesAvailable>member"`
}

func (h *Handler) getTemplate(ctx context.Context, p params) (any, error) {
	switch st := p.get("TemplateStage"); st {
	case "", "Original", "Processed":
	default:
		return nil, validationf("1 validation error detected: Value '%s' at 'templateStage' failed to satisfy constraint: Member must satisfy enum value set: [Original, Processed]", awsproto.Clip(st))
	}
	if p.get("StackName") == "" && p.get("ChangeSetName") == "" {
		return nil, validationf("Either StackName or ChangeSetName must be specified.")
	}
	body, err := h.e.GetTemplate(ctx, p.get("StackName"), p.get("ChangeSetName"))
	if err != nil {
		return nil, err
	}
	return getTemplateResult{TemplateBody: body, StagesAvailable: []string{"Original", "Processed"}}, nil
}
