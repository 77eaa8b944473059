package cloudformation

import (
	"context"
	"encoding/xml"

	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/cfn"
)

type createChangeSetResult struct {
	XMLName xml.Name `xml:"CreateChangeSetResult"`
	ID      string   `xml:"Id"`
	StackID string   `xml:"StackId"`
}

func (h *Handler) createChangeSet(ctx context.Context, p params) (any, error) {
	si, err := p.stackInput()
	if err != nil {
		return nil, err
	}
	if si.ClientRequestToken != "" || p.has("OnFailure") || p.has("EnableTerminationProtection") || p.has("DisableRollback") || p.has("TimeoutInMinutes") {
		return nil, validationf("CreateChangeSet does not take ClientRequestToken, OnFailure, EnableTerminationProtection, DisableRollback or TimeoutInMinutes")
	}
	if len(p.get("ClientToken")) > 128 {
		return nil, validationf("1 validation error detected: Value at 'clientToken' failed to satisfy constraint: Member must have length less than or equal to 128")
	}
	if p.has("ResourcesToImport.member.1.LogicalResourceId") {
		return nil, validationf("ResourcesToImport is not supported: resources cannot be imported into stacks here.")
	}
	if b, _ := p.boolean("IncludeNestedStacks"); b {
		return nil, validationf("IncludeNestedStacks is not supported: there are no nested stacks here.")
	}
	if p.get("DeploymentMode") != "" {
		return nil, validationf("DeploymentMode %s is not supported.", awsproto.Clip(p.get("DeploymentMode")))
	}
	in := cfn.ChangeSetInput{StackInput: si, ChangeSetName: p.get("ChangeSetName"), ChangeSetType: p.get("ChangeSetType"),
		Description: p.get("Description"), ClientToken: p.get("ClientToken"), OnStackFailure: p.get("OnStackFailure")}
	id, stackID, err := h.e.CreateChangeSet(ctx, in)
	if err != nil {
		return nil, err
	}
	return createChangeSetResult{ID: id, StackID: stackID}, nil
}
