package sns

import (
	"context"

	"github.com/regionfs/regionfs/internal/monitor/notify"
)

type subscribeInput struct {
	TopicArn              string            `json:"TopicArn"`
	Protocol              string            `json:"Protocol"`
	Endpoint              string            `json:"Endpoint"`
	Attributes            map[string]string `json:"Attributes"`
	ReturnSubscriptionArn bool              `json:"ReturnSubscriptionArn"`
}

type subscriptionARNOutput struct {
	SubscriptionArn string `json:"SubscriptionArn"`
}

// subscribe: Subscribe (the confirmation goes out at once).
func subscribe(ctx context.Context, c *call) (any, error) {
	var in subscribeInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	arn, err := c.h.s.Subscribe(ctx, in.TopicArn, in.Protocol, in.Endpoint, in.Attributes, in.ReturnSubscriptionArn)
	if err != nil {
		return nil, err
	}
	return &subscriptionARNOutput{SubscriptionArn: arn}, nil
}

type confirmSubscriptionInput struct {
	TopicArn                  string `json:"TopicArn"`
	Token                     string `json:"Token"`
	AuthenticateOnUnsubscribe string `json:"AuthenticateOnUnsubscribe"`
}

type confirmSubscriptionOutput struct {
	SubscriptionArn string `json:"SubscriptionArn"`
}

// confirmSubscription: ConfirmSubscription (signed; the unsigned
// SubscribeURL is Handler.Public).
func confirmSubscription(ctx context.Context, c *call) (any, error) {
	var in confirmSubscriptionInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	switch in.AuthenticateOnUnsubscribe {
	case "", "false", "true":
	default:
		return nil, &notify.Error{Kind: notify.ErrInvalidParameter, Message: "Invalid parameter: AuthenticateOnUnsubscribe must be true or false"}
	}
	arn, err := c.h.s.ConfirmSubscription(ctx, in.TopicArn, in.Token, in.AuthenticateOnUnsubscribe == "true")
	if err != nil {
		return nil, err
	}
	return &confirmSubscriptionOutput{SubscriptionArn: arn}, nil
}

type subscriptionARNInput struct {
	SubscriptionArn string `json:"SubscriptionArn"`
}

// unsubscribe: Unsubscribe.
func unsubscribe(ctx context.Context, c *call) (any, error) {
	var in subscriptionARNInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	return nil, c.h.s.Unsubscribe(ctx, in.SubscriptionArn, true)
}

type subscriptionOut struct {
	SubscriptionArn string `json:"SubscriptionArn"`
	Owner           string `json:"Owner"`
	Protocol        string `json:"Protocol"`
	Endpoint        string `json:"Endpoint"`
	TopicArn        string `json:"TopicArn"`
}

type listSubscriptionsOutput struct {
	Subscriptions []subscriptionOut `json:"Subscriptions"`
	NextToken     string            `json:"NextToken,omitempty"`
}

func listOut(subs []notify.Subscription, next string) *listSubscriptionsOutput {
	out := &listSubscriptionsOutput{Subscriptions: []subscriptionOut{}, NextToken: next}
	for _, s := range subs {
		out.Subscriptions = append(out.Subscriptions, subscriptionOut{s.SubscriptionARN, s.Owner, s.Protocol, s.Endpoint, s.TopicARN})
	}
	return out
}

// listSubscriptions: ListSubscriptions.
func listSubscriptions(ctx context.Context, c *call) (any, error) {
	var in topicARNInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	subs, next, err := c.h.s.ListSubscriptions(ctx, "", in.NextToken)
	if err != nil {
		return nil, err
	}
	return listOut(subs, next), nil
}

// listSubscriptionsByTopic: ListSubscriptionsByTopic.
func listSubscriptionsByTopic(ctx context.Context, c *call) (any, error) {
	var in topicARNInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if in.TopicArn == "" {
		return nil, &notify.Error{Kind: notify.ErrInvalidParameter, Message: "Invalid parameter: TopicArn"}
	}
	subs, next, err := c.h.s.ListSubscriptions(ctx, in.TopicArn, in.NextToken)
	if err != nil {
		return nil, err
	}
	return listOut(subs, next), nil
}

// getSubscriptionAttributes: GetSubscriptionAttributes.
func getSubscriptionAttributes(ctx context.Context, c *call) (any, error) {
	var in subscriptionARNInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	attrs, err := c.h.s.GetSubscriptionAttributes(ctx, in.SubscriptionArn)
	if err != nil {
		return nil, err
	}
	return &attributesOutput{Attributes: attrs}, nil
}

type setSubscriptionAttributesInput struct {
	SubscriptionArn string `json:"SubscriptionArn"`
	AttributeName   string `json:"AttributeName"`
	AttributeValue  string `json:"AttributeValue"`
}

// setSubscriptionAttributes: SetSubscriptionAttributes.
func setSubscriptionAttributes(ctx context.Context, c *call) (any, error) {
	var in setSubscriptionAttributesInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	return nil, c.h.s.SetSubscriptionAttributes(ctx, in.SubscriptionArn, in.AttributeName, in.AttributeValue)
}
