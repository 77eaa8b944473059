package cloudwatch

import "context"

type untagResourceInput struct {
	ResourceARN string   `json:"ResourceARN"`
	TagKeys     []string `json:"TagKeys"`
}

// untagResource: UntagResource.
func untagResource(ctx context.Context, c *call) (any, error) {
	var in untagResourceInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if err := c.h.m.UntagResource(ctx, in.ResourceARN, in.TagKeys); err != nil {
		return nil, err
	}
	return &struct{}{}, nil
}
