package cloudformation

import (
	"context"
	"encoding/xml"
)

type changeSetSummaryXML struct {
	StackID         string `xml:"StackId"`
	StackName       string `xml:"StackName"`
	ChangeSetID     string `xml:"ChangeSetId"`
	ChangeSetName   string `xml:"ChangeSetName"`
	ExecutionStatus string `xml:"ExecutionStatus"`
	Status          string `xml:"Status"`
	StatusReason    string `xml:"StatusReason,omitempty"`
	CreationTime    string `xml:"CreationTime"`
	Description     string `xml:"Description,omitempty"`
	IncludeNested   bool   `xml:"IncludeNestedStacks"`
}

type listChangeSetsResult struct {
	XMLName   xml.Name              `xml:"ListChangeSetsResult"`
	Summaries []changeSetSummaryXML `xml:"Summaries>member"`
	NextToken string                `xml:"NextToken,omitempty"`
}

func (h *Handler) listChangeSets(ctx context.Context, p params) (any, error) {
	cs, next, err := h.e.ListChangeSets(ctx, p.get("StackName"), p.get("NextToken"))
	if err != nil {
		return nil, err
	}
	r := listChangeSetsResult{NextToken: next, Summaries: []changeSetSummaryXML{}}
	for _, c := range cs {
		r.Summaries = append(r.Summaries, changeSetSummaryXML{StackID: c.StackID, StackName: c.StackName, ChangeSetID: c.ID,
			ChangeSetName: c.Name, ExecutionStatus: c.ExecutionStatus, Status: c.Status, StatusReason: c.Reason,
			CreationTime: ts(c.Created), Description: c.Description})
	}
	return r, nil
}
