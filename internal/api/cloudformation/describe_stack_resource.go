package cloudformation

import (
	"context"
	"encoding/xml"
)

type describeStackResourceResult struct {
	XMLName             xml.Name         `xml:"DescribeStackResourceResult"`
	StackResourceDetail stackResourceXML `xml:"StackResourceDetail"`
}

func (h *Handler) describeStackResource(ctx context.Context, p params) (any, error) {
	if p.get("LogicalResourceId") == "" {
		return nil, validationf("1 validation error detected: Value null at 'logicalResourceId' failed to satisfy constraint: Member must not be null")
	}
	x, err := h.e.DescribeStackResource(ctx, p.get("StackName"), p.get("LogicalResourceId"))
	if err != nil {
		return nil, err
	}
	return describeStackResourceResult{StackResourceDetail: stackResourceXML{
		StackName: x.StackName, StackID: x.StackID, LogicalResourceID: x.LogicalID, PhysicalResourceID: x.PhysicalID,
		ResourceType: x.Type, LastUpdatedTimestamp: ts(x.Updated), ResourceStatus: x.Status, ResourceStatusReason: x.Reason,
		Metadata: x.Metadata, DriftInformation: notChecked(),
	}}, nil
}
