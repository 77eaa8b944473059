package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"

	"github.com/regionfs/regionfs/internal/testkit"
)

// devProc is a `regionfs dev` started by a test.
type devProc struct {
	t    *testing.T
	bin  string
	dir  string
	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

// built is cmd/regionfs, built once per test binary run.
var built testkit.SharedBuild

// buildBinary returns the binary of built.
func buildBinary(t *testing.T) string {
	t.Helper()
	return built.Path(t)
}

// cacheScanEnv, set, makes TestBlockCacheHugePages (cgo builds) the child
// that scans a store in that directory.
const cacheScanEnv = "REGIONFS_TEST_CACHE_SCAN"

func TestMain(m *testing.M) {
	if os.Getenv(cacheScanEnv) != "" {
		// TestBlockCacheHugePages's child: glibc's main heap belongs to
		// this thread; the test runs on others, as a server's calls into
		// C do.
		runtime.LockOSThread()
	}
	built.Main(m, 0o700)
}

func startDev(t *testing.T, bin, dir string) *devProc {
	t.Helper()
	return startDevOn(t, bin, dir, devNet{})
}

// startDevOn starts a dev on the loopback layout dn with more flags.
func startDevOn(t *testing.T, bin, dir string, dn devNet, flags ...string) *devProc {
	t.Helper()
	addrs := []string{dn.edge()}
	for _, r := range dn.regions() {
		addrs = append(addrs, r.api)
	}
	args := []string{"dev", "--data-dir", dir}
	if dn.base != 0 {
		args = append(args, "--loopback-base", strconv.Itoa(dn.base))
	}
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, 200*time.Millisecond); err == nil {
			c.Close()
			t.Fatalf("%s is in use (another regionfs dev running?); the dev e2e test needs the dev addresses", a)
		}
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "dev.log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &devProc{t: t, bin: bin, dir: dir, done: make(chan error, 1), log: logf}
	p.cmd = exec.Command(bin, append(args, flags...)...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// A test process killed (a timeout, ^C) takes its dev down with it: an
	// orphaned dev keeps the dev addresses (and any lock the test held).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop() })
	testkit.WaitHTTP(t, "http://"+dn.edge()+"/", 60*time.Second, p.done, p.logText)
	testkit.WaitFor(t, "env.sh", 60*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(dir, "env.sh"))
		return err == nil
	})
	return p
}

func (p *devProc) logText() string {
	b, _ := os.ReadFile(p.log.Name())
	return string(b)
}

// stop sends SIGTERM and waits for a clean exit.
func (p *devProc) stop() error {
	if p.cmd.ProcessState != nil {
		return nil
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		err := <-p.done
		p.done <- err
		return errors.New("regionfs dev did not stop within 30 s of SIGTERM")
	}
}

// aws runs the aws CLI after `. DIR/env.sh`, as a user would.
func (p *devProc) aws(args ...string) (string, error) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	script := ". " + shellQuote(filepath.Join(p.dir, "env.sh")) + " && exec aws"
	for _, a := range args {
		script += " " + shellQuote(a)
	}
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	home := p.t.TempDir()
	cmd.Env = append(os.Environ(), "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1", "AWS_CONFIG_FILE="+home+"/config", "AWS_SHARED_CREDENTIALS_FILE="+home+"/credentials")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// waitAWS polls an aws command until it prints want.
func waitAWS(t *testing.T, p *devProc, want string, args ...string) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, func() error {
		out, err := p.aws(args...)
		if err == nil && out == want {
			return nil
		}
		return fmt.Errorf("aws %v: %v %q, want %q", args, err, out, want)
	})
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// envFile reads the export lines of env.sh.
func envFile(t *testing.T, dir string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "env.sh"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if kv, ok := strings.CutPrefix(sc.Text(), "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	return env
}

func TestDevE2E(t *testing.T) {
	testkit.NeedTool(t, "aws")
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "data")
	p := startDev(t, bin, dir)

	env := envFile(t, dir)
	for k, want := range map[string]string{
		"AWS_ENDPOINT_URL_EFS": "http://127.0.0.1:7070", "AWS_ENDPOINT_URL_EC2": "http://127.0.0.1:7070",
		"AWS_ENDPOINT_URL_CLOUDWATCH": "http://127.0.0.1:7070", "AWS_ENDPOINT_URL_SNS": "http://127.0.0.1:7070",
		"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "false",
	} {
		if env[k] != want {
			t.Errorf("env.sh: %s=%q, want %q", k, env[k], want)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "env.sh"))
	if !strings.Contains(string(b), "unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE") {
		t.Errorf("env.sh does not unset the profile variables:\n%s", b)
	}

	east, err := p.aws("ec2", "describe-subnets", "--query", "Subnets[].[AvailabilityZone,CidrBlock]", "--output", "text")
	if err != nil || east != "us-east-1a\t127.1.1.0/24\nus-east-1b\t127.1.2.0/24" {
		t.Fatalf("us-east-1 subnets: %v\n%s", err, east)
	}
	west, err := p.aws("ec2", "describe-subnets", "--region", "us-west-2", "--query", "Subnets[].[AvailabilityZone,CidrBlock]", "--output", "text")
	if err != nil || west != "us-west-2a\t127.2.1.0/24\nus-west-2b\t127.2.2.0/24" {
		t.Fatalf("us-west-2 subnets: %v\n%s", err, west)
	}
	sgs, err := p.aws("ec2", "describe-security-groups", "--query", "SecurityGroups[].IpPermissions[].[FromPort,IpRanges[0].CidrIp]", "--output", "text")
	if err != nil || sgs != "12049\t127.0.0.0/8" {
		t.Fatalf("security groups: %v\n%s", err, sgs)
	}
	ids, err := p.aws("ec2", "describe-subnets", "--query", "Subnets[].SubnetId", "--output", "text")
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.aws("ec2", "describe-subnets", "--subnet-ids", "subnet-00000000000000000")
	if err == nil || !strings.Contains(out, "InvalidSubnetID.NotFound") {
		t.Fatalf("unknown subnet: %v %s", err, out)
	}
	out, err = p.aws("efs", "describe-file-systems", "--region", "eu-central-1")
	if err == nil || !strings.Contains(out, "InvalidSignatureException") || !strings.Contains(out, "Credential should be scoped to a valid region") {
		t.Fatalf("unconfigured region: %v %s", err, out)
	}
	script := ". " + shellQuote(filepath.Join(dir, "env.sh")) + " && AWS_SECRET_ACCESS_KEY=wrong-wrong-wrong-wrong exec aws ec2 describe-vpcs"
	wrong, err := exec.Command("bash", "-c", script).CombinedOutput()
	if err == nil || !strings.Contains(string(wrong), "AuthFailure") {
		t.Fatalf("wrong secret: %v %s", err, wrong)
	}

	// EFS through the edge: a file system, mount targets in two subnets, a
	// file written over NFS through one and read through the other.
	fsID, err := p.aws("efs", "create-file-system", "--creation-token", "e2e", "--encrypted", "--tags", "Key=Name,Value=e2e", "--query", "FileSystemId", "--output", "text")
	if err != nil || !strings.HasPrefix(fsID, "fs-") {
		t.Fatalf("create-file-system: %v %s", err, fsID)
	}
	waitAWS(t, p, "available", "efs", "describe-file-systems", "--file-system-id", fsID, "--query", "FileSystems[0].LifeCycleState", "--output", "text")
	sg, err := p.aws("ec2", "describe-security-groups", "--query", "SecurityGroups[0].GroupId", "--output", "text")
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, sub := range strings.Fields(ids) {
		mt, err := p.aws("efs", "create-mount-target", "--file-system-id", fsID, "--subnet-id", sub, "--security-groups", sg, "--query", "[MountTargetId,IpAddress]", "--output", "text")
		if err != nil {
			t.Fatalf("create-mount-target: %v %s", err, mt)
		}
		f := strings.Fields(mt)
		waitAWS(t, p, "available", "efs", "describe-mount-targets", "--mount-target-id", f[0], "--query", "MountTargets[0].LifeCycleState", "--output", "text")
		ips = append(ips, f[1])
	}
	src := filepath.Join(t.TempDir(), "hello.txt")
	os.WriteFile(src, []byte("written through one mount target\n"), 0o644)
	mtURL := func(ip, path string) string {
		return "nfs://" + ip + path + "?nfsport=12049&mountport=12049&version=3&auto-traverse-mounts=0"
	}
	if out, err := exec.Command(testkit.NeedTool(t, "nfs-cp"), src, mtURL(ips[0], "/hello.txt")).CombinedOutput(); err != nil {
		t.Fatalf("nfs-cp to %s: %v %s", ips[0], err, out)
	}
	if out, err := exec.Command(testkit.NeedTool(t, "nfs-cat"), mtURL(ips[1], "/hello.txt")).CombinedOutput(); err != nil || string(out) != "written through one mount target\n" {
		t.Fatalf("nfs-cat from %s: %v %q", ips[1], err, out)
	}
	westFS, err := p.aws("efs", "create-file-system", "--region", "us-west-2", "--creation-token", "e2e-west", "--query", "FileSystemId", "--output", "text")
	if err != nil {
		t.Fatalf("us-west-2 create-file-system: %v %s", err, westFS)
	}
	if out, err := p.aws("efs", "describe-file-systems", "--file-system-id", westFS); err == nil || !strings.Contains(out, "FileSystemNotFound") {
		t.Fatalf("us-west-2 file system visible in us-east-1: %v %s", err, out)
	}

	// A regional outage: us-east-1 fails fast with 503, us-west-2 works.
	if out, err := exec.Command(bin, "dev", "region", "stop", "us-east-1", "--data-dir", dir).CombinedOutput(); err != nil || !strings.Contains(string(out), "us-east-1: down") {
		t.Fatalf("region stop: %v %s", err, out)
	}
	c := ec2.NewFromConfig(testkit.AWSConfig(env["AWS_ENDPOINT_URL_EC2"], "us-east-1", env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]))
	start := time.Now()
	_, err = c.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{})
	took := time.Since(start)
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "Unavailable" || !strings.Contains(ae.ErrorMessage(), "us-east-1") {
		t.Fatalf("stopped region: %v", err)
	}
	if took > time.Second {
		t.Errorf("stopped region answered in %v, want < 1 s", took)
	}
	t.Logf("stopped region answered 503 in %v", took)
	out, err = p.aws("efs", "describe-file-systems")
	if err == nil || !strings.Contains(out, "ServiceUnavailableException") || !strings.Contains(out, "us-east-1") {
		t.Fatalf("aws efs with us-east-1 down: %v %s", err, out)
	}
	if out, err := p.aws("ec2", "describe-subnets", "--region", "us-west-2", "--query", "length(Subnets)"); err != nil || out != "2" {
		t.Fatalf("us-west-2 while us-east-1 is down: %v %s", err, out)
	}
	if out, err := p.aws("efs", "describe-file-systems", "--region", "us-west-2", "--query", "FileSystems[0].FileSystemId", "--output", "text"); err != nil || out != westFS {
		t.Fatalf("us-west-2 EFS while us-east-1 is down: %v %s", err, out)
	}
	if c, err := net.DialTimeout("tcp", ips[0]+":12049", time.Second); err == nil {
		c.Close()
		t.Fatal("a us-east-1 mount target still accepts while the region is down")
	}
	if out, err := exec.Command(bin, "dev", "region", "start", "us-east-1", "--data-dir", dir).CombinedOutput(); err != nil || !strings.Contains(string(out), "us-east-1: up") {
		t.Fatalf("region start: %v %s", err, out)
	}
	if out, err := p.aws("ec2", "describe-subnets", "--query", "length(Subnets)"); err != nil || out != "2" {
		t.Fatalf("us-east-1 after start: %v %s", err, out)
	}
	if out, err := exec.Command(bin, "dev", "region", "stop", "eu-west-9", "--data-dir", dir).CombinedOutput(); err == nil || !strings.Contains(string(out), `no region "eu-west-9"`) {
		t.Fatalf("unknown region: %v %s", err, out)
	}

	// SIGTERM stops cleanly; a restart keeps credentials and ids.
	if err := p.stop(); err != nil {
		t.Fatalf("regionfs dev exit: %v\n%s", err, p.logText())
	}
	p2 := startDev(t, bin, dir)
	if env2 := envFile(t, dir); env2["AWS_ACCESS_KEY_ID"] != env["AWS_ACCESS_KEY_ID"] || env2["AWS_SECRET_ACCESS_KEY"] != env["AWS_SECRET_ACCESS_KEY"] {
		t.Fatal("credentials changed across a restart")
	}
	if ids2, err := p2.aws("ec2", "describe-subnets", "--query", "Subnets[].SubnetId", "--output", "text"); err != nil || ids2 != ids {
		t.Fatalf("subnet ids changed across a restart: %q vs %q (%v)", ids2, ids, err)
	}
	if out, err := p2.aws("efs", "describe-file-systems", "--file-system-id", fsID, "--query", "FileSystems[0].[Name,NumberOfMountTargets,Encrypted]", "--output", "text"); err != nil || out != "e2e\t2\tTrue" {
		t.Fatalf("file system after a restart: %v %q", err, out)
	}
	nfsCat := testkit.NeedTool(t, "nfs-cat")
	testkit.Eventually(t, 20*time.Second, func() error {
		out, err := exec.Command(nfsCat, mtURL(ips[1], "/hello.txt")).CombinedOutput()
		if err == nil && string(out) == "written through one mount target\n" {
			return nil
		}
		return fmt.Errorf("mount target after a restart: %v %q", err, out)
	})
}
