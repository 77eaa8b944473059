package cloudwatch

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/regionfs/regionfs/internal/testkit"
)

// awsCLI runs the aws CLI (1.45: JSON 1.0) against s.
func awsCLI(t *testing.T, s *server) (run func(args ...string) (string, error), must func(args ...string) string) {
	awsPath := testkit.NeedTool(t, "aws")
	dir := t.TempDir()
	run = func(args ...string) (string, error) {
		cmd := exec.Command(awsPath, append(args, "--endpoint-url", s.url, "--region", "us-east-1", "--output", "json")...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+akid, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_EC2_METADATA_DISABLED=true",
			"AWS_MAX_ATTEMPTS=1", "AWS_CONFIG_FILE="+dir+"/c", "AWS_SHARED_CREDENTIALS_FILE="+dir+"/s", "AWS_PAGER=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must = func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, out)
		}
		return out
	}
	return run, must
}

// TestCLICompositeAlarms: a composite alarm over two metric alarms goes
// to ALARM only when both are, lists its children and parents, refuses
// the deletion of a child, and refuses bad rules as CloudWatch does.
func TestCLICompositeAlarms(t *testing.T) {
	s := start(t)
	run, must := awsCLI(t, s)
	// Daily periods: a state set by set-alarm-state holds for the test.
	for _, name := range []string{"lag", "source-health"} {
		must("cloudwatch", "put-metric-alarm", "--alarm-name", name, "--namespace", "Cli", "--metric-name", name, "--statistic", "Maximum",
			"--period", "86400", "--evaluation-periods", "1", "--threshold", "5", "--comparison-operator", "GreaterThanThreshold")
	}
	must("cloudwatch", "put-composite-alarm", "--alarm-name", "failover", "--alarm-rule", `ALARM("lag") AND ALARM(arn:aws:cloudwatch:us-east-1:123456789012:alarm:source-health)`,
		"--alarm-actions", "arn:aws:sns:us-east-1:123456789012:dr", "--alarm-description", "fail over", "--tags", "Key=team,Value=dr")
	composite := func() map[string]any {
		t.Helper()
		var out struct {
			CompositeAlarms []map[string]any
			MetricAlarms    []map[string]any
		}
		if err := json.Unmarshal([]byte(must("cloudwatch", "describe-alarms", "--alarm-types", "CompositeAlarm")), &out); err != nil || len(out.CompositeAlarms) != 1 || len(out.MetricAlarms) != 0 {
			t.Fatalf("describe-alarms --alarm-types CompositeAlarm: %v %+v", err, out)
		}
		return out.CompositeAlarms[0]
	}
	if c := composite(); c["StateValue"] != "OK" || c["AlarmRule"] == "" || c["AlarmDescription"] != "fail over" {
		t.Fatalf("new composite: %+v", c)
	}
	// Without AlarmTypes only metric alarms are listed (CloudWatch's rule).
	if out := must("cloudwatch", "describe-alarms"); strings.Contains(out, `"failover"`) {
		t.Fatalf("describe-alarms without types lists the composite: %s", out)
	}
	must("cloudwatch", "set-alarm-state", "--alarm-name", "lag", "--state-value", "ALARM", "--state-reason", "drill")
	if c := composite(); c["StateValue"] != "OK" {
		t.Fatalf("one child in ALARM: %+v", c)
	}
	must("cloudwatch", "set-alarm-state", "--alarm-name", "source-health", "--state-value", "ALARM", "--state-reason", "drill")
	c := composite()
	if c["StateValue"] != "ALARM" || !strings.Contains(c["StateReason"].(string), "alarm:source-health transitioned to ALARM at") ||
		!strings.Contains(c["StateReasonData"].(string), `"triggeringAlarms"`) {
		t.Fatalf("both children in ALARM: %+v", c)
	}
	if out := must("cloudwatch", "describe-alarms", "--children-of-alarm-name", "failover"); !strings.Contains(out, `"lag"`) || !strings.Contains(out, `"source-health"`) {
		t.Fatalf("children: %s", out)
	}
	if out := must("cloudwatch", "describe-alarms", "--parents-of-alarm-name", "lag"); !strings.Contains(out, `"failover"`) {
		t.Fatalf("parents: %s", out)
	}
	if out := must("cloudwatch", "describe-alarm-history", "--alarm-name", "failover", "--alarm-types", "CompositeAlarm"); !strings.Contains(out, "Alarm updated from OK to ALARM") ||
		!strings.Contains(out, `"AlarmType": "CompositeAlarm"`) {
		t.Fatalf("history: %s", out)
	}
	arn := "arn:aws:cloudwatch:us-east-1:123456789012:alarm:failover"
	must("cloudwatch", "tag-resource", "--resource-arn", arn, "--tags", "Key=env,Value=prod")
	if out := must("cloudwatch", "list-tags-for-resource", "--resource-arn", arn); !strings.Contains(out, `"team"`) || !strings.Contains(out, `"env"`) {
		t.Fatalf("tags: %s", out)
	}
	must("cloudwatch", "disable-alarm-actions", "--alarm-names", "failover")
	if c := composite(); c["ActionsEnabled"] != false {
		t.Fatalf("disable-alarm-actions: %+v", c)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cloudwatch", "delete-alarms", "--alarm-names", "lag"}, "(ValidationError)"},
		{[]string{"cloudwatch", "put-composite-alarm", "--alarm-name", "x", "--alarm-rule", "ALARM(lag) AND"}, "Unexpected end of rule"},
		{[]string{"cloudwatch", "put-composite-alarm", "--alarm-name", "x", "--alarm-rule", "ALARM(lag) XOR OK(lag)"}, "Unsupported token 'XOR' at char 12"},
		{[]string{"cloudwatch", "put-composite-alarm", "--alarm-name", "x", "--alarm-rule", "ALARM(lag) OR ALARM(gone)"}, "alarms [gone] in the alarm rule do not exist"},
		{[]string{"cloudwatch", "put-composite-alarm", "--alarm-name", "lag", "--alarm-rule", "TRUE"}, "(ValidationError)"},
		{[]string{"cloudwatch", "put-composite-alarm", "--alarm-name", "x", "--alarm-rule", "TRUE", "--alarm-actions", "arn:aws:lambda:us-east-1:123456789012:function:f"}, "(InvalidParameterValue)"},
	} {
		if out, err := run(tc.args...); err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("aws %v: %v %s, want %s", tc.args, err, out, tc.want)
		}
	}
	// The composite and its children go in one call.
	must("cloudwatch", "delete-alarms", "--alarm-names", "failover", "lag")
	if out := must("cloudwatch", "describe-alarms", "--alarm-types", "CompositeAlarm", "MetricAlarm"); strings.Contains(out, `"failover"`) || strings.Contains(out, `"lag"`) ||
		!strings.Contains(out, `"source-health"`) {
		t.Fatalf("after delete-alarms: %s", out)
	}
}

// TestCLIDashboards: put, get, list and delete dashboards; warnings are
// returned with an accepted body, errors refuse it.
func TestCLIDashboards(t *testing.T) {
	s := start(t)
	run, must := awsCLI(t, s)
	body := `{"widgets":[{"type":"metric","x":0,"y":0,"width":12,"height":6,"properties":{"metrics":[["AWS/EFS","TimeSinceLastSync","FileSystemId","fs-1"]],"region":"us-east-1","stat":"Maximum","period":60,"title":"Replication lag"}},` +
		`{"type":"text","x":12,"y":0,"width":12,"height":6,"properties":{"markdown":"# Failover"}}]}`
	if out := must("cloudwatch", "put-dashboard", "--dashboard-name", "dr", "--dashboard-body", body); !strings.Contains(out, `"DashboardValidationMessages": []`) {
		t.Fatalf("put-dashboard: %s", out)
	}
	var got struct{ DashboardArn, DashboardBody, DashboardName string }
	if err := json.Unmarshal([]byte(must("cloudwatch", "get-dashboard", "--dashboard-name", "dr")), &got); err != nil || got.DashboardBody != body ||
		got.DashboardArn != "arn:aws:cloudwatch::123456789012:dashboard/dr" || got.DashboardName != "dr" {
		t.Fatalf("get-dashboard: %v %+v", err, got)
	}
	warned := must("cloudwatch", "put-dashboard", "--dashboard-name", "dr-west", "--dashboard-body",
		`{"widgets":[{"type":"metric","properties":{"metrics":[["AWS/EFS","TimeSinceLastSync"]],"region":"us-west-2"}}]}`)
	if !strings.Contains(warned, `"DataPath": "/widgets/0/properties/region"`) {
		t.Fatalf("put-dashboard with a warning: %s", warned)
	}
	if out := must("cloudwatch", "list-dashboards", "--dashboard-name-prefix", "dr"); strings.Count(out, `"DashboardName"`) != 2 || !strings.Contains(out, `"Size": `) {
		t.Fatalf("list-dashboards: %s", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cloudwatch", "put-dashboard", "--dashboard-name", "bad", "--dashboard-body", `{"widgets":[{"type":"metric","properties":{}}]}`}, "(InvalidParameterInput)"},
		{[]string{"cloudwatch", "put-dashboard", "--dashboard-name", "bad", "--dashboard-body", `not json`}, "(InvalidParameterInput)"},
		{[]string{"cloudwatch", "put-dashboard", "--dashboard-name", "bad name", "--dashboard-body", `{"widgets":[]}`}, "(InvalidParameterInput)"},
		{[]string{"cloudwatch", "get-dashboard", "--dashboard-name", "nope"}, "(ResourceNotFound)"},
		{[]string{"cloudwatch", "delete-dashboards", "--dashboard-names", "dr", "nope"}, "(ResourceNotFound)"},
	} {
		if out, err := run(tc.args...); err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("aws %v: %v %s, want %s", tc.args, err, out, tc.want)
		}
	}
	must("cloudwatch", "delete-dashboards", "--dashboard-names", "dr", "dr-west")
	if out := must("cloudwatch", "list-dashboards"); strings.Contains(out, `"dr`) {
		t.Fatalf("list-dashboards after delete: %s", out)
	}
}

// TestBoto3CompositeAndDashboards runs composite alarms and dashboards
// with boto3 in the three protocols (see TestBoto3EveryOperation), with
// AWS's error codes and statuses.
func TestBoto3CompositeAndDashboards(t *testing.T) {
	py := testkit.NeedPython(t, "boto3")
	s := start(t)
	for _, protocol := range []string{"json", "query", "smithy-rpc-v2-cbor"} {
		t.Run(protocol, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(py, "testdata/boto3_composite.py")
			cmd.Env = append(os.Environ(), "ENDPOINT="+s.url, "WANT_PROTOCOL="+protocol, "AWS_ACCESS_KEY_ID="+akid, "AWS_SECRET_ACCESS_KEY="+secret,
				"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE="+dir+"/c", "AWS_SHARED_CREDENTIALS_FILE="+dir+"/s", "AWS_MAX_ATTEMPTS=1",
				"AWS_RETRY_MODE=standard")
			if protocol != "json" {
				botocoreModel(t, py, protocol, dir)
				cmd.Env = append(cmd.Env, "AWS_DATA_PATH="+dir)
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			var errs map[string][2]any
			if err := json.Unmarshal(out[strings.LastIndexByte(strings.TrimSpace(string(out)), '\n')+1:], &errs); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			want := map[string][2]any{
				"bad rule": {"ValidationError", 400.0}, "absent child": {"ValidationError", 400.0}, "delete child": {"ValidationError", 400.0},
				"bad body": {"InvalidParameterInput", 400.0}, "absent dashboard": {"ResourceNotFound", 404.0}, "delete absent dashboard": {"ResourceNotFound", 404.0},
			}
			for k, w := range want {
				if got := errs[k]; got != w {
					t.Errorf("%s: %v, want %v", k, got, w)
				}
			}
		})
	}
}
