package cloudwatch

import "context"

type listTagsForResourceInput struct {
	ResourceARN string `json:"ResourceARN"`
}

type listTagsForResourceOutput struct {
	Tags []tag `json:"Tags"`
}

// listTagsForResource: ListTagsForResource.
func listTagsForResource(ctx context.Context, c *call) (any, error) {
	var in listTagsForResourceInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	tags, err := c.h.m.ListTagsForResource(ctx, in.ResourceARN)
	if err != nil {
		return nil, err
	}
	out := listTagsForResourceOutput{Tags: []tag{}}
	for _, t := range tags {
		out.Tags = append(out.Tags, tag{Key: t.Key, Value: &t.Value})
	}
	return &out, nil
}
