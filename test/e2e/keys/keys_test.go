// Package keyse2e runs two `regionfs serve` processes on a loopback range
// of its own (127.71, 127.72) and drives KMS, EFS and replication with the
// aws CLI and NFS with libnfs, as an operator bringing their own keys
// would: a key made with `aws kms create-key` and `create-alias` encrypts a
// replication destination named by its alias, and a disabled or deleted
// key stops the file systems it encrypts with clear errors, never with
// garbled data.
package keyse2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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

const regionConfig = `
region: %[1]s
account_id: "123456789012"
data_dir: %[2]s/data
api: {listen: "%[3]s.0.1:7070"}
nfs: {port: 12049}
credentials: [{access_key_id: ` + accessKey + `, secret_access_key: ` + secretKey + `}]
subnets:
  - {id: subnet-0e2e0000000000%[4]s1, availability_zone: %[1]sa, cidr: %[3]s.1.0/24}
security_groups:
  - {id: sg-0e2e0000000000000%[4]s1, name: default, ingress: [127.0.0.0/8]}
kms_keys: [{id: 0e2e0e2e-0e2e-4e2e-8e2e-0e2e0e2e0e%[4]s1, aliases: [alias/aws/elasticfilesystem], key_file: %[2]s/kms.key}]
replication: {listen: "%[3]s.0.1:7443"}
peers: [{name: %[5]s, replication: "%[6]s.0.1:7443", api: "%[6]s.0.1:7070", secret: ` + pairKey + `}]
replicate: {heartbeat: 100ms}
control: {transition_delay: 0s}
log: {level: info}
`

// region is one `regionfs serve` process.
type region struct {
	t      *testing.T
	name   string
	net    string
	subnet string
	cmd    *exec.Cmd
	done   chan error
	args   []string
	log    string
	env    []string
	aws    string
}

func startRegion(t *testing.T, bin, dir, name, net, id, peer, peerNet string) *region {
	t.Helper()
	rd := filepath.Join(dir, name)
	os.MkdirAll(rd, 0o700)
	os.WriteFile(filepath.Join(rd, "kms.key"), []byte(strings.Repeat("5a", 32)+"\n"), 0o600)
	cfg := filepath.Join(rd, "region.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(regionConfig, name, rd, net, id, peer, peerNet)), 0o600)
	home := t.TempDir()
	r := &region{t: t, name: name, net: net, subnet: "subnet-0e2e0000000000" + id + "1", args: []string{bin, "serve", "--config", cfg},
		log: filepath.Join(rd, "serve.log"), aws: testkit.NeedTool(t, "aws"),
		env: append(os.Environ(), "AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey, "AWS_DEFAULT_REGION="+name,
			"AWS_ENDPOINT_URL=http://"+net+".0.1:7070", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1",
			"AWS_CONFIG_FILE="+home+"/c", "AWS_SHARED_CREDENTIALS_FILE="+home+"/s")}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *region) start() {
	r.t.Helper()
	logf, err := os.OpenFile(r.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	r.cmd = exec.Command(r.args[0], r.args[1:]...)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	done := make(chan error, 1)
	r.done = done
	go func() { done <- r.cmd.Wait(); logf.Close() }()
	testkit.WaitHTTP(r.t, "http://"+r.net+".0.1:7070/metrics", 60*time.Second, done, r.tail)
}

func (r *region) stop() {
	if r.cmd == nil || r.cmd.ProcessState != nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
}

func (r *region) kill9() {
	r.cmd.Process.Kill()
	<-r.done
}

func (r *region) tail() string {
	b, _ := os.ReadFile(r.log)
	l := strings.Split(string(b), "\n")
	if len(l) > 40 {
		l = l[len(l)-40:]
	}
	return strings.Join(l, "\n")
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
		r.t.Fatalf("%s: aws %s: %v\n%s\n%s", r.name, strings.Join(args, " "), err, out, r.tail())
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

func nfsURL(ip, path string) string {
	return fmt.Sprintf("nfs://%s//%s?nfsport=%d&mountport=%d&version=3", ip, path, nfsPort, nfsPort)
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

func buildBinary(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "regionfs")
	build := exec.Command("go", "build", "-o", bin, "./cmd/regionfs")
	build.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestCustomerKeyEncryptsReplica: a key made with `aws kms create-key` and
// `create-alias` in the destination region encrypts a replication
// destination given as alias/…; disabling it stops reads of the replica
// with an I/O error (not garbage) and new file systems are refused
// (BadRequest naming the key); enabling it brings the same data back and replication catches
// up; a key scheduled for deletion behaves the same, and a canceled
// deletion restores the file system.
func TestCustomerKeyEncryptsReplica(t *testing.T) {
	testkit.NeedTool(t, "aws")
	testkit.NeedTool(t, "nfs-cat")
	bin := buildBinary(t)
	dir := t.TempDir()
	east := startRegion(t, bin, dir, "us-east-1", "127.71", "a", "us-west-2", "127.72")
	west := startRegion(t, bin, dir, "us-west-2", "127.72", "b", "us-east-1", "127.71")

	key := west.must("kms", "create-key", "--description", "DR replica key", "--query", "KeyMetadata.KeyId")
	keyARN := "arn:aws:kms:us-west-2:123456789012:key/" + key
	west.must("kms", "create-alias", "--alias-name", "alias/dr-replica", "--target-key-id", key)

	src := east.must("efs", "create-file-system", "--creation-token", "keys", "--encrypted", "--query", "FileSystemId")
	testkit.WaitFor(t, "source available", 30*time.Second, func() bool {
		out, _ := east.run("efs", "describe-file-systems", "--file-system-id", src, "--query", "FileSystems[0].LifeCycleState")
		return out == "available"
	})
	srcIP := east.mountTarget(src)
	first := bytes.Repeat([]byte("replicated under a customer key\n"), 4096)
	if err := nfsPut(t, srcIP, "first.txt", first); err != nil {
		t.Fatal(err)
	}
	east.must("efs", "create-replication-configuration", "--source-file-system-id", src,
		"--destinations", `[{"Region":"us-west-2","KmsKeyId":"alias/dr-replica"}]`)
	var dst string
	testkit.WaitFor(t, "replication ENABLED", 60*time.Second, func() bool {
		out, _ := east.run("efs", "describe-replication-configurations", "--file-system-id", src, "--query", "Replications[0].Destinations[0].[Status,FileSystemId]")
		f := strings.Fields(out)
		if len(f) == 2 && f[0] == "ENABLED" {
			dst = f[1]
			return true
		}
		return false
	})
	if got := west.must("efs", "describe-file-systems", "--file-system-id", dst, "--query", "FileSystems[0].[Encrypted,KmsKeyId]"); got != "True\t"+keyARN {
		t.Fatalf("destination file system: %q, want encrypted under %s", got, keyARN)
	}
	dstIP := west.mountTarget(dst)
	testkit.WaitFor(t, "the file replicated", 30*time.Second, func() bool {
		got, err := nfsCat(t, dstIP, "first.txt")
		return err == nil && bytes.Equal(got, first)
	})

	// Disabled: the replica's data is not readable, with an error; nothing
	// new is encrypted under the key.
	// DisableKey takes a key id or ARN only, as on AWS.
	west.fails("NotFoundException", "kms", "disable-key", "--key-id", "alias/dr-replica")
	west.must("kms", "disable-key", "--key-id", key)
	if got := west.must("kms", "describe-key", "--key-id", "alias/dr-replica", "--query", "KeyMetadata.KeyState"); got != "Disabled" {
		t.Fatalf("key state %q", got)
	}
	if got, err := nfsCat(t, dstIP, "first.txt"); err == nil {
		t.Fatalf("read of a replica whose key is disabled succeeded (%d bytes)", len(got))
	} else {
		t.Logf("read with the key disabled: %v", err)
	}
	// EFS answers BadRequest (its model has no KMS errors), naming the key.
	if out := west.fails("BadRequest", "efs", "create-file-system", "--creation-token", "new", "--encrypted", "--kms-key-id", "alias/dr-replica"); !strings.Contains(out, "disabled") {
		t.Fatalf("create-file-system with a disabled key: %s", out)
	}
	west.fails("DisabledException", "kms", "rotate-key-on-demand", "--key-id", key)
	// The source keeps working; what it writes now reaches the replica
	// once the key is back.
	second := []byte("written while the replica's key was disabled\n")
	if err := nfsPut(t, srcIP, "second.txt", second); err != nil {
		t.Fatal(err)
	}
	if out := west.must("efs", "describe-file-systems", "--file-system-id", dst, "--query", "FileSystems[0].FileSystemId"); out != dst {
		t.Fatalf("describe-file-systems of a locked file system: %q", out)
	}

	west.must("kms", "enable-key", "--key-id", key)
	testkit.WaitFor(t, "replica readable again with the key enabled", 30*time.Second, func() bool {
		got, err := nfsCat(t, dstIP, "first.txt")
		return err == nil && bytes.Equal(got, first)
	})
	testkit.WaitFor(t, "replication caught up after the key came back", 60*time.Second, func() bool {
		got, err := nfsCat(t, dstIP, "second.txt")
		return err == nil && bytes.Equal(got, second)
	})

	// Rotation re-wraps the replica's data key; data stays readable, also
	// after a restart.
	west.must("kms", "rotate-key-on-demand", "--key-id", key)
	west.kill9()
	west.start()
	testkit.WaitFor(t, "replica readable after rotation and restart", 30*time.Second, func() bool {
		got, err := nfsCat(t, dstIP, "first.txt")
		return err == nil && bytes.Equal(got, first)
	})

	// Pending deletion: the key cannot be used, the replica is locked;
	// canceling the deletion leaves the key disabled, as on AWS.
	if got := west.must("kms", "schedule-key-deletion", "--key-id", key, "--pending-window-in-days", "7", "--query", "KeyState"); got != "PendingDeletion" {
		t.Fatalf("schedule-key-deletion: %q", got)
	}
	if _, err := nfsCat(t, dstIP, "first.txt"); err == nil {
		t.Fatal("read of a replica whose key is pending deletion succeeded")
	}
	if out := west.fails("BadRequest", "efs", "create-file-system", "--creation-token", "new2", "--encrypted", "--kms-key-id", key); !strings.Contains(out, "pending deletion") {
		t.Fatalf("create-file-system with a key pending deletion: %s", out)
	}
	west.must("kms", "cancel-key-deletion", "--key-id", key)
	if got := west.must("kms", "describe-key", "--key-id", key, "--query", "KeyMetadata.KeyState"); got != "Disabled" {
		t.Fatalf("key state after cancel-key-deletion: %q", got)
	}
	west.must("kms", "enable-key", "--key-id", key)
	testkit.WaitFor(t, "replica readable after the deletion was canceled", 30*time.Second, func() bool {
		got, err := nfsCat(t, dstIP, "first.txt")
		return err == nil && bytes.Equal(got, first)
	})
}
