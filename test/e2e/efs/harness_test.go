package efse2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// region is a `regionfs serve` process on its own loopback range, with an
// env file that points the AWS tools at it.
type region struct {
	t       *testing.T
	name    string
	api     string
	nfsPort int
	env     string // path of the env file
	dir     string
	bin     string
	cfg     string
	cmd     *exec.Cmd
	done    chan error
	log     string
}

const regionConfig = `
region: %[1]s
account_id: "123456789012"
data_dir: %[2]s/data
api: {listen: "%[3]s"}
nfs: {port: %[4]d}
credentials: [{access_key_id: AKIAEFSE2ETESTKEY001, secret_file: %[2]s/secret}]
vpc: {id: vpc-0e2e0e2e0e2e0e2e0}
subnets:
  - {id: subnet-0e2e00000000000a1, availability_zone: %[1]sa, cidr: %[5]s.1.0/24, name: e2e-a}
  - {id: subnet-0e2e00000000000b1, availability_zone: %[1]sb, cidr: %[5]s.2.0/24, name: e2e-b}
security_groups:
  - {id: sg-0e2e00000000000a1, name: default, description: NFS from loopback, ingress: [127.0.0.0/8]}
  - {id: sg-0e2e00000000000b1, name: elsewhere, description: NFS from another network, ingress: [10.0.0.0/8]}
kms_keys: [{id: 0e2e0e2e-0e2e-4e2e-8e2e-0e2e0e2e0e2e, aliases: [alias/aws/elasticfilesystem], key_file: %[2]s/kms.key}]
control: {transition_delay: 300ms}
log: {level: debug, format: json}
`

// startRegion builds and starts regionfs serve; net is the loopback /16
// prefix of the region ("127.41").
func startRegion(t *testing.T, name, net string) *region {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "regionfs")
	build := exec.Command("go", "build", "-o", bin, "./cmd/regionfs")
	build.Dir = moduleRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	secret := "e2e-secret-" + name
	must(t, os.WriteFile(filepath.Join(dir, "secret"), []byte(secret+"\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "kms.key"), []byte(strings.Repeat("5a", 32)+"\n"), 0o600))
	r := &region{t: t, name: name, dir: dir, log: filepath.Join(dir, "serve.log")}
	r.api = fmt.Sprintf("%s.0.1:%d", net, testkit.FreePort(t, net+".0.1"))
	r.nfsPort = testkit.FreePort(t, net+".1.4")
	cfg := filepath.Join(dir, "region.yaml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(regionConfig, name, dir, r.api, r.nfsPort, net)), 0o600))
	r.bin, r.cfg = bin, cfg
	r.start()
	t.Cleanup(r.stop)
	// The env file, as `regionfs dev` writes it.
	url := "http://" + r.api
	r.env = filepath.Join(dir, "env.sh")
	must(t, os.WriteFile(r.env, []byte(strings.Join([]string{
		"export AWS_ACCESS_KEY_ID=AKIAEFSE2ETESTKEY001", "export AWS_SECRET_ACCESS_KEY=" + secret,
		"export AWS_DEFAULT_REGION=" + name, "export AWS_REGION=" + name,
		"export AWS_ENDPOINT_URL_EFS=" + url, "export AWS_ENDPOINT_URL_EC2=" + url,
		"export AWS_EC2_METADATA_DISABLED=true", "export AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=false",
		"unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE", "",
	}, "\n")), 0o600))
	r.waitReady()
	return r
}

// start starts the serve process (its log is appended to).
func (r *region) start() {
	r.t.Helper()
	logf, err := os.OpenFile(r.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	must(r.t, err)
	r.cmd = exec.Command(r.bin, "serve", "--config", r.cfg)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	must(r.t, r.cmd.Start())
	r.done = make(chan error, 1)
	go func() { r.done <- r.cmd.Wait(); logf.Close() }()
}

func (r *region) waitReady() {
	r.t.Helper()
	testkit.WaitHTTP(r.t, "http://"+r.api+"/metrics", 60*time.Second, r.done, r.output)
}

// kill9 kills the serve process without warning and starts it again.
func (r *region) kill9() {
	r.t.Helper()
	must(r.t, r.cmd.Process.Kill())
	<-r.done
	r.start()
	r.waitReady()
}

func (r *region) output() string {
	b, _ := os.ReadFile(r.log)
	return string(b)
}

func (r *region) stop() {
	if r.cmd.ProcessState != nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("regionfs serve exit after SIGTERM: %v\n%s", err, r.output())
		}
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
		r.t.Errorf("regionfs serve did not stop within 30 s of SIGTERM")
	}
}

// shell runs a bash command after sourcing the env file, as a user would.
func (r *region) shell(command string) (string, error) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", ". "+quote(r.env)+" && "+command)
	home := r.t.TempDir()
	cmd.Env = append(os.Environ(), "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1", "AWS_CONFIG_FILE="+home+"/config", "AWS_SHARED_CREDENTIALS_FILE="+home+"/credentials")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// aws runs the aws CLI with args (after the env file).
func (r *region) aws(args ...string) (string, error) {
	r.t.Helper()
	c := "exec aws"
	for _, a := range args {
		c += " " + quote(a)
	}
	return r.shell(c)
}

// mustAWS runs the aws CLI and fails the test on an error.
func (r *region) mustAWS(args ...string) string {
	r.t.Helper()
	out, err := r.aws(args...)
	if err != nil {
		r.t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// nfsURL is a libnfs URL of path through the mount target at ip.
func (r *region) nfsURL(ip, path string) string {
	return testkit.NFSURL(netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(r.nfsPort)), path)
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func itoa(n int) string { return fmt.Sprint(n) }
