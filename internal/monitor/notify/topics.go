package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/regionfs/regionfs/internal/pagetoken"
)

var topicNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

// Topic attributes a caller may set, and their checks.
var settable = map[string]func(v string) error{
	"DisplayName": func(v string) error {
		if len(v) > 100 {
			return invalid("DisplayName Reason: a display name has at most 100 characters")
		}
		return nil
	},
	"Policy":         checkJSONObject("Policy"),
	"DeliveryPolicy": checkDeliveryPolicy,
	"SignatureVersion": func(v string) error {
		if v != "1" && v != "2" {
			return invalid("SignatureVersion Reason: must be 1 or 2")
		}
		return nil
	},
	"TracingConfig": func(v string) error {
		if v != "PassThrough" && v != "Active" {
			return invalid("TracingConfig Reason: must be PassThrough or Active")
		}
		return nil
	},
	"KmsMasterKeyId": func(v string) error {
		if len(v) > 2048 {
			return invalid("KmsMasterKeyId Reason: too long")
		}
		return nil
	},
	"ArchivePolicy": checkJSONObject("ArchivePolicy"),
}

func checkJSONObject(name string) func(string) error {
	return func(v string) error {
		var m map[string]any
		if len(v) > 30720 || json.Unmarshal([]byte(v), &m) != nil {
			return invalid("%s Reason: failed to parse JSON", name)
		}
		return nil
	}
}

// CreateTopic creates a topic, or returns the ARN of the existing one when
// its attributes and tags are the same.
func (s *Service) CreateTopic(ctx context.Context, name string, attrs map[string]string, tags []Tag) (string, error) {
	return s.CreateTopicAs(ctx, name, attrs, tags, nil)
}

// CreateTopicAs is CreateTopic for a maker that marks what it makes
// (CloudFormation, with its aws:cloudformation:* tags, which Tags may not
// hold): a new topic gets createdBy besides tags, and an existing topic of
// the name is returned only when it has all of createdBy (the maker's own,
// from an attempt cut short by a crash); any other fails with
// ErrAlreadyExists, untouched. CreateTopic alone takes an existing name, as
// SNS's CreateTopic does.
func (s *Service) CreateTopicAs(ctx context.Context, name string, attrs map[string]string, tags, createdBy []Tag) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if strings.HasSuffix(name, ".fifo") || attrs["FifoTopic"] == "true" {
		return "", invalid("Topic Name Reason: FIFO topics are not supported by regionfs")
	}
	if !topicNameRe.MatchString(name) {
		return "", invalid("Topic Name")
	}
	for k, v := range attrs {
		if k == "FifoTopic" && v == "false" {
			continue
		}
		check, ok := settable[k]
		if !ok {
			return "", invalid("Attributes Reason: Unknown attribute %s", clip(k))
		}
		if err := check(v); err != nil {
			return "", err
		}
	}
	delete(attrs, "FifoTopic")
	if err := checkTags(tags); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", ErrClosed
	}
	tags = append(slices.Clip(tags), createdBy...)
	if t := s.topics[name]; t != nil {
		if len(createdBy) > 0 && !hasTags(t.Tags, createdBy) {
			return "", &Error{Kind: ErrAlreadyExists, Message: fmt.Sprintf("A topic named %s already exists.", name)}
		}
		if len(attrs) > 0 && !maps.Equal(attrs, t.Attributes) {
			return "", invalid("Attributes Reason: Topic already exists with different attributes")
		}
		if len(tags) > 0 && !sameTags(tags, t.Tags) {
			return "", invalid("Tags Reason: Topic already exists with different tags")
		}
		return t.ARN, nil
	}
	if len(s.topics) >= MaxTopics {
		return "", &Error{Kind: ErrTopicLimit, Message: "Topic limit exceeded"}
	}
	t := &topic{Name: name, ARN: s.TopicARN(name), Attributes: maps.Clone(attrs), Tags: tags, Created: s.o.Clock()}
	if t.Attributes == nil {
		t.Attributes = map[string]string{}
	}
	if err := s.put(topicKey(name), t); err != nil {
		return "", err
	}
	s.topics[name] = t
	s.log.Info("sns topic created", "topic", t.ARN)
	return t.ARN, nil
}

func checkTags(tags []Tag) error {
	if len(tags) > 50 {
		return invalid("Tags Reason: at most 50 tags")
	}
	for _, t := range tags {
		if t.Key == "" || len(t.Key) > 128 || len(t.Value) > 256 {
			return invalid("Tags Reason: a tag key has 1 to 128 characters, a value at most 256")
		}
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return invalid("Tags Reason: keys starting with aws: are reserved")
		}
	}
	return nil
}

// hasTags tells whether have holds every tag of want.
func hasTags(have, want []Tag) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func sameTags(a, b []Tag) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]string{}
	for _, t := range b {
		m[t.Key] = t.Value
	}
	for _, t := range a {
		if v, ok := m[t.Key]; !ok || v != t.Value {
			return false
		}
	}
	return true
}

// DeleteTopic deletes a topic and its subscriptions; deleting a topic
// that does not exist succeeds (as on AWS).
func (s *Service) DeleteTopic(ctx context.Context, arn string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.topicByARNLocked("TopicArn", arn)
	if err != nil {
		if e, ok := err.(*Error); ok && e.Kind == ErrNotFound {
			return nil
		}
		return err
	}
	b := s.o.KV.NewBatch()
	defer b.Close()
	b.Delete(topicKey(t.Name))
	var gone []string
	for id, sub := range s.subs {
		if sub.TopicARN == t.ARN {
			b.Delete(subKey(id))
			gone = append(gone, id)
		}
	}
	if err := s.commit(b); err != nil {
		return err
	}
	delete(s.topics, t.Name)
	for _, id := range gone {
		delete(s.subs, id)
	}
	s.log.Info("sns topic deleted", "topic", t.ARN, "subscriptions", len(gone))
	return nil
}

// ListTopics lists topic ARNs, 100 at a time.
func (s *Service) ListTopics(ctx context.Context, token string) ([]string, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	after, err := decodeToken(tokenTopics, token)
	if err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	var arns []string
	for _, t := range s.topics {
		if t.ARN > after {
			arns = append(arns, t.ARN)
		}
	}
	s.mu.Unlock()
	sort.Strings(arns)
	next := ""
	if len(arns) > pageSize {
		arns = arns[:pageSize]
		next = pagetoken.Encode(tokenTopics, arns[len(arns)-1])
	}
	return arns, next, nil
}

// defaultPolicy is the policy a topic has until one is set.
func (s *Service) defaultPolicy(arn string) string {
	return `{"Version":"2008-10-17","Id":"__default_policy_ID","Statement":[{"Sid":"__default_statement_ID","Effect":"Allow",` +
		`"Principal":{"AWS":"*"},"Action":["SNS:GetTopicAttributes","SNS:SetTopicAttributes","SNS:AddPermission","SNS:RemovePermission",` +
		`"SNS:DeleteTopic","SNS:Subscribe","SNS:ListSubscriptionsByTopic","SNS:Publish"],"Resource":"` + arn +
		`","Condition":{"StringEquals":{"AWS:SourceOwner":"` + s.o.AccountID + `"}}}]}`
}

// GetTopicAttributes returns a topic's attributes, those SNS computes
// included.
func (s *Service) GetTopicAttributes(ctx context.Context, arn string) (map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.topicByARNLocked("TopicArn", arn)
	if err != nil {
		return nil, err
	}
	confirmed, pending := 0, 0
	for _, sub := range s.subs {
		if sub.TopicARN == t.ARN {
			if sub.Confirmed {
				confirmed++
			} else {
				pending++
			}
		}
	}
	out := map[string]string{
		"TopicArn":                t.ARN,
		"Owner":                   s.o.AccountID,
		"Policy":                  s.defaultPolicy(t.ARN),
		"DisplayName":             "",
		"SubscriptionsConfirmed":  strconv.Itoa(confirmed),
		"SubscriptionsPending":    strconv.Itoa(pending),
		"SubscriptionsDeleted":    "0",
		"EffectiveDeliveryPolicy": effectivePolicy(t.Attributes["DeliveryPolicy"]),
		"SignatureVersion":        "2",
	}
	maps.Copy(out, t.Attributes)
	return out, nil
}

// SetTopicAttributes sets one attribute of a topic.
func (s *Service) SetTopicAttributes(ctx context.Context, arn, name, value string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	check, ok := settable[name]
	if !ok {
		return invalid("AttributeName")
	}
	clearing := value == "" && slices.Contains([]string{"DeliveryPolicy", "Policy", "KmsMasterKeyId", "DisplayName"}, name)
	if !clearing {
		if err := check(value); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.topicByARNLocked("TopicArn", arn)
	if err != nil {
		return err
	}
	c := *t
	c.Attributes = withAttribute(t.Attributes, name, value, clearing)
	if err := s.put(topicKey(c.Name), &c); err != nil {
		return err
	}
	s.topics[c.Name] = &c
	return nil
}
