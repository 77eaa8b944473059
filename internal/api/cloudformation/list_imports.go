package cloudformation

import (
	"context"
	"encoding/xml"
)

type listImportsResult struct {
	XMLName   xml.Name `xml:"ListImportsResult"`
	Imports   []string `xml:"Imports>member"`
	NextToken string   `xml:"NextToken,omitempty"`
}

func (h *Handler) listImports(ctx context.Context, p params) (any, error) {
	if p.get("ExportName") == "" {
		return nil, validationf("1 validation error detected: Value null at 'exportName' failed to satisfy constraint: Member must not be null")
	}
	names, next, err := h.e.ListImports(ctx, p.get("ExportName"), p.get("NextToken"))
	if err != nil {
		return nil, err
	}
	return listImportsResult{Imports: names, NextToken: next}, nil
}
