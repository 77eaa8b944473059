package cloudwatch

import "context"

type tagResourceInput struct {
	ResourceARN string `json:"ResourceARN"`
	Tags        []tag  `json:"Tags"`
}

// tagResource: TagResource (alarms).
func tagResource(ctx context.Context, c *call) (any, error) {
	var in tagResourceInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	tags, err := tagsIn(in.Tags)
	if err != nil {
		return nil, err
	}
	if err := c.h.m.TagResource(ctx, in.ResourceARN, tags); err != nil {
		return nil, err
	}
	return &struct{}{}, nil
}
