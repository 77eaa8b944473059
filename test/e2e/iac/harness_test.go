package iace2e

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const (
	accessKey = "AKIAKEYSE2ETEST00001"
	secretKey = "keys-e2e-secret-key-0123456789abcdef"
	pairKey   = "keys-e2e-pair-secret-0123456789abcdef"
	nfsPort   = 12049
)

// region is one `regionfs serve` process.
type region struct {
	testkit.Process
	t      *testing.T
	name   string
	net    string
	subnet string
	env    []string
	aws    string
}

// startPair starts us-east-1 and us-west-2, replicating to each other, on
// 127.71 and 127.72 (it needs the aws CLI and nfs-cat).
func startPair(t *testing.T) (east, west *region) {
	t.Helper()
	testkit.NeedTool(t, "aws")
	testkit.NeedTool(t, "nfs-cat")
	bin := testkit.BuildRegionfs(t)
	dir := t.TempDir()
	east = startRegion(t, bin, dir, "us-east-1", "127.71", "a", "us-west-2", "127.72")
	west = startRegion(t, bin, dir, "us-west-2", "127.72", "b", "us-east-1", "127.71")
	return east, west
}

func startRegion(t *testing.T, bin, dir, name, net, id, peer, peerNet string) *region {
	t.Helper()
	rd := filepath.Join(dir, name)
	os.MkdirAll(rd, 0o700)
	os.WriteFile(filepath.Join(rd, "kms.key"), []byte(strings.Repeat("5a", 32)+"\n"), 0o600)
	cfg := filepath.Join(rd, "region.yaml")
	os.WriteFile(cfg, []byte(testkit.PairedRegion{Name: name, Dir: rd, Net: net, ID: id, Peer: peer, PeerReplication: peerNet + ".0.1:7443", PeerAPI: peerNet + ".0.1:7070",
		AccessKey: accessKey, SecretKey: secretKey, PairKey: pairKey}.Config()), 0o600)
	home := t.TempDir()
	r := &region{t: t, name: name, net: net, subnet: "subnet-0e2e0000000000" + id + "1", aws: testkit.NeedTool(t, "aws"),
		env: append(os.Environ(), "AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey, "AWS_DEFAULT_REGION="+name,
			"AWS_ENDPOINT_URL=http://"+net+".0.1:7070", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1",
			"AWS_CONFIG_FILE="+home+"/c", "AWS_SHARED_CREDENTIALS_FILE="+home+"/s")}
	r.Process = testkit.Process{Args: []string{bin, "serve", "--config", cfg}, Log: filepath.Join(rd, "serve.log")}
	r.start()
	t.Cleanup(r.Stop)
	return r
}

func (r *region) start() {
	r.t.Helper()
	r.Start(r.t, "http://"+r.net+".0.1:7070/metrics")
}

// run runs the aws CLI against the region (text output).
func (r *region) run(args ...string) (string, error) {
	cmd := exec.Command(r.aws, append(args, "--output", "text")...)
	cmd.Env = r.env
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (r *region) must(args ...string) string {
	r.t.Helper()
	out, err := r.run(args...)
	if err != nil {
		r.t.Fatalf("%s: aws %s: %v\n%s\n%s", r.name, strings.Join(args, " "), err, out, r.Tail(40))
	}
	return out
}

// fails runs a command that must fail with code.
func (r *region) fails(code string, args ...string) string {
	r.t.Helper()
	out, err := r.run(args...)
	if err == nil || !strings.Contains(out, "("+code+")") {
		r.t.Fatalf("%s: aws %s: want %s, got %v\n%s", r.name, strings.Join(args, " "), code, err, out)
	}
	return out
}

// mountTarget makes a mount target for fs and returns its address.
func (r *region) mountTarget(fs string) string {
	r.t.Helper()
	mt := r.must("efs", "create-mount-target", "--file-system-id", fs, "--subnet-id", r.subnet, "--query", "[MountTargetId,IpAddress]")
	f := strings.Fields(mt)
	if len(f) != 2 {
		r.t.Fatalf("create-mount-target: %q", mt)
	}
	testkit.WaitFor(r.t, "mount target available", 30*time.Second, func() bool {
		out, _ := r.run("efs", "describe-mount-targets", "--mount-target-id", f[0], "--query", "MountTargets[0].LifeCycleState")
		return out == "available"
	})
	return f[1]
}

// nfsURL is a libnfs URL of a file at the root of the export.
func nfsURL(ip, name string) string {
	return testkit.NFSURL(netip.AddrPortFrom(netip.MustParseAddr(ip), nfsPort), "/"+name)
}

// nfsCat reads a file through a mount target.
func nfsCat(t *testing.T, ip, path string) ([]byte, error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(testkit.NeedTool(t, "nfs-cat"), nfsURL(ip, path))
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// nfsPut writes a file through a mount target.
func nfsPut(t *testing.T, ip, path string, data []byte) error {
	t.Helper()
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, data, 0o600)
	out, err := exec.Command(testkit.NeedTool(t, "nfs-cp"), src, nfsURL(ip, path)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
