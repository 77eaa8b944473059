package cloudformation

import (
	"context"
	"encoding/xml"
)

type describeStackResourcesResult struct {
	XMLName        xml.Name           `xml:"DescribeStackResourcesResult"`
	StackResources []stackResourceXML `xml:"StackResources>member"`
}

func (h *Handler) describeStackResources(ctx context.Context, p params) (any, error) {
	if p.get("StackName") != "" && p.get("PhysicalResourceId") != "" {
		return nil, validationf("Cannot specify both StackName and PhysicalResourceId")
	}
	rs, err := h.e.DescribeStackResources(ctx, p.get("StackName"), p.get("LogicalResourceId"), p.get("PhysicalResourceId"))
	if err != nil {
		return nil, err
	}
	r := describeStackResourcesResult{StackResources: []stackResourceXML{}}
	for _, x := range rs {
		r.StackResources = append(r.StackResources, stackResourceXML{
			StackName: x.StackName, StackID: x.StackID, LogicalResourceID: x.LogicalID, PhysicalResourceID: x.PhysicalID,
			ResourceType: x.Type, Timestamp: ts(x.Updated), ResourceStatus: x.Status, ResourceStatusReason: x.Reason,
			DriftInformation: notChecked(),
		})
	}
	return r, nil
}
