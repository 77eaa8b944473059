package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"net/mail"
	"net/url"
	"sort"
	"strings"

	"github.com/regionfs/regionfs/internal/pagetoken"
	"github.com/regionfs/regionfs/internal/uuid"
)

// Protocols delivered to.
const (
	ProtocolHTTP      = "http"
	ProtocolHTTPS     = "https"
	ProtocolEmail     = "email"
	ProtocolEmailJSON = "email-json"
)

// Pending is how an unconfirmed subscription's ARN is shown.
const (
	PendingConfirmation = "pending confirmation" // Subscribe's answer
	PendingListed       = "PendingConfirmation"  // in listings
)

// Subscription is a subscription as listed.
type Subscription struct {
	SubscriptionARN string // PendingConfirmation until confirmed
	Owner           string
	Protocol        string
	Endpoint        string
	TopicARN        string
}

var subscriptionAttrs = map[string]func(string) error{
	"RawMessageDelivery": func(v string) error {
		if v != "true" && v != "false" {
			return invalid("RawMessageDelivery Reason: must be true or false")
		}
		return nil
	},
	"DeliveryPolicy":    checkSubscriptionDeliveryPolicy,
	"FilterPolicy":      unsupported("FilterPolicy", "subscription filter policies"),
	"FilterPolicyScope": unsupported("FilterPolicyScope", "subscription filter policies"),
	"RedrivePolicy":     unsupported("RedrivePolicy", "dead-letter queues"),
}

// unsupported refuses an attribute SNS documents whose effect regionfs
// does not have (a filter policy that filtered nothing, a dead-letter
// queue never written to): stored and shown, it would claim a behaviour
// that is not there.
func unsupported(name, what string) func(string) error {
	return func(string) error {
		return invalid("%s Reason: %s are not supported by regionfs", name, what)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// checkEndpoint validates an endpoint for protocol.
func (s *Service) checkEndpoint(protocol, endpoint string) error {
	switch protocol {
	case "":
		return invalid("Protocol")
	case ProtocolHTTP, ProtocolHTTPS:
		u, err := url.Parse(endpoint)
		if endpoint == "" || err != nil || u.Scheme != protocol || u.Host == "" || len(endpoint) > 2048 {
			return invalid("Invalid endpoint for protocol %s: %s", protocol, clip(endpoint))
		}
	case ProtocolEmail, ProtocolEmailJSON:
		a, err := mail.ParseAddress(endpoint)
		if endpoint == "" || err != nil || a.Address != endpoint {
			return invalid("Email address")
		}
		if s.o.SMTP == nil {
			return invalid("Protocol Reason: email delivery needs an SMTP relay in the region's configuration (sns.smtp)")
		}
	default:
		return invalid("Protocol Reason: regionfs delivers to http, https, email and email-json endpoints, not %s", clip(protocol))
	}
	return nil
}

// Subscribe subscribes an endpoint to a topic. The subscription is pending
// until the endpoint confirms it (the confirmation message goes out at
// once); its ARN is returned only with returnARN (else "pending
// confirmation"). Subscribing the same endpoint again returns the same
// subscription (and sends a pending one its confirmation again).
func (s *Service) Subscribe(ctx context.Context, topicARN, protocol, endpoint string, attrs map[string]string, returnARN bool) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := s.checkEndpoint(protocol, endpoint); err != nil {
		return "", err
	}
	for k, v := range attrs {
		check, ok := subscriptionAttrs[k]
		if !ok {
			return "", invalid("Attributes Reason: Unknown attribute %s", clip(k))
		}
		if err := check(v); err != nil {
			return "", err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", ErrClosed
	}
	t, err := s.topicByARNLocked("TopicArn", topicARN)
	if err != nil {
		return "", err
	}
	var sub *subscription
	n := 0
	for _, x := range s.subs {
		if x.TopicARN == t.ARN {
			n++
			if x.Protocol == protocol && x.Endpoint == endpoint {
				sub = x
			}
		}
	}
	now := s.o.Clock()
	b := s.o.KV.NewBatch()
	defer b.Close()
	if sub == nil {
		if n >= MaxSubscriptionsInTopic {
			return "", &Error{Kind: ErrSubscriptionLimit, Message: "Subscription limit exceeded"}
		}
		id := uuid.New()
		sub = &subscription{ID: id, ARN: t.ARN + ":" + id, TopicARN: t.ARN, Protocol: protocol, Endpoint: endpoint,
			Attributes: maps.Clone(attrs), Created: now}
	} else {
		c := *sub
		sub = &c
	}
	var confirm *delivery
	if !sub.Confirmed {
		sub.Token = randomHex(64)
		sub.TokenExpires = now.Add(s.o.TokenTTL)
		confirm = s.confirmationLocked(b, t, sub)
	}
	b.Set(subKey(sub.ID), mustJSON(sub))
	if err := s.room(2*recordBytes, false); err != nil {
		return "", err
	}
	if err := s.commit(b); err != nil {
		return "", err
	}
	s.subs[sub.ID] = sub
	if confirm != nil {
		s.q.add(confirm)
	}
	s.log.Info("sns subscription", "topic", t.ARN, "protocol", protocol, "subscription", sub.ARN, "confirmed", sub.Confirmed)
	if returnARN || sub.Confirmed {
		return sub.ARN, nil
	}
	return PendingConfirmation, nil
}

// subscribeURL is the link that confirms sub.
func (s *Service) subscribeURL(sub *subscription) string {
	return s.o.PublicURL + "/?Action=ConfirmSubscription&TopicArn=" + url.QueryEscape(sub.TopicARN) + "&Token=" + sub.Token
}

func (s *Service) unsubscribeURL(sub *subscription) string {
	return s.o.PublicURL + "/?Action=Unsubscribe&SubscriptionArn=" + url.QueryEscape(sub.ARN)
}

// ConfirmSubscription confirms a subscription with the token its endpoint
// received; authenticateOnUnsubscribe makes unsubscribing require a signed
// request.
func (s *Service) ConfirmSubscription(ctx context.Context, topicARN, token string, authenticateOnUnsubscribe bool) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if token == "" {
		return "", invalid("Token")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.topicByARNLocked("TopicArn", topicARN)
	if err != nil {
		return "", err
	}
	now := s.o.Clock()
	for _, sub := range s.subs {
		if sub.TopicARN != t.ARN || sub.Token == "" || sub.Token != token {
			continue
		}
		if now.After(sub.TokenExpires) {
			return "", invalid("Token Reason: the token has expired")
		}
		if sub.Confirmed {
			return sub.ARN, nil
		}
		c := *sub
		c.Confirmed, c.AuthOnUnsubscribe = true, authenticateOnUnsubscribe
		if err := s.put(subKey(c.ID), &c); err != nil {
			return "", err
		}
		s.subs[c.ID] = &c
		s.log.Info("sns subscription confirmed", "subscription", c.ARN, "protocol", c.Protocol)
		return c.ARN, nil
	}
	return "", invalid("Token")
}

// Unsubscribe deletes a subscription; authenticated says whether the call
// was signed (the UnsubscribeURL is not, and cannot remove a subscription
// confirmed with AuthenticateOnUnsubscribe).
func (s *Service) Unsubscribe(ctx context.Context, arn string, authenticated bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if arn == "" {
		return invalid("SubscriptionArn")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.subByARNLocked(arn)
	if sub == nil {
		if !strings.HasPrefix(arn, "arn:aws:sns:") {
			return invalid("SubscriptionArn Reason: not a subscription ARN")
		}
		return notFound("Subscription does not exist")
	}
	if !authenticated && sub.AuthOnUnsubscribe {
		return &Error{Kind: ErrAuthorization, Message: "The subscription requires a signed Unsubscribe request."}
	}
	b := s.o.KV.NewBatch()
	defer b.Close()
	b.Delete(subKey(sub.ID))
	if err := s.commit(b); err != nil {
		return err
	}
	delete(s.subs, sub.ID)
	s.log.Info("sns unsubscribed", "subscription", sub.ARN)
	return nil
}

func (s *Service) subByARNLocked(arn string) *subscription {
	i := strings.LastIndexByte(arn, ':')
	if i < 0 {
		return nil
	}
	sub := s.subs[arn[i+1:]]
	if sub == nil || sub.ARN != arn {
		return nil
	}
	return sub
}

// ListSubscriptions lists every subscription (topicARN empty) or those of
// one topic, 100 at a time.
func (s *Service) ListSubscriptions(ctx context.Context, topicARN, token string) ([]Subscription, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	after, err := decodeToken(tokenSubscriptions, token)
	if err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	if topicARN != "" {
		if _, err := s.topicByARNLocked("TopicArn", topicARN); err != nil {
			s.mu.Unlock()
			return nil, "", err
		}
	}
	type keyed struct {
		key string
		sub Subscription
	}
	var all []keyed
	for _, x := range s.subs {
		if topicARN != "" && x.TopicARN != topicARN {
			continue
		}
		k := x.TopicARN + "\x00" + x.ID
		if k <= after {
			continue
		}
		arn := x.ARN
		if !x.Confirmed {
			arn = PendingListed
		}
		all = append(all, keyed{k, Subscription{SubscriptionARN: arn, Owner: s.o.AccountID, Protocol: x.Protocol, Endpoint: x.Endpoint, TopicARN: x.TopicARN}})
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].key < all[j].key })
	next := ""
	if len(all) > pageSize {
		all = all[:pageSize]
		next = pagetoken.Encode(tokenSubscriptions, all[len(all)-1].key)
	}
	out := make([]Subscription, len(all))
	for i, k := range all {
		out[i] = k.sub
	}
	return out, next, nil
}

// GetSubscriptionAttributes returns a subscription's attributes.
func (s *Service) GetSubscriptionAttributes(ctx context.Context, arn string) (map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.subByARNLocked(arn)
	if sub == nil {
		return nil, notFound("Subscription does not exist")
	}
	t := s.topics[sub.TopicARN[strings.LastIndexByte(sub.TopicARN, ':')+1:]]
	topicPolicy := ""
	if t != nil {
		topicPolicy = t.Attributes["DeliveryPolicy"]
	}
	p := retryFor(topicPolicy, sub.Attributes["DeliveryPolicy"])
	out := map[string]string{
		"SubscriptionArn": sub.ARN, "TopicArn": sub.TopicARN, "Owner": s.o.AccountID, "Protocol": sub.Protocol, "Endpoint": sub.Endpoint,
		"ConfirmationWasAuthenticated": boolString(sub.AuthOnUnsubscribe), "PendingConfirmation": boolString(!sub.Confirmed),
		"RawMessageDelivery": "false", "EffectiveDeliveryPolicy": string(mustJSON(map[string]any{"healthyRetryPolicy": p})),
		"SubscriptionPrincipal": "arn:aws:iam::" + s.o.AccountID + ":root",
	}
	maps.Copy(out, sub.Attributes)
	return out, nil
}

// SetSubscriptionAttributes sets one attribute of a subscription.
func (s *Service) SetSubscriptionAttributes(ctx context.Context, arn, name, value string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	check, ok := subscriptionAttrs[name]
	if !ok {
		return invalid("AttributeName")
	}
	if value != "" {
		if err := check(value); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.subByARNLocked(arn)
	if sub == nil {
		return notFound("Subscription does not exist")
	}
	c := *sub
	c.Attributes = withAttribute(sub.Attributes, name, value, value == "")
	if err := s.put(subKey(c.ID), &c); err != nil {
		return err
	}
	s.subs[c.ID] = &c
	return nil
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// Kinds of page tokens (package pagetoken): a token is only good for the
// list that issued it.
const (
	tokenTopics        byte = 't'
	tokenSubscriptions byte = 's'
)

// decodeToken returns the position of a token pagetoken.Encode issued for
// kind ("" for no token).
func decodeToken(kind byte, t string) (string, error) {
	if t == "" {
		return "", nil
	}
	after, ok := pagetoken.Decode(kind, t)
	if !ok {
		return "", invalid("NextToken")
	}
	return after, nil
}

// SubscriptionARN is the ARN of the topic's subscription of protocol and
// endpoint (confirmed or not), if it has one.
func (s *Service) SubscriptionARN(topicARN, protocol, endpoint string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.subs {
		if x.TopicARN == topicARN && x.Protocol == protocol && x.Endpoint == endpoint {
			return x.ARN, true
		}
	}
	return "", false
}
