package cloudformation

import (
	"context"
	"encoding/xml"
)

type templateParameterXML struct {
	ParameterKey string `xml:"ParameterKey"`
	DefaultValue string `xml:"DefaultValue,omitempty"`
	NoEcho       bool   `xml:"NoEcho"`
	Description  string `xml:"Description,omitempty"`
}

type validateTemplateResult struct {
	XMLName            xml.Name               `xml:"ValidateTemplateResult"`
	Parameters         []templateParameterXML `xml:"Parameters>member"`
	Description        string                 `xml:"Description,omitempty"`
	Capabilities       []string               `xml:"Capabilities>member"`
	DeclaredTransforms []string               `xml:"DeclaredTransforms>member"`
}

func (h *Handler) validateTemplate(_ context.Context, p params) (any, error) {
	body, err := p.template()
	if err != nil {
		return nil, err
	}
	t, err := h.e.ValidateTemplate(body)
	if err != nil {
		return nil, err
	}
	r := validateTemplateResult{Description: t.Description, Parameters: []templateParameterXML{}, Capabilities: []string{}, DeclaredTransforms: []string{}}
	for _, pd := range t.Parameters {
		x := templateParameterXML{ParameterKey: pd.Name, NoEcho: pd.NoEcho, Description: pd.Description}
		if pd.Default != nil {
			x.DefaultValue = *pd.Default
		}
		r.Parameters = append(r.Parameters, x)
	}
	return r, nil
}
