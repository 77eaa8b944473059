package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// endpoint is an HTTP subscriber that answers with the statuses it is
// given (200 once they run out) and keeps what it receives.
type endpoint struct {
	mu       sync.Mutex
	statuses []int
	got      []received
	srv      *httptest.Server
}

type received struct {
	at     time.Time
	header http.Header
	body   []byte
}

func newEndpoint(t *testing.T, statuses ...int) *endpoint {
	e := &endpoint{statuses: statuses}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.got = append(e.got, received{time.Now(), r.Header.Clone(), b})
		st := 200
		if len(e.statuses) > 0 {
			st, e.statuses = e.statuses[0], e.statuses[1:]
		}
		e.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *endpoint) messages() []received {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]received(nil), e.got...)
}

func open(t *testing.T, store *kv.Memory) *Service {
	t.Helper()
	s, err := Open(Options{KV: store, Region: "us-east-1", AccountID: "123456789012", PublicURL: "http://sns.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func token(t *testing.T, r received) (string, map[string]string) {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatal(err)
	}
	return m["Token"], m
}

func TestConfirmPublishVerify(t *testing.T) {
	ctx := context.Background()
	s := open(t, kv.NewMemory())
	ep := newEndpoint(t)
	arn, err := s.CreateTopic(ctx, "alerts", map[string]string{"DisplayName": "DR"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.CreateTopic(ctx, "alerts", map[string]string{"DisplayName": "DR"}, nil)
	if err != nil || again != arn {
		t.Fatalf("CreateTopic is not idempotent: %s %v", again, err)
	}
	if _, err := s.CreateTopic(ctx, "alerts", map[string]string{"DisplayName": "other"}, nil); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("different attributes: %v", err)
	}
	sub, err := s.Subscribe(ctx, arn, ProtocolHTTP, ep.srv.URL+"/hook", nil, false)
	if err != nil || sub != PendingConfirmation {
		t.Fatalf("%q %v", sub, err)
	}
	testkit.WaitFor(t, "SubscriptionConfirmation", 10*time.Second, func() bool { return len(ep.messages()) == 1 })
	c := ep.messages()[0]
	tok, m := token(t, c)
	_, cert := s.SigningCert()
	if err := Verify(c.body, cert); err != nil {
		t.Fatalf("confirmation signature: %v", err)
	}
	if m["Type"] != "SubscriptionConfirmation" || c.header.Get("X-Amz-Sns-Message-Type") != "SubscriptionConfirmation" ||
		!strings.HasPrefix(m["SubscribeURL"], "http://sns.test/?Action=ConfirmSubscription&TopicArn=") || m["SignatureVersion"] != "2" ||
		!strings.HasPrefix(m["SigningCertURL"], "http://sns.test/SimpleNotificationService-") {
		t.Fatalf("%v %v", m, c.header)
	}
	// A notification is not delivered before the confirmation.
	if _, err := s.Publish(ctx, PublishInput{TopicARN: arn, Message: "early"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConfirmSubscription(ctx, arn, "bad-token", false); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("bad token: %v", err)
	}
	subARN, err := s.ConfirmSubscription(ctx, arn, tok, false)
	if err != nil || !strings.HasPrefix(subARN, arn+":") {
		t.Fatalf("%s %v", subARN, err)
	}
	id, err := s.Publish(ctx, PublishInput{TopicARN: arn, Subject: "hello", Message: "world",
		MessageAttributes: map[string]MessageAttribute{"k": {DataType: "String", StringValue: "v"}}})
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "notification", 10*time.Second, func() bool { return len(ep.messages()) == 2 })
	n := ep.messages()[1]
	if err := Verify(n.body, cert); err != nil {
		t.Fatalf("notification signature: %v", err)
	}
	var nm struct {
		Type, MessageId, Subject, Message, UnsubscribeURL string
		MessageAttributes                                 map[string]struct{ Type, Value string }
	}
	json.Unmarshal(n.body, &nm)
	if nm.Type != "Notification" || nm.MessageId != id || nm.Subject != "hello" || nm.Message != "world" || nm.MessageAttributes["k"].Value != "v" ||
		n.header.Get("X-Amz-Sns-Subscription-Arn") != subARN || !strings.Contains(nm.UnsubscribeURL, "Action=Unsubscribe") {
		t.Fatalf("%+v %v", nm, n.header)
	}
	// A tampered message does not verify.
	if err := Verify([]byte(strings.Replace(string(n.body), "world", "w0rld", 1)), cert); err == nil {
		t.Fatal("tampered message verified")
	}
	// SignatureVersion 1 on request.
	if err := s.SetTopicAttributes(ctx, arn, "SignatureVersion", "1"); err != nil {
		t.Fatal(err)
	}
	s.Publish(ctx, PublishInput{TopicARN: arn, Message: "v1"})
	testkit.WaitFor(t, "v1 notification", 10*time.Second, func() bool { return len(ep.messages()) == 3 })
	_, m1 := token(t, ep.messages()[2])
	if m1["SignatureVersion"] != "1" || Verify(ep.messages()[2].body, cert) != nil {
		t.Fatalf("SignatureVersion 1: %v", m1)
	}
	attrs, err := s.GetTopicAttributes(ctx, arn)
	if err != nil || attrs["SubscriptionsConfirmed"] != "1" || attrs["DisplayName"] != "DR" || attrs["Owner"] != "123456789012" {
		t.Fatalf("%v %v", attrs, err)
	}
	if err := s.Unsubscribe(ctx, subARN, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Unsubscribe(ctx, subARN, true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second unsubscribe: %v", err)
	}
}

// TestRetries: a failing endpoint is retried as the delivery policy says;
// a 4xx is not retried.
func TestRetries(t *testing.T) {
	ctx := context.Background()
	s := open(t, kv.NewMemory())
	policy := `{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":1,"maxDelayTarget":2,"numRetries":3,"backoffFunction":"linear"}}}`
	arn, _ := s.CreateTopic(ctx, "retry", map[string]string{"DeliveryPolicy": policy}, nil)
	ep := newEndpoint(t, 200, 500, 503, 200) // confirmation, then two failures
	s.Subscribe(ctx, arn, ProtocolHTTP, ep.srv.URL, nil, false)
	testkit.WaitFor(t, "confirmation", 10*time.Second, func() bool { return len(ep.messages()) == 1 })
	tok, _ := token(t, ep.messages()[0])
	s.ConfirmSubscription(ctx, arn, tok, false)
	s.Publish(ctx, PublishInput{TopicARN: arn, Message: "m"})
	testkit.WaitFor(t, "three attempts", 20*time.Second, func() bool { return len(ep.messages()) == 4 })
	got := ep.messages()
	if d1, d2 := got[2].at.Sub(got[1].at), got[3].at.Sub(got[2].at); d1 < 950*time.Millisecond || d2 < 1450*time.Millisecond {
		t.Fatalf("backoff %v then %v, want ≥1 s then ≥1.5 s (linear from 1 s to 2 s over 3 retries)", d1, d2)
	}
	ep2 := newEndpoint(t, 200, 404, 200)
	s.Subscribe(ctx, arn, ProtocolHTTP, ep2.srv.URL, nil, false)
	testkit.WaitFor(t, "confirmation", 10*time.Second, func() bool { return len(ep2.messages()) == 1 })
	tok, _ = token(t, ep2.messages()[0])
	s.ConfirmSubscription(ctx, arn, tok, false)
	s.Publish(ctx, PublishInput{TopicARN: arn, Message: "gone"})
	testkit.WaitFor(t, "one attempt", 10*time.Second, func() bool { return len(ep2.messages()) == 2 })
	time.Sleep(1500 * time.Millisecond) // a retry would come after 1 s
	if n := len(ep2.messages()); n != 2 {
		t.Fatalf("a 404 was retried: %d requests", n)
	}
}

func TestRetryPolicyDelays(t *testing.T) {
	p := retryPolicy{MinDelayTarget: 1, MaxDelayTarget: 60, NumRetries: 6, NumNoDelayRetries: 1, NumMinDelayRetries: 1, NumMaxDelayRetries: 1, BackoffFunction: "linear"}
	var got []time.Duration
	for k := 1; k <= 7; k++ {
		d, ok := p.delay(k)
		if k == 7 {
			if ok {
				t.Fatal("a seventh retry")
			}
			break
		}
		got = append(got, d)
	}
	want := []time.Duration{0, time.Second, time.Second, 30500 * time.Millisecond, 60 * time.Second, 60 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	if err := checkDeliveryPolicy(`{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":5,"maxDelayTarget":1,"numRetries":3}}}`); err == nil {
		t.Fatal("min > max accepted")
	}
}

// TestDurableDelivery: a message accepted while its endpoint is down is
// delivered after a restart.
// loadedWait bounds the waits for deliveries: generous, since a machine
// loaded by other builds and tests can delay the worker's HTTP post (and
// a first attempt that fails is retried 20 s later); a wait ends as soon
// as its condition holds.
const loadedWait = 90 * time.Second

// settled reports whether the queue holds no delivery, pending or in
// flight: every attempt so far has ended and its outcome is committed.
func (s *Service) settled() bool {
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	return len(s.q.pending) == 0 && len(s.q.inflight) == 0
}

func TestDurableDelivery(t *testing.T) {
	ctx := context.Background()
	store := kv.NewMemory()
	s, err := Open(Options{KV: store, Region: "us-east-1", AccountID: "123456789012", PublicURL: "http://sns.test"})
	if err != nil {
		t.Fatal(err)
	}
	arn, err := s.CreateTopic(ctx, "d", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ep := newEndpoint(t)
	confirmed(t, s, arn, ep.srv.URL, ep)
	s.Pause(true)
	if _, err := s.Publish(ctx, PublishInput{TopicARN: arn, Message: "survives"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if n := len(ep.messages()); n != 1 {
		t.Fatalf("%d messages delivered before the restart, want only the confirmation (deliveries were paused)", n)
	}
	s2 := open(t, store.CrashClone())
	testkit.WaitFor(t, "delivery after the restart", loadedWait, func() bool {
		for _, m := range ep.messages()[1:] {
			if strings.Contains(string(m.body), "survives") {
				return true
			}
		}
		return false
	})
	testkit.WaitFor(t, "the delivery to end after the restart", loadedWait, s2.settled)
	if got := ep.messages(); len(got) != 2 {
		t.Fatalf("%d messages, want the confirmation and one notification", len(got))
	}
}

func TestValidation(t *testing.T) {
	ctx := context.Background()
	s := open(t, kv.NewMemory())
	arn, _ := s.CreateTopic(ctx, "v", nil, nil)
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"bad topic name", func() error { _, err := s.CreateTopic(ctx, "bad name", nil, nil); return err }(), ErrInvalidParameter},
		{"fifo", func() error { _, err := s.CreateTopic(ctx, "x.fifo", nil, nil); return err }(), ErrInvalidParameter},
		{"unknown attribute", func() error { _, err := s.CreateTopic(ctx, "x", map[string]string{"Color": "red"}, nil); return err }(), ErrInvalidParameter},
		{"sqs", func() error {
			_, err := s.Subscribe(ctx, arn, "sqs", "arn:aws:sqs:us-east-1:1:q", nil, false)
			return err
		}(), ErrInvalidParameter},
		{"http endpoint", func() error { _, err := s.Subscribe(ctx, arn, "http", "https://x", nil, false); return err }(), ErrInvalidParameter},
		{"email without relay", func() error { _, err := s.Subscribe(ctx, arn, "email", "a@b.test", nil, false); return err }(), ErrInvalidParameter},
		{"absent topic", func() error { _, err := s.Publish(ctx, PublishInput{TopicARN: arn + "x", Message: "m"}); return err }(), ErrNotFound},
		{"empty message", func() error { _, err := s.Publish(ctx, PublishInput{TopicARN: arn}); return err }(), ErrInvalidParameter},
		{"long message", func() error {
			_, err := s.Publish(ctx, PublishInput{TopicARN: arn, Message: strings.Repeat("x", MaxMessageBytes+1)})
			return err
		}(), ErrInvalidParameter},
		{"subject newline", func() error {
			_, err := s.Publish(ctx, PublishInput{TopicARN: arn, Message: "m", Subject: "a\nb"})
			return err
		}(), ErrInvalidParameter},
		{"json structure", func() error {
			_, err := s.Publish(ctx, PublishInput{TopicARN: arn, Message: `{"http":"x"}`, MessageStructure: "json"})
			return err
		}(), ErrInvalidParameter},
		{"fifo fields", func() error {
			_, err := s.Publish(ctx, PublishInput{TopicARN: arn, Message: "m", MessageGroupID: "g"})
			return err
		}(), ErrInvalidParameter},
		{"sms", func() error {
			_, err := s.Publish(ctx, PublishInput{PhoneNumber: "+15555550100", Message: "m"})
			return err
		}(), ErrInvalidParameter},
		{"set unknown", s.SetTopicAttributes(ctx, arn, "Nope", "x"), ErrInvalidParameter},
		{"bad policy", s.SetTopicAttributes(ctx, arn, "Policy", "{"), ErrInvalidParameter},
		{"other account", func() error { _, err := s.GetTopicAttributes(ctx, "arn:aws:sns:us-east-1:999999999999:v"); return err }(), ErrNotFound},
		{"not an arn", func() error { _, err := s.GetTopicAttributes(ctx, "v"); return err }(), ErrInvalidParameter},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	if err := s.DeleteTopic(ctx, arn+"absent"); err != nil {
		t.Errorf("DeleteTopic of an absent topic: %v", err)
	}
}

// confirmed subscribes url (ep's) to topic arn over HTTP and confirms the
// subscription with the token of ep's SubscriptionConfirmation, once its
// delivery ended (the endpoint has it before the worker has its answer
// and deletes the delivery: a restart before that sends it again).
func confirmed(t *testing.T, s *Service, arn, url string, ep *endpoint) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.Subscribe(ctx, arn, ProtocolHTTP, url, nil, false); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "SubscriptionConfirmation", loadedWait, func() bool { return len(ep.messages()) >= 1 })
	testkit.WaitFor(t, "the confirmation's delivery to end", loadedWait, s.settled)
	tok, _ := token(t, ep.messages()[0])
	if _, err := s.ConfirmSubscription(ctx, arn, tok, false); err != nil {
		t.Fatal(err)
	}
}
