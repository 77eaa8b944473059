package sns

import (
	"context"

	"github.com/regionfs/regionfs/internal/monitor/notify"
)

type messageAttributeValue struct {
	DataType    string `json:"DataType"`
	StringValue string `json:"StringValue"`
	BinaryValue []byte `json:"BinaryValue"`
}

type publishInput struct {
	TopicArn               string                           `json:"TopicArn"`
	TargetArn              string                           `json:"TargetArn"`
	PhoneNumber            string                           `json:"PhoneNumber"`
	Message                string                           `json:"Message"`
	Subject                string                           `json:"Subject"`
	MessageStructure       string                           `json:"MessageStructure"`
	MessageAttributes      map[string]messageAttributeValue `json:"MessageAttributes"`
	MessageDeduplicationID string                           `json:"MessageDeduplicationId"`
	MessageGroupID         string                           `json:"MessageGroupId"`
}

type publishOutput struct {
	MessageID string `json:"MessageId"`
}

// publish: Publish.
func publish(ctx context.Context, c *call) (any, error) {
	var in publishInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	attrs := map[string]notify.MessageAttribute{}
	for k, v := range in.MessageAttributes {
		attrs[k] = notify.MessageAttribute(v)
	}
	id, err := c.h.s.Publish(ctx, notify.PublishInput{TopicARN: in.TopicArn, TargetARN: in.TargetArn, PhoneNumber: in.PhoneNumber,
		Message: in.Message, Subject: in.Subject, MessageStructure: in.MessageStructure, MessageAttributes: attrs,
		MessageGroupID: in.MessageGroupID, DeduplicationID: in.MessageDeduplicationID})
	if err != nil {
		return nil, err
	}
	return &publishOutput{MessageID: id}, nil
}
