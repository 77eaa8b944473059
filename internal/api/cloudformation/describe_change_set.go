package cloudformation

import (
	"context"
	"encoding/xml"
)

type changeDetailXML struct {
	Target struct {
		Attribute          string `xml:"Attribute"`
		Name               string `xml:"Name"`
		RequiresRecreation string `xml:"RequiresRecreation"`
	} `xml:"Target"`
	Evaluation    string `xml:"Evaluation"`
	ChangeSource  string `xml:"ChangeSource"`
	CausingEntity string `xml:"CausingEntity,omitempty"`
}

type resourceChangeXML struct {
	Action             string            `xml:"Action"`
	LogicalResourceID  string            `xml:"LogicalResourceId"`
	PhysicalResourceID string            `xml:"PhysicalResourceId,omitempty"`
	ResourceType       string            `xml:"ResourceType"`
	Replacement        string            `xml:"Replacement,omitempty"`
	Scope              []string          `xml:"Scope>member"`
	Details            []changeDetailXML `xml:"Details>member"`
}

type changeXML struct {
	Type           string            `xml:"Type"`
	ResourceChange resourceChangeXML `xml:"ResourceChange"`
}

type describeChangeSetResult struct {
	XMLName          xml.Name       `xml:"DescribeChangeSetResult"`
	ChangeSetName    string         `xml:"ChangeSetName"`
	ChangeSetID      string         `xml:"ChangeSetId"`
	StackID          string         `xml:"StackId"`
	StackName        string         `xml:"StackName"`
	Description      string         `xml:"Description,omitempty"`
	Parameters       []parameterXML `xml:"Parameters>member"`
	CreationTime     string         `xml:"CreationTime"`
	ExecutionStatus  string         `xml:"ExecutionStatus"`
	Status           string         `xml:"Status"`
	StatusReason     string         `xml:"StatusReason,omitempty"`
	NotificationARNs []string       `xml:"NotificationARNs>member"`
	Capabilities     []string       `xml:"Capabilities>member"`
	Tags             []tagXML       `xml:"Tags>member"`
	Changes          []changeXML    `xml:"Changes>member"`
	OnStackFailure   string         `xml:"OnStackFailure,omitempty"`
	IncludeNested    bool           `xml:"IncludeNestedStacks"`
}

func (h *Handler) describeChangeSet(ctx context.Context, p params) (any, error) {
	c, err := h.e.DescribeChangeSet(ctx, p.get("ChangeSetName"), p.get("StackName"))
	if err != nil {
		return nil, err
	}
	r := describeChangeSetResult{ChangeSetName: c.Name, ChangeSetID: c.ID, StackID: c.StackID, StackName: c.StackName,
		Description: c.Description, CreationTime: ts(c.Created), ExecutionStatus: c.ExecutionStatus, Status: c.Status,
		StatusReason: c.Reason, NotificationARNs: c.NotificationARNs, Capabilities: c.Capabilities, Changes: []changeXML{},
		OnStackFailure: c.OnStackFailure}
	for _, pv := range c.Parameters {
		r.Parameters = append(r.Parameters, parameterXML{pv.Key, pv.Value})
	}
	for _, t := range c.Tags {
		r.Tags = append(r.Tags, tagXML{t.Key, t.Value})
	}
	for _, ch := range c.Changes {
		rc := resourceChangeXML{Action: ch.Action, LogicalResourceID: ch.LogicalID, PhysicalResourceID: ch.PhysicalID,
			ResourceType: ch.Type, Replacement: ch.Replacement, Scope: ch.Scope}
		for _, d := range ch.Details {
			var x changeDetailXML
			x.Target.Attribute, x.Target.Name, x.Target.RequiresRecreation = "Properties", d.Name, d.RequiresRecreation
			x.Evaluation, x.ChangeSource, x.CausingEntity = d.Evaluation, d.ChangeSource, d.CausingEntity
			rc.Details = append(rc.Details, x)
		}
		r.Changes = append(r.Changes, changeXML{Type: "Resource", ResourceChange: rc})
	}
	return r, nil
}
