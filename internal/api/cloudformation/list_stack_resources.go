package cloudformation

import (
	"context"
	"encoding/xml"
)

type listStackResourcesResult struct {
	XMLName                xml.Name           `xml:"ListStackResourcesResult"`
	StackResourceSummaries []stackResourceXML `xml:"StackResourceSummaries>member"`
	NextToken              string             `xml:"NextToken,omitempty"`
}

func (h *Handler) listStackResources(ctx context.Context, p params) (any, error) {
	rs, next, err := h.e.ListStackResources(ctx, p.get("StackName"), p.get("NextToken"))
	if err != nil {
		return nil, err
	}
	r := listStackResourcesResult{NextToken: next, StackResourceSummaries: []stackResourceXML{}}
	for _, x := range rs {
		r.StackResourceSummaries = append(r.StackResourceSummaries, stackResourceXML{
			LogicalResourceID: x.LogicalID, PhysicalResourceID: x.PhysicalID, ResourceType: x.Type,
			LastUpdatedTimestamp: ts(x.Updated), ResourceStatus: x.Status, ResourceStatusReason: x.Reason,
			DriftInformation: notChecked(),
		})
	}
	return r, nil
}
