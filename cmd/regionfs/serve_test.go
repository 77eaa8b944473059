package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

type proc struct {
	cmd  *exec.Cmd
	done chan error
	log  string
}

func startProc(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan error, 1), log: logPath}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait(); f.Close() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

func (p *proc) term(t *testing.T) error {
	t.Helper()
	return p.signal(t, syscall.SIGTERM)
}

// signal sends sig and waits for the process to end.
func (p *proc) signal(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit within 30 s of %v\n%s", sig, p.output())
		return nil
	}
}

func waitHTTP(t *testing.T, url string, p *proc) {
	t.Helper()
	testkit.WaitHTTP(t, url, 30*time.Second, p.done, p.output)
}

func runAWS(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "aws", args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), append(env, "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+home+"/c", "AWS_SHARED_CREDENTIALS_FILE="+home+"/s")...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

const serveConfig = `
region: eu-west-1
account_id: "111122223333"
data_dir: %s
api: {listen: "127.3.0.1:%d"}
nfs: {port: %d}
credentials: [{access_key_id: AKIASERVETESTKEY001, secret_file: %s}]
subnets:
  - {id: subnet-0a0000000000000a1, availability_zone: eu-west-1a, cidr: 127.3.1.0/24, name: a}
  - {id: subnet-0a0000000000000b1, availability_zone: eu-west-1b, cidr: 127.3.2.0/24, name: b}
security_groups: [{id: sg-0a0000000000000a1, name: nfs, ingress: [127.0.0.0/8]}]
kms_keys: [{id: key-1, aliases: [alias/aws/elasticfilesystem], key_file: %s}]
log: {level: debug, format: json}
`

func TestServeAndEdge(t *testing.T) {
	testkit.NeedTool(t, "aws")
	bin := buildBinary(t)
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	os.WriteFile(secretFile, []byte("serve-test-secret-0123456789\n"), 0o600)
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	apiPort := testkit.FreePort(t, "127.3.0.1")
	cfgPath := filepath.Join(dir, "region.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(serveConfig, filepath.Join(dir, "data"), apiPort, testkit.FreePort(t, "127.3.1.1"), secretFile, keyFile)), 0o600)

	srv := startProc(t, bin, "serve", "--config", cfgPath)
	api := fmt.Sprintf("http://127.3.0.1:%d", apiPort)
	waitHTTP(t, api+"/metrics", srv)
	// The engine's metrics are on /metrics (no file system yet: the
	// engine-wide ones).
	if resp, err := http.Get(api + "/metrics"); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, m := range []string{"regionfs_engine_commit_seconds_bucket", "regionfs_engine_gc_runs_total", "regionfs_engine_scrub_runs_total",
			"regionfs_engine_gc_backlog_blocks"} {
			if !strings.Contains(string(b), m) {
				t.Errorf("/metrics lacks %s", m)
			}
		}
	}
	creds := []string{"AWS_ACCESS_KEY_ID=AKIASERVETESTKEY001", "AWS_SECRET_ACCESS_KEY=serve-test-secret-0123456789", "AWS_DEFAULT_REGION=eu-west-1"}
	out, err := runAWS(t, creds, "ec2", "describe-availability-zones", "--endpoint-url", api, "--query", "AvailabilityZones[].ZoneId", "--output", "text")
	if err != nil || out != "euw1-az1\teuw1-az2" {
		t.Fatalf("serve: %v %s", err, out)
	}

	// The edge in front of it.
	edgePort := testkit.FreePort(t, "127.0.0.1")
	edgeCfg := filepath.Join(dir, "edge.yaml")
	os.WriteFile(edgeCfg, []byte(fmt.Sprintf(`
listen: 127.0.0.1:%d
credentials: [{access_key_id: AKIASERVETESTKEY001, secret_file: %s}]
regions: [{name: eu-west-1, api: "127.3.0.1:%d"}, {name: eu-west-2, api: "127.3.9.9:9"}]
`, edgePort, secretFile, apiPort)), 0o600)
	edge := startProc(t, bin, "edge", "--config", edgeCfg)
	edgeURL := fmt.Sprintf("http://127.0.0.1:%d", edgePort)
	waitHTTP(t, edgeURL+"/", edge)
	out, err = runAWS(t, append(creds, "AWS_ENDPOINT_URL="+edgeURL), "ec2", "describe-subnets", "--filters", "Name=tag:Name,Values=b", "--query", "Subnets[].CidrBlock", "--output", "text")
	if err != nil || out != "127.3.2.0/24" {
		t.Fatalf("through the edge: %v %s", err, out)
	}
	out, err = runAWS(t, append(creds, "AWS_ENDPOINT_URL="+edgeURL), "efs", "describe-file-systems", "--region", "eu-west-2")
	if err == nil || !strings.Contains(out, "ServiceUnavailableException") || !strings.Contains(out, "eu-west-2") {
		t.Fatalf("edge, region down: %v %s", err, out)
	}

	if err := edge.term(t); err != nil {
		t.Errorf("edge exit after SIGTERM: %v\n%s", err, edge.output())
	}
	// SIGHUP (a closed terminal, a reload tried) stops it as SIGTERM
	// does: the clean stop and exit code 0. Before, Go's default ended
	// the process at once ("signal: hangup"), without its clean stop.
	if err := srv.signal(t, syscall.SIGHUP); err != nil {
		t.Errorf("serve exit after SIGHUP: %v\n%s", err, srv.output())
	}
	if !strings.Contains(srv.output(), `"msg":"region stopped"`) {
		t.Errorf("no structured shutdown log:\n%s", srv.output())
	}
}

func TestServeBadConfig(t *testing.T) {
	bin := buildBinary(t)
	cfg := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(cfg, []byte("region: nowhere\naccount_id: '1'\n"), 0o600)
	out, err := exec.Command(bin, "serve", "--config", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `region: "nowhere" is not a region name`) || !strings.Contains(string(out), "data_dir: required") {
		t.Fatalf("bad config: %v\n%s", err, out)
	}
}
