package notify

import (
	"context"
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/uuid"
)

// Message types.
const (
	typeNotification = "Notification"
	typeConfirmation = "SubscriptionConfirmation"
)

// timeFormat is how SNS writes Timestamp.
const timeFormat = "2006-01-02T15:04:05.000Z"

// envelope is the JSON document an http/https endpoint receives.
type envelope struct {
	Type              string               `json:"Type"`
	MessageID         string               `json:"MessageId"`
	Token             string               `json:"Token,omitempty"`
	TopicArn          string               `json:"TopicArn"`
	Subject           string               `json:"Subject,omitempty"`
	Message           string               `json:"Message"`
	SubscribeURL      string               `json:"SubscribeURL,omitempty"`
	Timestamp         string               `json:"Timestamp"`
	SignatureVersion  string               `json:"SignatureVersion"`
	Signature         string               `json:"Signature"`
	SigningCertURL    string               `json:"SigningCertURL"`
	UnsubscribeURL    string               `json:"UnsubscribeURL,omitempty"`
	MessageAttributes map[string]attrValue `json:"MessageAttributes,omitempty"`
}

type attrValue struct {
	Type  string `json:"Type"`
	Value string `json:"Value"`
}

// MessageAttribute is a Publish message attribute.
type MessageAttribute struct {
	DataType    string
	StringValue string
	BinaryValue []byte
}

// PublishInput is a Publish request.
type PublishInput struct {
	TopicARN          string
	TargetARN         string
	PhoneNumber       string
	Message           string
	Subject           string
	MessageStructure  string
	MessageAttributes map[string]MessageAttribute
	MessageGroupID    string
	DeduplicationID   string
}

// Publish accepts a message for every confirmed subscription of a topic
// and returns its id once every delivery is durable.
func (s *Service) Publish(ctx context.Context, in PublishInput) (string, error) {
	return s.publish(ctx, in, false)
}

// publish is Publish; internal: a message of the server's own (Notify),
// stored below the data disk's floor too (room).
func (s *Service) publish(ctx context.Context, in PublishInput, internal bool) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	arn := in.TopicARN
	switch {
	case in.PhoneNumber != "":
		return "", invalid("PhoneNumber Reason: SMS is not supported by regionfs")
	case arn != "" && in.TargetARN != "" && arn != in.TargetARN:
		return "", invalid("TopicArn or TargetArn Reason: Only one of them may be given")
	case arn == "":
		arn = in.TargetARN
	}
	if arn == "" {
		return "", invalid("TopicArn or TargetArn Reason: One of them is required")
	}
	if in.MessageGroupID != "" || in.DeduplicationID != "" {
		return "", invalid("MessageGroupId Reason: The request includes MessageGroupId or MessageDeduplicationId, which only FIFO topics take")
	}
	if err := checkMessage(in); err != nil {
		return "", err
	}
	perProtocol := map[string]string{}
	if in.MessageStructure != "" {
		if in.MessageStructure != "json" {
			return "", invalid("MessageStructure Reason: must be json")
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(in.Message), &m); err != nil {
			return "", invalid("Message Structure - JSON message body failed to parse")
		}
		if _, ok := m["default"]; !ok {
			return "", invalid("Message Structure - No default entry in JSON message body")
		}
		perProtocol = m
	}
	attrs, err := checkAttributes(in.MessageAttributes)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", ErrClosed
	}
	t, err := s.topicByARNLocked("TopicArn", arn)
	if err != nil {
		return "", err
	}
	id := uuid.New()
	now := s.o.Clock()
	b := s.o.KV.NewBatch()
	defer b.Close()
	var ds []*delivery
	for _, sub := range s.subs {
		if sub.TopicARN != t.ARN || !sub.Confirmed {
			continue
		}
		msg := in.Message
		if in.MessageStructure == "json" {
			msg = perProtocol["default"]
			if v, ok := perProtocol[sub.Protocol]; ok {
				msg = v
			}
		}
		d := &delivery{ID: uuid.New(), SubID: sub.ID, Next: now, Envelope: envelope{
			Type: typeNotification, MessageID: id, TopicArn: t.ARN, Subject: in.Subject, Message: msg,
			Timestamp: now.UTC().Format(timeFormat), UnsubscribeURL: s.unsubscribeURL(sub), MessageAttributes: attrs,
		}}
		putDelivery(b, d)
		ds = append(ds, d)
	}
	if !b.Empty() {
		if err := s.room(int64(len(ds))*int64(len(in.Message)+recordBytes), internal); err != nil {
			return "", err
		}
		if err := s.commit(b); err != nil {
			return "", err
		}
	}
	s.q.add(ds...)
	s.log.Debug("sns publish", "topic", t.ARN, "message_id", id, "deliveries", len(ds))
	return id, nil
}

func checkMessage(in PublishInput) error {
	switch {
	case in.Message == "":
		return invalid("Empty message")
	case len(in.Message) > MaxMessageBytes:
		return invalid("Message too long")
	case !utf8.ValidString(in.Message):
		return invalid("Message Reason: must be valid UTF-8")
	}
	if in.Subject != "" {
		if len(in.Subject) > 100 {
			return invalid("Subject Reason: at most 100 characters")
		}
		for _, r := range in.Subject {
			if r > unicode.MaxASCII || r < 0x20 {
				return invalid("Subject Reason: ASCII text without line breaks or control characters")
			}
		}
		if strings.TrimSpace(in.Subject) == "" {
			return invalid("Subject Reason: must not be blank")
		}
	}
	return nil
}

func checkAttributes(in map[string]MessageAttribute) (map[string]attrValue, error) {
	if len(in) == 0 {
		return nil, nil
	}
	if len(in) > 10 {
		return nil, invalid("MessageAttributes Reason: at most 10 attributes")
	}
	out := map[string]attrValue{}
	for k, a := range in {
		if k == "" || len(k) > 256 || strings.HasPrefix(strings.ToLower(k), "aws.") || strings.HasPrefix(strings.ToLower(k), "amazon.") {
			return nil, invalid("Message attribute name %s is not valid", clip(k))
		}
		typ, _, _ := strings.Cut(a.DataType, ".")
		switch typ {
		case "String", "Number":
			if a.StringValue == "" {
				return nil, invalid("The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", clip(k), typ)
			}
			out[k] = attrValue{Type: a.DataType, Value: a.StringValue}
		case "Binary":
			if len(a.BinaryValue) == 0 {
				return nil, invalid("The message attribute '%s' must contain non-empty message attribute value for message attribute type 'Binary'.", clip(k))
			}
			out[k] = attrValue{Type: a.DataType, Value: b64(a.BinaryValue)}
		default:
			return nil, invalid("The message attribute '%s' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.", clip(k))
		}
	}
	return out, nil
}

// confirmationLocked stages the SubscriptionConfirmation of sub (its token
// set) in b; the caller adds it to the queue once b is committed.
func (s *Service) confirmationLocked(b kv.Batch, t *topic, sub *subscription) *delivery {
	now := s.o.Clock()
	d := &delivery{ID: uuid.New(), SubID: sub.ID, Next: now, Envelope: envelope{
		Type: typeConfirmation, MessageID: uuid.New(), Token: sub.Token, TopicArn: t.ARN,
		Message:      "You have chosen to subscribe to the topic " + t.ARN + ".\nTo confirm the subscription, visit the SubscribeURL included in this message.",
		SubscribeURL: s.subscribeURL(sub), Timestamp: now.UTC().Format(timeFormat),
	}}
	putDelivery(b, d)
	return d
}

// Notify publishes a message to a topic (CloudWatch alarm actions: it
// implements monitor.Notifier).
func (s *Service) Notify(ctx context.Context, topicARN, subject, message string) (string, error) {
	return s.publish(ctx, PublishInput{TopicARN: topicARN, Subject: subject, Message: message}, true)
}
