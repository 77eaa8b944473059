package cloudwatch

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

// botocoreModel writes a copy of botocore's CloudWatch model whose
// protocols are only protocol under dir/cloudwatch/2010-08-01, for
// AWS_DATA_PATH=dir.
func botocoreModel(t *testing.T, py, protocol, dir string) {
	t.Helper()
	out, err := exec.Command(py, "-c", "import botocore, os; print(os.path.dirname(botocore.__file__))").Output()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(strings.TrimSpace(string(out)), "data", "cloudwatch", "2010-08-01", "service-2.json.gz")
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var model map[string]any
	if err := json.NewDecoder(zr).Decode(&model); err != nil {
		t.Fatal(err)
	}
	meta := model["metadata"].(map[string]any)
	meta["protocol"], meta["protocols"] = protocol, []string{protocol}
	d := filepath.Join(dir, "cloudwatch", "2010-08-01")
	os.MkdirAll(d, 0o755)
	b, _ := json.Marshal(model)
	if err := os.WriteFile(filepath.Join(d, "service-2.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBoto3EveryOperation runs every operation with boto3 1.43 in each
// CloudWatch protocol botocore has: JSON 1.0 (its choice), query and
// smithy RPC v2 CBOR (the model restricted to each), with AWS's errors
// for bad input.
func TestBoto3EveryOperation(t *testing.T) {
	py := testkit.NeedPython(t, "boto3")
	s := start(t)
	for _, protocol := range []string{"json", "query", "smithy-rpc-v2-cbor"} {
		t.Run(protocol, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(py, "testdata/boto3_all.py")
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
			want := map[string]string{
				"absent alarm": "ResourceNotFound", "unknown statistic": "InvalidParameterValue", "too many datapoints": "InvalidParameterCombination",
				"reserved namespace": "InvalidParameterValue", "huge dimensions": "InvalidParameterValue", "bad period": "InvalidParameterValue",
				"10000 datapoints": "InvalidParameterValue", "alarm on SEARCH": "InvalidParameterValue", "bad SEARCH": "InvalidParameterValue",
			}
			for k, code := range want {
				if got := errs[k]; got[0] != code {
					t.Errorf("%s: %v, want %s", k, got, code)
				}
			}
		})
	}
}

// TestCLIEveryOperation runs every operation with the aws CLI (1.45:
// JSON 1.0).
func TestCLIEveryOperation(t *testing.T) {
	awsPath := testkit.NeedTool(t, "aws")
	s := start(t)
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		cmd := exec.Command(awsPath, append(args, "--endpoint-url", s.url, "--region", "us-east-1", "--output", "json")...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+akid, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_EC2_METADATA_DISABLED=true",
			"AWS_MAX_ATTEMPTS=1", "AWS_CONFIG_FILE="+dir+"/c", "AWS_SHARED_CREDENTIALS_FILE="+dir+"/s", "AWS_PAGER=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, out)
		}
		return out
	}
	must("cloudwatch", "put-metric-data", "--namespace", "Cli", "--metric-name", "Lag", "--dimensions", "FileSystemId=fs-1", "--value", "7",
		"--unit", "Seconds", "--storage-resolution", "1")
	if out := must("cloudwatch", "get-metric-statistics", "--namespace", "Cli", "--metric-name", "Lag", "--dimensions", "Name=FileSystemId,Value=fs-1",
		"--start-time", ago(10*time.Minute), "--end-time", ago(-5*time.Minute), "--period", "60", "--statistics", "Maximum"); !strings.Contains(out, `"Maximum": 7.0`) {
		t.Fatalf("get-metric-statistics: %s", out)
	}
	if out := must("cloudwatch", "get-metric-data", "--start-time", ago(10*time.Minute), "--end-time", ago(-5*time.Minute), "--metric-data-queries",
		`[{"Id":"m1","MetricStat":{"Metric":{"Namespace":"Cli","MetricName":"Lag","Dimensions":[{"Name":"FileSystemId","Value":"fs-1"}]},"Period":60,"Stat":"Maximum"}},{"Id":"e1","Expression":"FILL(m1, 0) + 1"}]`); !strings.Contains(out, "8.0") {
		t.Fatalf("get-metric-data: %s", out)
	}
	// SEARCH over every file system's Lag, with a dynamic label.
	if out := must("cloudwatch", "get-metric-data", "--start-time", ago(10*time.Minute), "--end-time", ago(-5*time.Minute), "--metric-data-queries",
		`[{"Id":"lags","Expression":"SEARCH('{Cli,FileSystemId} MetricName=\"Lag\"', 'Maximum', 60)","Label":"lag of ${PROP('Dim.FileSystemId')}"}]`); !strings.Contains(out, `"Label": "lag of fs-1"`) || !strings.Contains(out, `"Id": "lags"`) {
		t.Fatalf("get-metric-data SEARCH: %s", out)
	}
	if out := must("cloudwatch", "list-metrics", "--namespace", "Cli"); !strings.Contains(out, `"MetricName": "Lag"`) {
		t.Fatalf("list-metrics: %s", out)
	}
	must("cloudwatch", "put-metric-alarm", "--alarm-name", "cli", "--namespace", "Cli", "--metric-name", "Lag", "--dimensions", "Name=FileSystemId,Value=fs-1",
		"--statistic", "Maximum", "--period", "10", "--evaluation-periods", "3", "--threshold", "20", "--comparison-operator", "GreaterThanThreshold",
		"--alarm-actions", "arn:aws:sns:us-east-1:123456789012:dr", "--tags", "Key=team,Value=dr")
	if out := must("cloudwatch", "describe-alarms", "--alarm-names", "cli"); !strings.Contains(out, `"AlarmName": "cli"`) {
		t.Fatalf("describe-alarms: %s", out)
	}
	if out := must("cloudwatch", "describe-alarms-for-metric", "--namespace", "Cli", "--metric-name", "Lag", "--dimensions", "Name=FileSystemId,Value=fs-1"); !strings.Contains(out, `"cli"`) {
		t.Fatalf("describe-alarms-for-metric: %s", out)
	}
	must("cloudwatch", "set-alarm-state", "--alarm-name", "cli", "--state-value", "ALARM", "--state-reason", "drill")
	// The evaluator may have judged the alarm OK (7 < 20) before
	// set-alarm-state on a slow machine: either state leads to ALARM.
	if out := must("cloudwatch", "describe-alarm-history", "--alarm-name", "cli"); !regexp.MustCompile(`Alarm updated from (INSUFFICIENT_DATA|OK) to ALARM`).MatchString(out) {
		t.Fatalf("describe-alarm-history: %s", out)
	}
	must("cloudwatch", "disable-alarm-actions", "--alarm-names", "cli")
	must("cloudwatch", "enable-alarm-actions", "--alarm-names", "cli")
	arn := "arn:aws:cloudwatch:us-east-1:123456789012:alarm:cli"
	must("cloudwatch", "tag-resource", "--resource-arn", arn, "--tags", "Key=env,Value=prod")
	must("cloudwatch", "untag-resource", "--resource-arn", arn, "--tag-keys", "team")
	if out := must("cloudwatch", "list-tags-for-resource", "--resource-arn", arn); !strings.Contains(out, `"env"`) || strings.Contains(out, "team") {
		t.Fatalf("list-tags-for-resource: %s", out)
	}
	must("cloudwatch", "delete-alarms", "--alarm-names", "cli")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cloudwatch", "delete-alarms", "--alarm-names", "cli"}, "(ResourceNotFound)"},
		{[]string{"cloudwatch", "get-metric-statistics", "--namespace", "Cli", "--metric-name", "Lag", "--start-time", ago(time.Hour), "--end-time", ago(0),
			"--period", "60", "--statistics", "Median"}, "(InvalidParameterValue)"},
		{[]string{"cloudwatch", "get-metric-statistics", "--namespace", "Cli", "--metric-name", "Lag", "--start-time", ago(time.Hour), "--end-time", ago(0),
			"--period", "60"}, "(MissingParameter)"},
		{[]string{"cloudwatch", "get-metric-statistics", "--namespace", "Cli", "--metric-name", "Lag", "--start-time", ago(time.Hour), "--end-time", ago(0),
			"--period", "60", "--statistics", "Maximum", "--extended-statistics", "p99"}, "(InvalidParameterCombination)"},
		{[]string{"cloudwatch", "set-alarm-state", "--alarm-name", "nope", "--state-value", "OK", "--state-reason", "r"}, "(ResourceNotFound)"},
	} {
		if out, err := run(tc.args...); err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("aws %v: %v %s, want %s", tc.args, err, out, tc.want)
		}
	}
}

func ago(d time.Duration) string { return time.Now().UTC().Add(-d).Format(time.RFC3339) }
