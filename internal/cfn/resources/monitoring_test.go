package resources

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regionfs/regionfs/internal/cfn"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/monitor"
	"github.com/regionfs/regionfs/internal/monitor/notify"
)

// TestAlarmUpdateTags: an update sets the tags the template adds or
// changes and removes those it drops. PutMetricAlarm keeps an existing
// alarm's tags, so added and changed tags were silently not applied.
func TestAlarmUpdateTags(t *testing.T) {
	m, err := monitor.Open(monitor.Options{KV: kv.NewMemory(), Region: "us-east-1", AccountID: "123456789012", Tick: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	a := &cwAlarms{Options{Alarms: m}}
	props := func(tags ...string) map[string]any {
		pr := map[string]any{"Namespace": "AWS/EFS", "MetricName": "TimeSinceLastSync", "Statistic": "Maximum", "Period": "60",
			"EvaluationPeriods": "1", "Threshold": "60", "ComparisonOperator": "GreaterThanThreshold"}
		var l []any
		for i := 0; i < len(tags); i += 2 {
			l = append(l, map[string]any{"Key": tags[i], "Value": tags[i+1]})
		}
		if l != nil {
			pr["Tags"] = l
		}
		return pr
	}
	old := props("keep", "1", "change", "a", "drop", "x")
	out, err := a.Create(t.Context(), &cfn.Request{StackName: "s", LogicalID: "Lag", Token: "cfn-0123456789abcdef0123456789abcdef01234567", Props: old})
	if err != nil {
		t.Fatal(err)
	}
	pr := props("keep", "1", "change", "b", "add", "y")
	if _, err := a.Update(t.Context(), &cfn.Request{PhysicalID: out.PhysicalID, Props: pr, OldProps: old, Attributes: out.Attributes}); err != nil {
		t.Fatal(err)
	}
	got, err := m.ListTagsForResource(t.Context(), out.Attributes["Arn"])
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"keep": "1", "change": "b", "add": "y", // and the stack's, kept:
		"aws:cloudformation:stack-name": "s", "aws:cloudformation:stack-id": "", "aws:cloudformation:logical-id": "Lag"}
	gotM := map[string]string{}
	for _, tg := range got {
		gotM[tg.Key] = tg.Value
	}
	if d := cmp.Diff(want, gotM); d != "" {
		t.Fatalf("tags after update (-want +got):\n%s", d)
	}
}

// wantAlreadyExists checks a create's failure against CloudFormation's.
func wantAlreadyExists(t *testing.T, err error, msg string) {
	t.Helper()
	var he *cfn.HandlerError
	if !errors.As(err, &he) || he.Code != "AlreadyExists" || he.Message != msg {
		t.Fatalf("got %v, want AlreadyExists %q", err, msg)
	}
}

// TestAlarmCreateAfterCrash: a create of a named alarm that runs again
// after a crash (the alarm made, the stack's record of it not) finds the
// alarm its first attempt made and succeeds, with one alarm; an alarm of
// that name made by someone else, or by another stack or resource, fails
// the create and is left as it was. Before, every create took the name.
func TestAlarmCreateAfterCrash(t *testing.T) {
	m, err := monitor.Open(monitor.Options{KV: kv.NewMemory(), Region: "us-east-1", AccountID: "123456789012", Tick: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	a := &cwAlarms{Options{Alarms: m}}
	props := func(name, desc string) map[string]any {
		return map[string]any{"AlarmName": name, "AlarmDescription": desc, "Namespace": "AWS/EFS", "MetricName": "TimeSinceLastSync", "Statistic": "Maximum",
			"Period": "60", "EvaluationPeriods": "1", "Threshold": "60", "ComparisonOperator": "GreaterThanThreshold"}
	}
	req := func(stackID, logicalID string, pr map[string]any) *cfn.Request {
		return &cfn.Request{StackName: "s", StackID: stackID, LogicalID: logicalID, Token: "cfn-0123456789abcdef0123456789abcdef01234567", Props: pr}
	}
	const stack = "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1"
	first, err := a.Create(t.Context(), req(stack, "Lag", props("lag", "the stack's")))
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.Create(t.Context(), req(stack, "Lag", props("lag", "the stack's")))
	if err != nil {
		t.Fatalf("the create run again after a crash: %v", err)
	}
	if d := cmp.Diff(first, again); d != "" {
		t.Fatalf("the second attempt's outcome (-first +again):\n%s", d)
	}
	list, err := m.DescribeAlarms(t.Context(), monitor.AlarmFilter{})
	alarms := list.Metric
	if err != nil || len(alarms) != 1 {
		t.Fatalf("%d alarms after the create ran twice (%v), want 1", len(alarms), err)
	}
	tags, err := m.ListTagsForResource(t.Context(), first.Attributes["Arn"])
	if err != nil || !slices.Contains(tags, monitor.Tag{Key: "aws:cloudformation:logical-id", Value: "Lag"}) {
		t.Fatalf("the stack's alarm is tagged %v (%v), want aws:cloudformation:logical-id=Lag", tags, err)
	}
	// Another stack, another resource of this stack: someone else's.
	for _, r := range []*cfn.Request{req(stack+"-other", "Lag", props("lag", "another stack's")), req(stack, "Lag2", props("lag", "another resource's"))} {
		_, err := a.Create(t.Context(), r)
		wantAlreadyExists(t, err, "Resource of type 'AWS::CloudWatch::Alarm' with identifier 'lag' already exists.")
	}
	// The API's own alarm.
	theirs := a.input("theirs", props("theirs", "someone else's"))
	if err := m.PutMetricAlarm(t.Context(), theirs); err != nil {
		t.Fatal(err)
	}
	_, err = a.Create(t.Context(), req(stack, "Theirs", props("theirs", "the stack's")))
	wantAlreadyExists(t, err, "Resource of type 'AWS::CloudWatch::Alarm' with identifier 'theirs' already exists.")
	list, err = m.DescribeAlarms(t.Context(), monitor.AlarmFilter{})
	alarms = list.Metric
	if err != nil || len(alarms) != 2 || alarms[0].Description != "the stack's" || alarms[1].Description != "someone else's" {
		t.Fatalf("alarms after the refused creates: %+v (%v)", alarms, err)
	}
	// The stack's tags are AWS's: not removable through the API.
	if err := m.UntagResource(t.Context(), first.Attributes["Arn"], []string{"aws:cloudformation:stack-id"}); !errors.Is(err, monitor.ErrInvalidParameterValue) {
		t.Fatalf("untagging aws:cloudformation:stack-id: %v, want InvalidParameterValue", err)
	}
}

// TestTopicCreateAfterCrash is TestAlarmCreateAfterCrash for SNS topics
// (CreateTopic, like PutMetricAlarm, takes an existing name).
func TestTopicCreateAfterCrash(t *testing.T) {
	ns, err := notify.Open(notify.Options{KV: kv.NewMemory(), Region: "us-east-1", AccountID: "123456789012", PublicURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	s := &snsTopics{Options{Topics: ns}}
	req := func(stackID, logicalID, name string) *cfn.Request {
		return &cfn.Request{StackName: "s", StackID: stackID, LogicalID: logicalID, Token: "cfn-0123456789abcdef0123456789abcdef01234567",
			Props: map[string]any{"TopicName": name, "Tags": []any{map[string]any{"Key": "team", "Value": "dr"}}}}
	}
	const stack = "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1"
	first, err := s.Create(t.Context(), req(stack, "Alerts", "alerts"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Create(t.Context(), req(stack, "Alerts", "alerts"))
	if err != nil {
		t.Fatalf("the create run again after a crash: %v", err)
	}
	if d := cmp.Diff(first, again); d != "" {
		t.Fatalf("the second attempt's outcome (-first +again):\n%s", d)
	}
	for _, r := range []*cfn.Request{req(stack+"-other", "Alerts", "alerts"), req(stack, "Alerts2", "alerts")} {
		_, err := s.Create(t.Context(), r)
		wantAlreadyExists(t, err, "Resource of type 'AWS::SNS::Topic' with identifier 'arn:aws:sns:us-east-1:123456789012:alerts' already exists.")
	}
	if _, err := ns.CreateTopic(t.Context(), "theirs", nil, nil); err != nil {
		t.Fatal(err)
	}
	_, err = s.Create(t.Context(), req(stack, "Theirs", "theirs"))
	wantAlreadyExists(t, err, "Resource of type 'AWS::SNS::Topic' with identifier 'arn:aws:sns:us-east-1:123456789012:theirs' already exists.")
	topics, _, err := ns.ListTopics(t.Context(), "")
	if d := cmp.Diff([]string{"arn:aws:sns:us-east-1:123456789012:alerts", "arn:aws:sns:us-east-1:123456789012:theirs"}, topics); err != nil || d != "" {
		t.Fatalf("topics (-want +got):\n%s (%v)", d, err)
	}
}

// wantNotFound checks an update's failure against CloudFormation's.
func wantNotFound(t *testing.T, err error, msg string) {
	t.Helper()
	var he *cfn.HandlerError
	if !errors.As(err, &he) || he.Code != "NotFound" || he.Message != msg {
		t.Fatalf("got %v, want NotFound %q", err, msg)
	}
}

// TestUpdateOfDeletedAlarm: an update of an alarm deleted out of band
// fails NotFound, as AWS's handler does, and does not re-create it
// (PutMetricAlarm is an upsert: before, the update made it again). A tag
// call on a missing alarm is NotFound too (was an internal failure).
func TestUpdateOfDeletedAlarm(t *testing.T) {
	m, err := monitor.Open(monitor.Options{KV: kv.NewMemory(), Region: "us-east-1", AccountID: "123456789012", Tick: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	a := &cwAlarms{Options{Alarms: m}}
	props := func(desc string) map[string]any {
		return map[string]any{"AlarmName": "lag", "AlarmDescription": desc, "Namespace": "AWS/EFS", "MetricName": "TimeSinceLastSync", "Statistic": "Maximum",
			"Period": "60", "EvaluationPeriods": "1", "Threshold": "60", "ComparisonOperator": "GreaterThanThreshold"}
	}
	old := props("first")
	out, err := a.Create(t.Context(), &cfn.Request{StackName: "s", LogicalID: "Lag", Token: "cfn-0123456789abcdef0123456789abcdef01234567", Props: old})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteAlarms(t.Context(), []string{"lag"}); err != nil {
		t.Fatal(err)
	}
	_, err = a.Update(t.Context(), &cfn.Request{PhysicalID: out.PhysicalID, Props: props("second"), OldProps: old, Attributes: out.Attributes})
	wantNotFound(t, err, "Resource of type 'AWS::CloudWatch::Alarm' with identifier 'lag' was not found.")
	if l, err := m.DescribeAlarms(t.Context(), monitor.AlarmFilter{}); err != nil || len(l.Metric) != 0 {
		t.Fatalf("%d alarms after the failed update (%v), want 0", len(l.Metric), err)
	}
	err = handlerError(m.TagResource(t.Context(), out.Attributes["Arn"], []monitor.Tag{{Key: "k", Value: "v"}}))
	if he := (*cfn.HandlerError)(nil); !errors.As(err, &he) || he.Code != "NotFound" {
		t.Fatalf("TagResource of a deleted alarm: %v, want a NotFound handler error", err)
	}
}

// TestUpdateOfDeletedTopic: an update of a topic deleted out of band
// fails NotFound and makes no topic and no subscription.
func TestUpdateOfDeletedTopic(t *testing.T) {
	n := openTopics(t)
	s := &snsTopics{Options{Topics: n}}
	old := map[string]any{"DisplayName": "a"}
	out, err := s.Create(t.Context(), &cfn.Request{StackName: "s", LogicalID: "Topic", Token: "cfn-0123456789abcdef0123456789abcdef01234567", Props: old})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.DeleteTopic(t.Context(), out.PhysicalID); err != nil {
		t.Fatal(err)
	}
	pr := map[string]any{"DisplayName": "b", "Subscription": []any{map[string]any{"Protocol": "http", "Endpoint": "http://127.0.0.1:9/x"}}}
	_, err = s.Update(t.Context(), &cfn.Request{PhysicalID: out.PhysicalID, Props: pr, OldProps: old, Attributes: out.Attributes})
	wantNotFound(t, err, "Resource of type 'AWS::SNS::Topic' with identifier '"+out.PhysicalID+"' was not found.")
	if l, _, err := n.ListTopics(t.Context(), ""); err != nil || len(l) != 0 {
		t.Fatalf("topics after the failed update: %v (%v), want none", l, err)
	}
	if l, _, err := n.ListSubscriptions(t.Context(), "", ""); err != nil || len(l) != 0 {
		t.Fatalf("subscriptions after the failed update: %v (%v), want none", l, err)
	}
}

// openTopics is an in-memory SNS service.
func openTopics(t *testing.T) *notify.Service {
	t.Helper()
	ns, err := notify.Open(notify.Options{KV: kv.NewMemory(), Region: "us-east-1", AccountID: "123456789012", PublicURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}
