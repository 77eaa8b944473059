package cloudformation

import (
	"context"
	"encoding/xml"
)

type stackEventXML struct {
	StackID              string `xml:"StackId"`
	EventID              string `xml:"EventId"`
	StackName            string `xml:"StackName"`
	OperationID          string `xml:"OperationId,omitempty"`
	LogicalResourceID    string `xml:"LogicalResourceId"`
	PhysicalResourceID   string `xml:"PhysicalResourceId"`
	ResourceType         string `xml:"ResourceType"`
	Timestamp            string `xml:"Timestamp"`
	ResourceStatus       string `xml:"ResourceStatus"`
	ResourceStatusReason string `xml:"ResourceStatusReason,omitempty"`
	ResourceProperties   string `xml:"ResourceProperties,omitempty"`
	ClientRequestToken   string `xml:"ClientRequestToken,omitempty"`
}

type describeStackEventsResult struct {
	XMLName     xml.Name        `xml:"DescribeStackEventsResult"`
	StackEvents []stackEventXML `xml:"StackEvents>member"`
	NextToken   string          `xml:"NextToken,omitempty"`
}

func (h *Handler) describeStackEvents(ctx context.Context, p params) (any, error) {
	evs, next, err := h.e.DescribeStackEvents(ctx, p.get("StackName"), p.get("NextToken"))
	if err != nil {
		return nil, err
	}
	r := describeStackEventsResult{NextToken: next, StackEvents: []stackEventXML{}}
	for _, ev := range evs {
		r.StackEvents = append(r.StackEvents, stackEventXML{
			StackID: ev.StackID, EventID: ev.ID, StackName: ev.StackName, OperationID: ev.OperationID,
			LogicalResourceID: ev.LogicalID, PhysicalResourceID: ev.PhysicalID, ResourceType: ev.Type,
			Timestamp: ts(ev.Time), ResourceStatus: ev.Status, ResourceStatusReason: ev.Reason,
			ResourceProperties: ev.Properties, ClientRequestToken: ev.ClientRequestToken,
		})
	}
	return r, nil
}
