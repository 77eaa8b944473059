package iac

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// failoverTemplate is the automated-failover setup of CloudWatch's
// documentation: the replication lag alarm AND the source region's
// health in a composite alarm, and a dashboard with TimeSinceLastSync.
const failoverTemplate = `AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Operator: {Type: String, Default: AND}
  Title: {Type: String, Default: Replication lag}
Resources:
  Fs:
    Type: AWS::EFS::FileSystem
  Alerts:
    Type: AWS::SNS::Topic
  LagAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/EFS
      MetricName: TimeSinceLastSync
      Dimensions: [{Name: FileSystemId, Value: !Ref Fs}]
      Statistic: Maximum
      Period: 60
      EvaluationPeriods: 3
      Threshold: 600
      ComparisonOperator: GreaterThanThreshold
  SourceHealth:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: source-health
      Namespace: DR/Health
      MetricName: SourceDown
      Statistic: Maximum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 1
      ComparisonOperator: GreaterThanOrEqualToThreshold
  Failover:
    Type: AWS::CloudWatch::CompositeAlarm
    Properties:
      AlarmName: failover
      AlarmDescription: fail over the DR file system
      AlarmRule: !Sub 'ALARM("${LagAlarm}") ${Operator} ALARM(${SourceHealth})'
      AlarmActions: [!Ref Alerts]
      Tags: [{Key: team, Value: dr}]
  Board:
    Type: AWS::CloudWatch::Dashboard
    Properties:
      DashboardBody: !Sub '{"widgets":[{"type":"metric","x":0,"y":0,"width":12,"height":6,"properties":{"title":"${Title}","region":"${AWS::Region}","stat":"Maximum","period":60,"metrics":[["AWS/EFS","TimeSinceLastSync","FileSystemId","${Fs}"]]}},{"type":"alarm","x":12,"y":0,"width":12,"height":6,"properties":{"alarms":["${Failover.Arn}"]}}]}'
Outputs:
  FailoverArn: {Value: !GetAtt Failover.Arn}
  Board: {Value: !Ref Board}
`

// TestCompositeAndDashboardWithCLI deploys the failover composite alarm
// and the dashboard with the aws CLI's cloudformation deploy, updates
// both in place and deletes them with the stack.
func TestCompositeAndDashboardWithCLI(t *testing.T) {
	e := newEnv(t)
	c := newCLI(t, e)
	tpl := filepath.Join(t.TempDir(), "failover.yaml")
	os.WriteFile(tpl, []byte(failoverTemplate), 0o600)
	q := func(args ...string) string { return c.ok(append(args, "--output", "text")...) }
	c.ok("cloudformation", "deploy", "--template-file", tpl, "--stack-name", "dr")
	lag := q("cloudformation", "describe-stack-resource", "--stack-name", "dr", "--logical-resource-id", "LagAlarm", "--query", "StackResourceDetail.PhysicalResourceId")
	fs := q("cloudformation", "describe-stack-resource", "--stack-name", "dr", "--logical-resource-id", "Fs", "--query", "StackResourceDetail.PhysicalResourceId")
	board := q("cloudformation", "describe-stacks", "--stack-name", "dr", "--query", "Stacks[0].Outputs[?OutputKey=='Board'].OutputValue")
	if !strings.HasPrefix(board, "dr-Board-") {
		t.Fatalf("dashboard name %q", board)
	}
	if arn := q("cloudformation", "describe-stacks", "--stack-name", "dr", "--query", "Stacks[0].Outputs[?OutputKey=='FailoverArn'].OutputValue"); arn != "arn:aws:cloudwatch:us-east-1:123456789012:alarm:failover" {
		t.Fatalf("FailoverArn %q", arn)
	}
	desc := []string{"cloudwatch", "describe-alarms", "--alarm-names", "failover", "--alarm-types", "CompositeAlarm", "--query", "CompositeAlarms[0].[AlarmRule,StateValue,AlarmDescription]"}
	if d, want := q(desc...), `ALARM("`+lag+`") AND ALARM(source-health)`+"\tOK\tfail over the DR file system"; d != want {
		t.Fatalf("describe-alarms %q, want %q", d, want)
	}
	if tags := q("cloudwatch", "list-tags-for-resource", "--resource-arn", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:failover", "--query", "Tags[0].Value"); tags != "dr" {
		t.Fatalf("tags %q", tags)
	}
	body := q("cloudwatch", "get-dashboard", "--dashboard-name", board, "--query", "DashboardBody")
	if !strings.Contains(body, `"title":"Replication lag"`) || !strings.Contains(body, `"FileSystemId","`+fs+`"`) || !strings.Contains(body, `"region":"us-east-1"`) {
		t.Fatalf("dashboard body %s", body)
	}

	// In place: the rule and the dashboard's body.
	c.ok("cloudformation", "deploy", "--template-file", tpl, "--stack-name", "dr", "--parameter-overrides", "Operator=OR", "Title=Lag")
	if d := q(desc...); !strings.HasPrefix(d, `ALARM("`+lag+`") OR ALARM(source-health)`) {
		t.Fatalf("describe-alarms after the update %q", d)
	}
	if b := q("cloudformation", "describe-stacks", "--stack-name", "dr", "--query", "Stacks[0].Outputs[?OutputKey=='Board'].OutputValue"); b != board {
		t.Fatalf("the dashboard was replaced: %s → %s", board, b)
	}
	if body := q("cloudwatch", "get-dashboard", "--dashboard-name", board, "--query", "DashboardBody"); !strings.Contains(body, `"title":"Lag"`) {
		t.Fatalf("dashboard body after the update %s", body)
	}

	c.ok("cloudformation", "delete-stack", "--stack-name", "dr")
	c.ok("cloudformation", "wait", "stack-delete-complete", "--stack-name", "dr")
	if n := q("cloudwatch", "describe-alarms", "--alarm-types", "CompositeAlarm", "MetricAlarm", "--query", "[length(CompositeAlarms), length(MetricAlarms)]"); n != "0\t0" {
		t.Fatalf("%s alarms left after delete-stack", n)
	}
	if n := q("cloudwatch", "list-dashboards", "--query", "length(DashboardEntries)"); n != "0" {
		t.Fatalf("%s dashboards left after delete-stack", n)
	}
}
