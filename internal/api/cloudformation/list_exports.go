package cloudformation

import (
	"context"
	"encoding/xml"
)

type exportXML struct {
	ExportingStackID string `xml:"ExportingStackId"`
	Name             string `xml:"Name"`
	Value            string `xml:"Value"`
}

type listExportsResult struct {
	XMLName   xml.Name    `xml:"ListExportsResult"`
	Exports   []exportXML `xml:"Exports>member"`
	NextToken string      `xml:"NextToken,omitempty"`
}

func (h *Handler) listExports(ctx context.Context, p params) (any, error) {
	xs, next, err := h.e.ListExports(ctx, p.get("NextToken"))
	if err != nil {
		return nil, err
	}
	r := listExportsResult{NextToken: next, Exports: []exportXML{}}
	for _, x := range xs {
		r.Exports = append(r.Exports, exportXML{x.StackID, x.Name, x.Value})
	}
	return r, nil
}
