package monitoringe2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

// TestCompositeFailoverAlarm: the automated-failover alarm of CloudWatch's
// documentation, the replication lag alarm (TimeSinceLastSync) AND the
// source region's health, as a composite alarm with the aws CLI. It goes
// to ALARM only when both children are, notifies its SNS topic (a signed
// notification to an HTTP subscriber), survives a kill -9 of its region
// and goes back to OK when the destination returns. The dashboard with
// TimeSinceLastSync survives the restart too.
func TestCompositeFailoverAlarm(t *testing.T) {
	rcv := newReceiver(t)
	mail := newSMTP(t)
	w := newWorld(t, mail.addr)
	aws, regions, src := w.aws, w.regions, w.src
	topic := aws.must("sns", "create-topic", "--name", "failover", "--query", "TopicArn", "--output", "text")
	aws.must("sns", "subscribe", "--topic-arn", topic, "--protocol", "http", "--notification-endpoint", rcv.url)
	testkit.WaitFor(t, "subscription confirmed", 30*time.Second, func() bool {
		out, _ := aws.run("sns", "list-subscriptions-by-topic", "--topic-arn", topic, "--query", "Subscriptions[0].SubscriptionArn", "--output", "text")
		return strings.HasPrefix(out, "arn:aws:sns")
	})
	aws.must("cloudwatch", "put-metric-alarm", "--alarm-name", "lag", "--namespace", "AWS/EFS", "--metric-name", "TimeSinceLastSync",
		"--dimensions", "Name=FileSystemId,Value="+src, "--statistic", "Maximum", "--period", "10", "--evaluation-periods", "3",
		"--datapoints-to-alarm", "2", "--threshold", "5", "--comparison-operator", "GreaterThanThreshold", "--treat-missing-data", "breaching")
	// The source's health as an operator's probe reports it; missing data
	// keeps the last state.
	health := func(v string) {
		aws.must("cloudwatch", "put-metric-data", "--namespace", "DR/Health", "--metric-name", "SourceDown", "--value", v, "--storage-resolution", "1")
	}
	aws.must("cloudwatch", "put-metric-alarm", "--alarm-name", "source-health", "--namespace", "DR/Health", "--metric-name", "SourceDown",
		"--statistic", "Maximum", "--period", "10", "--evaluation-periods", "1", "--threshold", "1", "--comparison-operator", "GreaterThanOrEqualToThreshold",
		"--treat-missing-data", "ignore")
	aws.must("cloudwatch", "put-composite-alarm", "--alarm-name", "failover", "--alarm-rule", `ALARM("lag") AND ALARM("source-health")`,
		"--alarm-actions", topic, "--ok-actions", topic)
	state := func(name string) string {
		out, _ := aws.run("cloudwatch", "describe-alarms", "--alarm-names", name, "--alarm-types", "MetricAlarm", "CompositeAlarm",
			"--query", "[MetricAlarms[0].StateValue, CompositeAlarms[0].StateValue]", "--output", "json")
		var s []*string
		if json.Unmarshal([]byte(out), &s) != nil || len(s) != 2 {
			return ""
		}
		for _, v := range s {
			if v != nil {
				return *v
			}
		}
		return ""
	}
	testkit.WaitFor(t, "lag OK while replicating", 90*time.Second, func() bool { return state("lag") == "OK" })
	health("1")
	testkit.WaitFor(t, "source-health ALARM", 60*time.Second, func() bool { return state("source-health") == "ALARM" })
	if s := state("failover"); s != "OK" {
		t.Fatalf("failover with only source-health in ALARM: %s", s)
	}
	body := `{"widgets":[{"type":"metric","x":0,"y":0,"width":24,"height":6,"properties":{"region":"us-east-1","stat":"Maximum","period":10,` +
		`"metrics":[["AWS/EFS","TimeSinceLastSync","FileSystemId","` + src + `"]],"title":"Replication lag"}},` +
		`{"type":"alarm","x":0,"y":6,"width":24,"height":3,"properties":{"alarms":["arn:aws:cloudwatch:us-east-1:123456789012:alarm:failover"]}}]}`
	aws.must("cloudwatch", "put-dashboard", "--dashboard-name", "dr", "--dashboard-body", body)

	seen := rcv.count()
	regions["us-west-2"].Kill9()
	testkit.WaitFor(t, "failover ALARM with the destination down and the source unhealthy", 120*time.Second, func() bool { return state("failover") == "ALARM" })
	testkit.WaitFor(t, "signed failover ALARM notification", 60*time.Second, func() bool { return rcv.alarm("failover", "ALARM", seen) != nil })
	n := rcv.alarm("failover", "ALARM", seen)
	if n["OldStateValue"] != "OK" || n["AlarmRule"] != `ALARM("lag") AND ALARM("source-health")` ||
		!strings.Contains(n["NewStateReason"].(string), "alarm:lag transitioned to ALARM") {
		t.Fatalf("notification %+v", n)
	}
	for _, args := range [][]string{
		{"cloudwatch", "describe-alarms", "--alarm-types", "CompositeAlarm", "--query", "CompositeAlarms[].[AlarmName,StateValue,StateReason]", "--output", "text"},
		{"cloudwatch", "describe-alarms", "--children-of-alarm-name", "failover", "--query", "MetricAlarms[].[AlarmName,StateValue]", "--output", "text"},
	} {
		t.Logf("$ aws %s\n%s", strings.Join(args, " "), aws.must(args...))
	}

	// The source region restarts: the composite alarm, its history and
	// the dashboard are there, and it is evaluated again.
	regions["us-east-1"].Kill9()
	regions["us-east-1"].start()
	if s := state("failover"); s != "ALARM" {
		t.Fatalf("failover after the restart: %q", s)
	}
	if out := aws.must("cloudwatch", "describe-alarm-history", "--alarm-name", "failover", "--history-item-type", "StateUpdate",
		"--query", "AlarmHistoryItems[].HistorySummary", "--output", "text"); !strings.Contains(out, "from OK to ALARM") {
		t.Fatalf("history after the restart: %s", out)
	}
	if out := aws.must("cloudwatch", "get-dashboard", "--dashboard-name", "dr", "--query", "DashboardBody", "--output", "text"); out != body {
		t.Fatalf("dashboard after the restart: %s", out)
	}
	seen = rcv.count()
	regions["us-west-2"].start()
	testkit.WaitFor(t, "failover back to OK", 180*time.Second, func() bool { return state("failover") == "OK" })
	testkit.WaitFor(t, "signed failover OK notification", 60*time.Second, func() bool { return rcv.alarm("failover", "OK", seen) != nil })
	if s := state("source-health"); s != "ALARM" {
		t.Fatalf("source-health: %s (the composite went OK because lag did)", s)
	}
	rcv.mu.Lock()
	bad := rcv.bad
	rcv.mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("messages that did not verify: %v", bad)
	}
}
