package iac

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// lagAlarmTemplate is a file system with the lag alarm of the EFS
// replication documentation and the SNS topic it notifies.
const lagAlarmTemplate = `AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Endpoint: {Type: String}
  Threshold: {Type: Number, Default: 600}
  Subscribe: {Type: String, Default: "yes"}
Conditions:
  Subscribed: !Equals [!Ref Subscribe, "yes"]
Resources:
  Fs:
    Type: AWS::EFS::FileSystem
  Alerts:
    Type: AWS::SNS::Topic
    Properties:
      DisplayName: DR alerts
      Subscription: !If [Subscribed, [{Protocol: http, Endpoint: !Ref Endpoint}], !Ref AWS::NoValue]
  Pager:
    Type: AWS::SNS::Subscription
    Properties:
      TopicArn: !Ref Alerts
      Protocol: http
      Endpoint: !Sub "${Endpoint}/pager"
  LagAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmDescription: replication lag of the DR file system
      Namespace: AWS/EFS
      MetricName: TimeSinceLastSync
      Dimensions: [{Name: FileSystemId, Value: !Ref Fs}]
      Statistic: Maximum
      Period: 60
      EvaluationPeriods: 3
      DatapointsToAlarm: 2
      Threshold: !Ref Threshold
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: breaching
      AlarmActions: [!Ref Alerts]
      OKActions: [!Ref Alerts]
  Worst:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: worst-lag
      EvaluationPeriods: 1
      Threshold: 900
      ComparisonOperator: GreaterThanThreshold
      Metrics:
        - Id: m1
          ReturnData: false
          MetricStat: {Metric: {Namespace: AWS/EFS, MetricName: TimeSinceLastSync, Dimensions: [{Name: FileSystemId, Value: !Ref Fs}]}, Period: 60, Stat: Maximum}
        - Id: e1
          Expression: "FILL(m1, 0) / 60"
Outputs:
  AlarmArn: {Value: !GetAtt LagAlarm.Arn}
  TopicArn: {Value: !Ref Alerts}
`

// TestMonitoringWithCLI declares a file system's lag alarm and its SNS
// topic (inline and separate subscriptions) with the aws CLI's
// cloudformation deploy, updates them in place and deletes them with the
// stack.
func TestMonitoringWithCLI(t *testing.T) {
	e := newEnv(t)
	c := newCLI(t, e)
	var mu sync.Mutex
	got := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.URL.Path]++
		mu.Unlock()
	}))
	defer hook.Close()
	tpl := filepath.Join(t.TempDir(), "lag.yaml")
	os.WriteFile(tpl, []byte(lagAlarmTemplate), 0o600)
	q := func(args ...string) string { return c.ok(append(args, "--output", "text")...) }

	c.ok("cloudformation", "deploy", "--template-file", tpl, "--stack-name", "lag", "--parameter-overrides", "Endpoint="+hook.URL)
	fs := q("cloudformation", "describe-stack-resource", "--stack-name", "lag", "--logical-resource-id", "Fs", "--query", "StackResourceDetail.PhysicalResourceId")
	alarm := q("cloudformation", "describe-stack-resource", "--stack-name", "lag", "--logical-resource-id", "LagAlarm", "--query", "StackResourceDetail.PhysicalResourceId")
	topic := q("cloudformation", "describe-stacks", "--stack-name", "lag", "--query", "Stacks[0].Outputs[?OutputKey=='TopicArn'].OutputValue")
	if !strings.HasPrefix(alarm, "lag-LagAlarm-") || !strings.HasPrefix(topic, "arn:aws:sns:us-east-1:123456789012:lag-Alerts-") {
		t.Fatalf("alarm %q topic %q", alarm, topic)
	}
	want := strings.Join([]string{"replication lag of the DR file system", "TimeSinceLastSync", "600.0", "2", topic, fs}, "\t")
	desc := []string{"cloudwatch", "describe-alarms", "--alarm-names", alarm, "--query", "MetricAlarms[0].[AlarmDescription,MetricName,Threshold,DatapointsToAlarm,AlarmActions[0],Dimensions[0].Value]"}
	if d := q(desc...); d != want {
		t.Fatalf("describe-alarms %q, want %q", d, want)
	}
	if arn := q("cloudformation", "describe-stacks", "--stack-name", "lag", "--query", "Stacks[0].Outputs[?OutputKey=='AlarmArn'].OutputValue"); arn != "arn:aws:cloudwatch:us-east-1:123456789012:alarm:"+alarm {
		t.Fatalf("AlarmArn output %q", arn)
	}
	if m := q("cloudwatch", "describe-alarms", "--alarm-names", "worst-lag", "--query", "MetricAlarms[0].Metrics[1].Expression"); m != "FILL(m1, 0) / 60" {
		t.Fatalf("worst-lag metrics %q", m)
	}
	subs := []string{"sns", "list-subscriptions-by-topic", "--topic-arn", topic, "--query", "sort(Subscriptions[].Endpoint)"}
	if s := q(subs...); s != hook.URL+"\t"+hook.URL+"/pager" {
		t.Fatalf("subscriptions %q", s)
	}

	// In place: the threshold, and the inline subscription removed.
	c.ok("cloudformation", "deploy", "--template-file", tpl, "--stack-name", "lag", "--parameter-overrides", "Endpoint="+hook.URL, "Threshold=300", "Subscribe=no")
	if a := q("cloudformation", "describe-stack-resource", "--stack-name", "lag", "--logical-resource-id", "LagAlarm", "--query", "StackResourceDetail.PhysicalResourceId"); a != alarm {
		t.Fatalf("the alarm was replaced: %s → %s", alarm, a)
	}
	if d := q(desc...); d != strings.Replace(want, "600.0", "300.0", 1) {
		t.Fatalf("describe-alarms after the update %q", d)
	}
	if s := q(subs...); s != hook.URL+"/pager" {
		t.Fatalf("subscriptions after the update %q", s)
	}

	c.ok("cloudformation", "delete-stack", "--stack-name", "lag")
	c.ok("cloudformation", "wait", "stack-delete-complete", "--stack-name", "lag")
	if n := q("cloudwatch", "describe-alarms", "--query", "length(MetricAlarms)"); n != "0" {
		t.Fatalf("%s alarms left after delete-stack", n)
	}
	if n := q("sns", "list-topics", "--query", "length(Topics)"); n != "0" {
		t.Fatalf("%s topics left after delete-stack", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if got["/"] == 0 || got["/pager"] == 0 {
		t.Fatalf("the subscribers got no confirmation request: %v", got)
	}
}

// TestMonitoringNamesTakenWithCLI: a template that names an alarm or a
// topic someone else already made (with the aws CLI) fails, as on AWS
// ("… already exists", HandlerErrorCode AlreadyExists), and the stack's
// rollback and deletion leave the other owner's alarm and topic as they
// were. Before, the stack adopted both (PutMetricAlarm and CreateTopic
// take an existing name) — the alarm's definition overwritten by the
// template's — and deleted them with the stack. Renaming an alarm in an
// update replaces it: the new one is made, the old one deleted.
func TestMonitoringNamesTakenWithCLI(t *testing.T) {
	e := newEnv(t)
	c := newCLI(t, e)
	q := func(args ...string) string { return c.ok(append(args, "--output", "text")...) }
	dir := t.TempDir()
	tpl := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("AWSTemplateFormatVersion: \"2010-09-09\"\nResources:\n"+body), 0o600)
		return p
	}
	alarm := func(name string) string {
		return `  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: ` + name + `
      AlarmDescription: the stack's
      Namespace: AWS/EFS
      MetricName: TimeSinceLastSync
      Statistic: Maximum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 60
      ComparisonOperator: GreaterThanThreshold
`
	}
	c.ok("cloudwatch", "put-metric-alarm", "--alarm-name", "taken", "--alarm-description", "someone else's",
		"--namespace", "AWS/EFS", "--metric-name", "PermittedThroughput", "--statistic", "Average", "--period", "300",
		"--evaluation-periods", "2", "--threshold", "5", "--comparison-operator", "LessThanThreshold")
	topic := q("sns", "create-topic", "--name", "taken-topic", "--query", "TopicArn")
	c.ok("sns", "set-topic-attributes", "--topic-arn", topic, "--attribute-name", "DisplayName", "--attribute-value", "someone else's")
	theirAlarm := []string{"cloudwatch", "describe-alarms", "--alarm-names", "taken", "--query", "MetricAlarms[].[AlarmDescription,MetricName,Threshold]"}
	theirTopic := []string{"sns", "get-topic-attributes", "--topic-arn", topic, "--query", "Attributes.DisplayName"}
	intact := func(when string) {
		t.Helper()
		if a := q(theirAlarm...); a != "someone else's\tPermittedThroughput\t5.0" {
			t.Errorf("%s: the other owner's alarm is %q", when, a)
		}
		if d, _, err := c.run(append(theirTopic, "--output", "text")...); err != nil || d != "someone else's" {
			t.Errorf("%s: the other owner's topic: %q %v", when, d, err)
		}
	}

	for _, tc := range []struct{ stack, body, resource, id string }{
		{"alarm-taken", alarm("taken"), "Alarm", "taken"},
		{"topic-taken", "  Topic:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: taken-topic\n", "Topic", topic},
	} {
		c.ok("cloudformation", "create-stack", "--stack-name", tc.stack, "--template-body", "file://"+tpl(tc.stack+".yaml", tc.body))
		if _, _, err := c.run("cloudformation", "wait", "stack-create-complete", "--stack-name", tc.stack); err == nil {
			t.Errorf("%s: created, want CREATE_FAILED", tc.stack)
		}
		if s := q("cloudformation", "describe-stacks", "--stack-name", tc.stack, "--query", "Stacks[0].StackStatus"); s != "ROLLBACK_COMPLETE" {
			t.Errorf("%s: %s, want ROLLBACK_COMPLETE", tc.stack, s)
		}
		reason := q("cloudformation", "describe-stack-events", "--stack-name", tc.stack, "--query",
			"StackEvents[?LogicalResourceId=='"+tc.resource+"' && ResourceStatus=='CREATE_FAILED'].ResourceStatusReason")
		typ := map[string]string{"Alarm": "AWS::CloudWatch::Alarm", "Topic": "AWS::SNS::Topic"}[tc.resource]
		if want := "Resource of type '" + typ + "' with identifier '" + tc.id + "' already exists."; !strings.Contains(reason, want) || !strings.Contains(reason, "AlreadyExists") {
			t.Errorf("%s: CREATE_FAILED reason %q, want %q (AlreadyExists)", tc.stack, reason, want)
		}
		intact(tc.stack + " rolled back")
		c.ok("cloudformation", "delete-stack", "--stack-name", tc.stack)
		c.ok("cloudformation", "wait", "stack-delete-complete", "--stack-name", tc.stack)
		intact(tc.stack + " deleted")
	}

	// Renaming: a replacement.
	c.ok("cloudformation", "deploy", "--template-file", tpl("mine.yaml", alarm("mine-1")), "--stack-name", "mine")
	c.ok("cloudformation", "deploy", "--template-file", tpl("mine.yaml", alarm("mine-2")), "--stack-name", "mine")
	if a := q("cloudwatch", "describe-alarms", "--alarm-name-prefix", "mine-", "--query", "MetricAlarms[].AlarmName"); a != "mine-2" {
		t.Errorf("alarms after renaming mine-1 to mine-2: %q", a)
	}
	if id := q("cloudformation", "describe-stack-resource", "--stack-name", "mine", "--logical-resource-id", "Alarm", "--query", "StackResourceDetail.PhysicalResourceId"); id != "mine-2" {
		t.Errorf("physical id after the rename: %q", id)
	}
	c.ok("cloudformation", "delete-stack", "--stack-name", "mine")
	c.ok("cloudformation", "wait", "stack-delete-complete", "--stack-name", "mine")
	if a := q("cloudwatch", "describe-alarms", "--query", "MetricAlarms[].AlarmName"); a != "taken" {
		t.Errorf("alarms left: %q, want the other owner's only", a)
	}
}
