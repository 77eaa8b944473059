package sns

import (
	"context"

	"github.com/regionfs/regionfs/internal/monitor/notify"
)

type tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

type createTopicInput struct {
	Name                 string            `json:"Name"`
	Attributes           map[string]string `json:"Attributes"`
	Tags                 []tag             `json:"Tags"`
	DataProtectionPolicy string            `json:"DataProtectionPolicy"`
}

type topicARNOutput struct {
	TopicArn string `json:"TopicArn"`
}

// createTopic: CreateTopic (idempotent for the same name and attributes).
func createTopic(ctx context.Context, c *call) (any, error) {
	var in createTopicInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if in.DataProtectionPolicy != "" {
		return nil, &notify.Error{Kind: notify.ErrInvalidParameter, Message: "Invalid parameter: DataProtectionPolicy is not supported by regionfs"}
	}
	tags := make([]notify.Tag, len(in.Tags))
	for i, t := range in.Tags {
		tags[i] = notify.Tag(t)
	}
	arn, err := c.h.s.CreateTopic(ctx, in.Name, in.Attributes, tags)
	if err != nil {
		return nil, err
	}
	return &topicARNOutput{TopicArn: arn}, nil
}

type topicARNInput struct {
	TopicArn  string `json:"TopicArn"`
	NextToken string `json:"NextToken"`
}

// deleteTopic: DeleteTopic.
func deleteTopic(ctx context.Context, c *call) (any, error) {
	var in topicARNInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	return nil, c.h.s.DeleteTopic(ctx, in.TopicArn)
}

type listTopicsOutput struct {
	Topics    []topicARNOutput `json:"Topics"`
	NextToken string           `json:"NextToken,omitempty"`
}

// listTopics: ListTopics.
func listTopics(ctx context.Context, c *call) (any, error) {
	var in topicARNInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	arns, next, err := c.h.s.ListTopics(ctx, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := listTopicsOutput{Topics: []topicARNOutput{}, NextToken: next}
	for _, a := range arns {
		out.Topics = append(out.Topics, topicARNOutput{a})
	}
	return &out, nil
}

type attributesOutput struct {
	Attributes map[string]string `json:"Attributes"`
}

// getTopicAttributes: GetTopicAttributes.
func getTopicAttributes(ctx context.Context, c *call) (any, error) {
	var in topicARNInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	attrs, err := c.h.s.GetTopicAttributes(ctx, in.TopicArn)
	if err != nil {
		return nil, err
	}
	return &attributesOutput{Attributes: attrs}, nil
}

type setTopicAttributesInput struct {
	TopicArn       string `json:"TopicArn"`
	AttributeName  string `json:"AttributeName"`
	AttributeValue string `json:"AttributeValue"`
}

// setTopicAttributes: SetTopicAttributes.
func setTopicAttributes(ctx context.Context, c *call) (any, error) {
	var in setTopicAttributesInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	return nil, c.h.s.SetTopicAttributes(ctx, in.TopicArn, in.AttributeName, in.AttributeValue)
}
