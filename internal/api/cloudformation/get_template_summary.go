package cloudformation

import (
	"context"
	"encoding/json"
	"encoding/xml"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/cfn"
)

type parameterDeclarationXML struct {
	ParameterKey         string `xml:"ParameterKey"`
	DefaultValue         string `xml:"DefaultValue,omitempty"`
	ParameterType        string `xml:"ParameterType"`
	NoEcho               bool   `xml:"NoEcho"`
	Description          string `xml:"Description,omitempty"`
	ParameterConstraints struct {
		AllowedValues []string `xml:"AllowedValues>member,omitempty"`
	} `xml:"ParameterConstraints"`
}

type resourceIdentifierSummaryXML struct {
	ResourceType        string   `xml:"ResourceType"`
	LogicalResourceIDs  []string `xml:"LogicalResourceIds>member"`
	ResourceIdentifiers []string `xml:"ResourceIdentifiers>member"`
}

type getTemplateSummaryResult struct {
	XMLName                     xml.Name                       `xml:"GetTemplateSummaryResult"`
	Parameters                  []parameterDeclarationXML      `xml:"Parameters>member"`
	Description                 string                         `xml:"Description,omitempty"`
	Capabilities                []string                       `xml:"Capabilities>member"`
	ResourceTypes               []string                       `xml:"ResourceTypes>member"`
	Version                     string                         `xml:"Version,omitempty"`
	Metadata                    string                         `xml:"Metadata,omitempty"`
	DeclaredTransforms          []string                       `xml:"DeclaredTransforms>member"`
	ResourceIdentifierSummaries []resourceIdentifierSummaryXML `xml:"ResourceIdentifierSummaries>member"`
}

var identifiers = map[string]string{
	"AWS::EFS::FileSystem": "FileSystemId", "AWS::EFS::MountTarget": "Id", "AWS::EFS::AccessPoint": "AccessPointId",
	"AWS::KMS::Key": "KeyId", "AWS::KMS::Alias": "AliasName", "AWS::EC2::SecurityGroup": "Id", "AWS::EC2::SecurityGroupIngress": "Id",
}

func (h *Handler) getTemplateSummary(ctx context.Context, p params) (any, error) {
	if p.get("StackSetName") != "" {
		return nil, awserr.Errorf(cfn.ErrStackSetNotFound, "StackSet %s not found", awsproto.Clip(p.get("StackSetName")))
	}
	body, err := p.template()
	if err != nil {
		return nil, err
	}
	sum, err := h.e.GetTemplateSummary(ctx, body, p.get("StackName"))
	if err != nil {
		return nil, err
	}
	t := sum.T
	r := getTemplateSummaryResult{Description: t.Description, Version: t.Version, ResourceTypes: sum.ResourceTypes,
		Parameters: []parameterDeclarationXML{}, Capabilities: []string{}, DeclaredTransforms: []string{}}
	if t.Metadata != nil {
		b, _ := json.Marshal(t.Metadata)
		r.Metadata = string(b)
	}
	for _, pd := range t.Parameters {
		x := parameterDeclarationXML{ParameterKey: pd.Name, ParameterType: pd.Type, NoEcho: pd.NoEcho, Description: pd.Description}
		if pd.Default != nil {
			x.DefaultValue = *pd.Default
		}
		x.ParameterConstraints.AllowedValues = pd.AllowedValues
		r.Parameters = append(r.Parameters, x)
	}
	byType := map[string]*resourceIdentifierSummaryXML{}
	for _, id := range t.ResourceIDs {
		typ := t.Resources[id].Type
		s := byType[typ]
		if s == nil {
			r.ResourceIdentifierSummaries = append(r.ResourceIdentifierSummaries, resourceIdentifierSummaryXML{ResourceType: typ, ResourceIdentifiers: []string{identifiers[typ]}})
			s = &r.ResourceIdentifierSummaries[len(r.ResourceIdentifierSummaries)-1]
			byType[typ] = s
		}
		s.LogicalResourceIDs = append(s.LogicalResourceIDs, id)
	}
	// byType holds pointers into the slice; rebuild after the appends.
	for i := range r.ResourceIdentifierSummaries {
		typ := r.ResourceIdentifierSummaries[i].ResourceType
		var ids []string
		for _, id := range t.ResourceIDs {
			if t.Resources[id].Type == typ {
				ids = append(ids, id)
			}
		}
		r.ResourceIdentifierSummaries[i].LogicalResourceIDs = ids
	}
	return r, nil
}
