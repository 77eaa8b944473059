package cloudformation

import (
	"context"
	"encoding/xml"
)

type describeStacksResult struct {
	XMLName   xml.Name   `xml:"DescribeStacksResult"`
	Stacks    []stackXML `xml:"Stacks>member"`
	NextToken string     `xml:"NextToken,omitempty"`
}

func (h *Handler) describeStacks(ctx context.Context, p params) (any, error) {
	ss, next, err := h.e.DescribeStacks(ctx, p.get("StackName"), p.get("NextToken"))
	if err != nil {
		return nil, err
	}
	r := describeStacksResult{NextToken: next, Stacks: []stackXML{}}
	for _, s := range ss {
		r.Stacks = append(r.Stacks, stackShape(s))
	}
	return r, nil
}
