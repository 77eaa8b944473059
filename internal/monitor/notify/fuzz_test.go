package notify

import (
	"testing"
	"time"
)

// FuzzDeliveryPolicy: a DeliveryPolicy attribute (SetTopicAttributes,
// Subscribe, SetSubscriptionAttributes: a caller's JSON) that the checks
// accept yields retries whose delays lie between 0 and its
// maxDelayTarget, never past numRetries; one they refuse never panics.
// Whatever a policy holds, retryFor falls back to a policy within bounds.
func FuzzDeliveryPolicy(f *testing.F) {
	f.Add(`{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":1,"maxDelayTarget":60,"numRetries":10,"numNoDelayRetries":2,"numMinDelayRetries":1,"numMaxDelayRetries":2,"backoffFunction":"exponential"}}}`,
		`{"healthyRetryPolicy":{"minDelayTarget":5,"maxDelayTarget":5,"numRetries":1}}`)
	f.Add(`{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":2,"maxDelayTarget":3600,"numRetries":100,"backoffFunction":"arithmetic"},"disableSubscriptionOverrides":true}}`,
		`{"healthyRetryPolicy":{"minDelayTarget":1,"maxDelayTarget":2,"numRetries":3,"backoffFunction":"geometric"}}`)
	f.Add(`{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":5,"maxDelayTarget":1,"numRetries":3}}}`, `{`)
	f.Add(``, ``)
	f.Add(`{"http":null}`, `{"healthyRetryPolicy":{"numRetries":-1}}`)
	f.Fuzz(func(t *testing.T, topic, sub string) {
		topicOK := topic == "" || checkDeliveryPolicy(topic) == nil
		subOK := sub == "" || checkSubscriptionDeliveryPolicy(sub) == nil
		_ = effectivePolicy(topic)
		if !topicOK || !subOK {
			return // refused: never stored
		}
		p := retryFor(topic, sub)
		if p.check() != nil {
			t.Fatalf("policy %+v of accepted %q and %q fails its own check", p, topic, sub)
		}
		for k := 1; k <= p.NumRetries; k++ {
			d, ok := p.delay(k)
			if !ok || d < 0 || d > time.Duration(p.MaxDelayTarget)*time.Second {
				t.Fatalf("retry %d of %+v: %v %v", k, p, d, ok)
			}
		}
		if _, ok := p.delay(p.NumRetries + 1); ok {
			t.Fatalf("%+v has a retry past numRetries", p)
		}
	})
}
