package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

// divergences are the ways regionfs answers differently from AWS on
// purpose. testdata/conformance.py checks each of them as regionfs's
// behaviour, so that a change to one is noticed.
var divergences = []struct{ what, why string }{
	{"CreateReplicationConfiguration of a source already replicating to the same destination answers the configuration instead of an error",
		"a failover or setup script whose call timed out retries it safely; another destination is ReplicationAlreadyExists as on AWS"},
	{"CloudWatch insight rules, metric streams, anomaly detectors, mute rules and OTel enrichment answer InvalidAction (400)",
		"regionfs serves the metrics, metric and composite alarms and dashboards that replication monitoring uses, not the rest of CloudWatch"},
	{"EFS PutAccountPreferences accepts SHORT_ID and new file systems and mount targets then get 8-digit ids (AWS refuses it since October 2021 unless support allows it)",
		"a self-hosted operator is their own support; LONG_ID stays the default"},
	{"EFS PutFileSystemPolicy's BypassPolicyLockoutSafetyCheck changes nothing",
		"file system policies govern NFS clients (ClientMount, ClientWrite, ClientRootAccess), not the API, so a policy cannot lock its author out"},
	{"EFS DescribeFileSystems with both FileSystemId and CreationToken answers the file system that has both",
		"the model does not say which error AWS gives; not checked"},
}

const (
	accessKey = "AKIACONFORMANCE00001"
	secretKey = "conformance-secret-0123456789abcdef"
)

const regionConfig = `
region: %[1]s
account_id: "123456789012"
data_dir: %[2]s/data
api: {listen: "%[3]s.0.1:%[5]d"}
nfs: {port: %[6]d}
credentials: [{access_key_id: ` + accessKey + `, secret_access_key: ` + secretKey + `}]
subnets:
  - {id: subnet-0c0f000000000%[4]sa1, availability_zone: %[1]sa, cidr: %[3]s.1.0/24}
  - {id: subnet-0c0f000000000%[4]sb1, availability_zone: %[1]sb, cidr: %[3]s.2.0/24}
security_groups:
  - {id: sg-0c0f000000000%[4]sa1, name: default, description: NFS clients, ingress: [127.0.0.0/8]}
kms_keys: [{id: 0c0f0c0f-0c0f-4c0f-8c0f-0c0f0c0f0c%[4]s1, aliases: [alias/aws/elasticfilesystem], key_file: %[2]s/kms.key}]
replication: {listen: "%[3]s.0.1:%[7]d"}
peers: [{name: %[8]s, replication: "%[9]s", api: "%[10]s", secret: conformance-pair-secret-0123456789}]
replicate: {heartbeat: 100ms}
control: {transition_delay: 200ms}
log: {level: info}
`

type region struct {
	name, net, id string
	dir           string
	api, repl     string
	nfsPort       int
}

// TestBoto3ModelConformance runs testdata/conformance.py with boto3
// against us-east-1 and us-west-2: EFS (replication included) and
// CloudWatch in awsJson1_0, the protocol boto3 chooses, on each region's
// API and then through the edge, and CloudWatch through the edge in
// awsQuery, what older clients send, and in Smithy RPC v2 CBOR,
// aws-sdk-go-v2's default (botocore's model restricted to each).
func TestBoto3ModelConformance(t *testing.T) {
	py := testkit.NeedPython(t, "boto3")
	for _, d := range divergences {
		t.Logf("accepted divergence: %s (%s)", d.what, d.why)
	}
	bin := testkit.BuildRegionfs(t)
	regions := []*region{{name: "us-east-1", net: "127.91", id: "1"}, {name: "us-west-2", net: "127.92", id: "2"}}
	for _, r := range regions {
		r.dir = t.TempDir()
		r.api = fmt.Sprintf("%s.0.1:%d", r.net, testkit.FreePort(t, r.net+".0.1"))
		r.repl = fmt.Sprintf("%s.0.1:%d", r.net, testkit.FreePort(t, r.net+".0.1"))
		r.nfsPort = testkit.FreePort(t, r.net+".1.4")
		if err := os.WriteFile(filepath.Join(r.dir, "kms.key"), []byte(strings.Repeat("c0", 32)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range regions {
		peer := regions[1-i]
		var port, replPort int
		fmt.Sscanf(r.api[strings.LastIndexByte(r.api, ':')+1:], "%d", &port)
		fmt.Sscanf(r.repl[strings.LastIndexByte(r.repl, ':')+1:], "%d", &replPort)
		cfg := filepath.Join(r.dir, "region.yaml")
		body := fmt.Sprintf(regionConfig, r.name, r.dir, r.net, r.id, port, r.nfsPort, replPort, peer.name, peer.repl, peer.api)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		p := &testkit.Process{Args: []string{bin, "serve", "--config", cfg}, Log: filepath.Join(r.dir, "serve.log")}
		p.Start(t, "http://"+r.api+"/metrics")
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s's log:\n%s", r.name, p.Tail(60))
			}
			p.Stop()
		})
	}
	// The edge, the one endpoint of both regions (it forwards by the
	// credential scope's region).
	dir := t.TempDir()
	edgeAddr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t, "127.0.0.1"))
	edgeCfg := filepath.Join(dir, "edge.yaml")
	body := fmt.Sprintf("listen: %s\ncredentials: [{access_key_id: %s, secret_access_key: %s}]\nregions:\n  - {name: us-east-1, api: %q}\n  - {name: us-west-2, api: %q}\nlog: {level: info}\n",
		edgeAddr, accessKey, secretKey, regions[0].api, regions[1].api)
	if err := os.WriteFile(edgeCfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	edge := &testkit.Process{Args: []string{bin, "edge", "--config", edgeCfg}, Log: filepath.Join(dir, "edge.log")}
	edge.Start(t, "")
	t.Cleanup(edge.Stop)
	edgeURL := "http://" + edgeAddr
	testkit.WaitFor(t, "the edge", 30*time.Second, func() bool {
		c, err := net.Dial("tcp", edgeAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	east, west := "http://"+regions[0].api, "http://"+regions[1].api
	t.Run("json", func(t *testing.T) { conform(t, py, east, west, "efs,cloudwatch", "") })
	t.Run("edge-json", func(t *testing.T) { conform(t, py, edgeURL, edgeURL, "efs,cloudwatch", "") })
	t.Run("edge-cloudwatch-query", func(t *testing.T) { conform(t, py, edgeURL, edgeURL, "cloudwatch", "query") })
	t.Run("edge-cloudwatch-cbor", func(t *testing.T) { conform(t, py, edgeURL, edgeURL, "cloudwatch", "smithy-rpc-v2-cbor") })
}

// conform runs the script for parts; protocol, when not "", is the one
// CloudWatch protocol botocore may use.
func conform(t *testing.T, py, east, west, parts, protocol string) {
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-u", "testdata/conformance.py")
	// The test's own AWS settings only (no profile, endpoint, token or data path of the caller).
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "EAST="+east, "WEST="+west, "PARTS="+parts,
		"AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+home+"/config", "AWS_SHARED_CREDENTIALS_FILE="+home+"/credentials", "AWS_MAX_ATTEMPTS=1", "AWS_RETRY_MODE=standard")
	if protocol != "" {
		cmd.Env = append(cmd.Env, "AWS_DATA_PATH="+cloudwatchModel(t, py, protocol, home))
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("conformance.py: %v (%v)\n%s\n%s", err, ctx.Err(), out, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res struct {
		Problems []string          `json:"problems"`
		Called   map[string]string `json:"called"`
		Counts   map[string]any    `json:"counts"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("conformance.py's result: %v\n%s\n%s", err, out, stderr.String())
	}
	t.Logf("%d operations called, %v", len(res.Called), res.Counts)
	for _, p := range res.Problems {
		t.Error(p)
	}
}

// cloudwatchModel writes botocore's CloudWatch model with protocol as its
// only one under dir, for AWS_DATA_PATH, and returns dir.
func cloudwatchModel(t *testing.T, py, protocol, dir string) string {
	t.Helper()
	var model map[string]any
	version := testkit.BotocoreModel(t, py, "cloudwatch", &model)
	meta := model["metadata"].(map[string]any)
	meta["protocol"], meta["protocols"] = protocol, []string{protocol}
	d := filepath.Join(dir, "cloudwatch", version)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(model)
	if err := os.WriteFile(filepath.Join(d, "service-2.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
