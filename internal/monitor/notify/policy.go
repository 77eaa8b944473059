package notify

import (
	"encoding/json"
	"math"
	"time"
)

// retryPolicy is an SNS healthyRetryPolicy: how often and how far apart
// a failed http/https delivery is retried.
type retryPolicy struct {
	MinDelayTarget     int    `json:"minDelayTarget"`
	MaxDelayTarget     int    `json:"maxDelayTarget"`
	NumRetries         int    `json:"numRetries"`
	NumMaxDelayRetries int    `json:"numMaxDelayRetries"`
	NumNoDelayRetries  int    `json:"numNoDelayRetries"`
	NumMinDelayRetries int    `json:"numMinDelayRetries"`
	BackoffFunction    string `json:"backoffFunction"`
}

// defaultRetry is AWS's default for http/https: 3 retries, 20 s apart.
var defaultRetry = retryPolicy{MinDelayTarget: 20, MaxDelayTarget: 20, NumRetries: 3, BackoffFunction: "linear"}

type topicDeliveryPolicy struct {
	HTTP *struct {
		DefaultHealthyRetryPolicy    *retryPolicy `json:"defaultHealthyRetryPolicy"`
		DisableSubscriptionOverrides bool         `json:"disableSubscriptionOverrides"`
	} `json:"http"`
}

type subscriptionDeliveryPolicy struct {
	HealthyRetryPolicy *retryPolicy `json:"healthyRetryPolicy"`
}

func (p retryPolicy) check() error {
	switch {
	case p.NumRetries < 0 || p.NumRetries > 100:
		return invalid("DeliveryPolicy Reason: numRetries must be between 0 and 100")
	case p.MinDelayTarget < 1 || p.MaxDelayTarget < p.MinDelayTarget || p.MaxDelayTarget > 3600:
		return invalid("DeliveryPolicy Reason: 1 <= minDelayTarget <= maxDelayTarget <= 3600")
	case p.NumNoDelayRetries < 0 || p.NumMinDelayRetries < 0 || p.NumMaxDelayRetries < 0 ||
		p.NumNoDelayRetries+p.NumMinDelayRetries+p.NumMaxDelayRetries > p.NumRetries:
		return invalid("DeliveryPolicy Reason: the phases' retries must not exceed numRetries")
	}
	switch p.BackoffFunction {
	case "", "linear", "arithmetic", "geometric", "exponential":
	default:
		return invalid("DeliveryPolicy Reason: backoffFunction must be linear, arithmetic, geometric or exponential")
	}
	return nil
}

func checkDeliveryPolicy(v string) error {
	var p topicDeliveryPolicy
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return invalid("DeliveryPolicy Reason: failed to parse JSON")
	}
	if p.HTTP != nil && p.HTTP.DefaultHealthyRetryPolicy != nil {
		return p.HTTP.DefaultHealthyRetryPolicy.check()
	}
	return nil
}

func checkSubscriptionDeliveryPolicy(v string) error {
	var p subscriptionDeliveryPolicy
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return invalid("DeliveryPolicy Reason: failed to parse JSON")
	}
	if p.HealthyRetryPolicy != nil {
		return p.HealthyRetryPolicy.check()
	}
	return nil
}

// effectivePolicy is a topic's EffectiveDeliveryPolicy attribute.
func effectivePolicy(topicPolicy string) string {
	p := defaultRetry
	if tp := parseTopicPolicy(topicPolicy); tp != nil {
		p = *tp
	}
	b, _ := json.Marshal(map[string]any{"http": map[string]any{
		"defaultHealthyRetryPolicy":    p,
		"disableSubscriptionOverrides": false,
		"defaultRequestPolicy":         map[string]string{"headerContentType": "text/plain; charset=UTF-8"},
	}})
	return string(b)
}

func parseTopicPolicy(v string) *retryPolicy {
	var p topicDeliveryPolicy
	if v == "" || json.Unmarshal([]byte(v), &p) != nil || p.HTTP == nil || p.HTTP.DefaultHealthyRetryPolicy == nil {
		return nil
	}
	return p.HTTP.DefaultHealthyRetryPolicy
}

// retryFor is the policy of a subscription: its own unless the topic
// disables overrides, else the topic's, else the default.
func retryFor(topicPolicy, subPolicy string) retryPolicy {
	var tp topicDeliveryPolicy
	overrides := true
	if topicPolicy != "" && json.Unmarshal([]byte(topicPolicy), &tp) == nil && tp.HTTP != nil {
		overrides = !tp.HTTP.DisableSubscriptionOverrides
	}
	if overrides && subPolicy != "" {
		var sp subscriptionDeliveryPolicy
		if json.Unmarshal([]byte(subPolicy), &sp) == nil && sp.HealthyRetryPolicy != nil {
			return *sp.HealthyRetryPolicy
		}
	}
	if p := parseTopicPolicy(topicPolicy); p != nil {
		return *p
	}
	return defaultRetry
}

// delay is how long to wait before retry k (1 = the first retry); false
// when the policy has no retry k.
func (p retryPolicy) delay(k int) (time.Duration, bool) {
	if k > p.NumRetries {
		return 0, false
	}
	minD, maxD := float64(p.MinDelayTarget), float64(p.MaxDelayTarget)
	var d float64
	backoff := p.NumRetries - p.NumNoDelayRetries - p.NumMinDelayRetries - p.NumMaxDelayRetries
	switch {
	case k <= p.NumNoDelayRetries:
		d = 0
	case k <= p.NumNoDelayRetries+p.NumMinDelayRetries:
		d = minD
	case k <= p.NumNoDelayRetries+p.NumMinDelayRetries+backoff:
		j := k - p.NumNoDelayRetries - p.NumMinDelayRetries
		x := 1.0
		if backoff > 1 {
			x = float64(j-1) / float64(backoff-1)
		}
		switch p.BackoffFunction {
		case "arithmetic":
			d = minD + (maxD-minD)*x*x
		case "geometric", "exponential":
			d = minD * math.Pow(maxD/minD, x)
		default:
			d = minD + (maxD-minD)*x
		}
	default:
		d = maxD
	}
	return time.Duration(d * float64(time.Second)), true
}
