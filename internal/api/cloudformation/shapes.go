package cloudformation

import (
	"time"

	"github.com/regionfs/regionfs/internal/cfn"
)

// XML shapes shared by several operations.

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func optTS(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return ts(t)
}

type parameterXML struct {
	ParameterKey   string `xml:"ParameterKey"`
	ParameterValue string `xml:"ParameterValue"`
}

type tagXML struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type outputXML struct {
	OutputKey   string `xml:"OutputKey"`
	OutputValue string `xml:"OutputValue"`
	Description string `xml:"Description,omitempty"`
	ExportName  string `xml:"ExportName,omitempty"`
}

type driftXML struct {
	StackDriftStatus string `xml:"StackDriftStatus"`
}

type operationXML struct {
	OperationType string `xml:"OperationType"`
	OperationID   string `xml:"OperationId"`
}

type stackXML struct {
	StackID                     string         `xml:"StackId"`
	StackName                   string         `xml:"StackName"`
	ChangeSetID                 string         `xml:"ChangeSetId,omitempty"`
	Description                 string         `xml:"Description,omitempty"`
	Parameters                  []parameterXML `xml:"Parameters>member"`
	CreationTime                string         `xml:"CreationTime"`
	DeletionTime                string         `xml:"DeletionTime,omitempty"`
	LastUpdatedTime             string         `xml:"LastUpdatedTime,omitempty"`
	StackStatus                 string         `xml:"StackStatus"`
	StackStatusReason           string         `xml:"StackStatusReason,omitempty"`
	DisableRollback             bool           `xml:"DisableRollback"`
	NotificationARNs            []string       `xml:"NotificationARNs>member"`
	TimeoutInMinutes            int            `xml:"TimeoutInMinutes,omitempty"`
	Capabilities                []string       `xml:"Capabilities>member"`
	Outputs                     []outputXML    `xml:"Outputs>member"`
	RoleARN                     string         `xml:"RoleARN,omitempty"`
	Tags                        []tagXML       `xml:"Tags>member"`
	EnableTerminationProtection bool           `xml:"EnableTerminationProtection"`
	DriftInformation            driftXML       `xml:"DriftInformation"`
	LastOperations              []operationXML `xml:"LastOperations>member"`
}

func stackShape(s cfn.Stack) stackXML {
	x := stackXML{
		StackID: s.ID, StackName: s.Name, ChangeSetID: s.ChangeSetID, Description: s.Description,
		CreationTime: ts(s.Created), DeletionTime: optTS(s.Deleted), LastUpdatedTime: optTS(s.LastUpdated),
		StackStatus: s.Status, StackStatusReason: s.StatusReason, DisableRollback: s.DisableRollback,
		NotificationARNs: s.NotificationARNs, TimeoutInMinutes: s.TimeoutMinutes, Capabilities: s.Capabilities,
		RoleARN: s.RoleARN, EnableTerminationProtection: s.TerminationProtection,
		DriftInformation: driftXML{"NOT_CHECKED"},
	}
	for _, p := range s.Parameters {
		x.Parameters = append(x.Parameters, parameterXML{p.Key, p.Value})
	}
	for _, o := range s.Outputs {
		x.Outputs = append(x.Outputs, outputXML{o.Key, o.Value, o.Description, o.ExportName})
	}
	for _, t := range s.Tags {
		x.Tags = append(x.Tags, tagXML{t.Key, t.Value})
	}
	if s.LastOperationID != "" {
		x.LastOperations = []operationXML{{s.LastOperationType, s.LastOperationID}}
	}
	return x
}

type stackResourceXML struct {
	StackName            string `xml:"StackName,omitempty"`
	StackID              string `xml:"StackId,omitempty"`
	LogicalResourceID    string `xml:"LogicalResourceId"`
	PhysicalResourceID   string `xml:"PhysicalResourceId,omitempty"`
	ResourceType         string `xml:"ResourceType"`
	Timestamp            string `xml:"Timestamp,omitempty"`
	LastUpdatedTimestamp string `xml:"LastUpdatedTimestamp,omitempty"`
	ResourceStatus       string `xml:"ResourceStatus"`
	ResourceStatusReason string `xml:"ResourceStatusReason,omitempty"`
	Metadata             string `xml:"Metadata,omitempty"`
	DriftInformation     *struct {
		StackResourceDriftStatus string `xml:"StackResourceDriftStatus"`
	} `xml:"DriftInformation,omitempty"`
}

func notChecked() *struct {
	StackResourceDriftStatus string `xml:"StackResourceDriftStatus"`
} {
	return &struct {
		StackResourceDriftStatus string `xml:"StackResourceDriftStatus"`
	}{"NOT_CHECKED"}
}
