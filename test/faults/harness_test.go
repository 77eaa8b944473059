package faults

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	"golang.org/x/sys/unix"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/testkit"
)

// suiteEnv runs the suite; .ci/run sets it.
const suiteEnv = "REGIONFS_FAULTS"

const (
	accessKey  = "AKIAFAULTSTESTKEY001"
	secretKey  = "faults-secret-0123456789abcdef"
	regionName = "us-east-1"
)

// needSuite skips unless the suite is asked for.
func needSuite(t *testing.T) {
	t.Helper()
	if os.Getenv(suiteEnv) != "1" {
		t.Skipf("fault-injection suite: set %s=1 to run it (.ci/run does; it mounts tmpfs, as root)", suiteEnv)
	}
}

// needRoot skips (or fails under REGIONFS_REQUIRE_TOOLS=1) without root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(testkit.RequireToolsEnv) == "1" {
		t.Fatalf("the fault-injection suite mounts tmpfs and needs root (%s=1)", testkit.RequireToolsEnv)
	}
	t.Skip("skipping: mounting a tmpfs needs root (set " + testkit.RequireToolsEnv + "=1 to fail instead)")
}

// built is cmd/regionfs, built once for the suite and removed at its end
// (a directory of its own per run leaked 63 MB into /tmp each time).
var built testkit.SharedBuild

func TestMain(m *testing.M) { built.Main(m, 0o700) }

// regionfsBinary builds ./cmd/regionfs once.
func regionfsBinary(t *testing.T) string {
	t.Helper()
	return built.Path(t)
}

// mountTmpfs mounts a tmpfs of size bytes, unmounted at the end of the
// test.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// availBytes is statfs's available bytes of dir.
func availBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// fill allocates a file in dir (as another process filling the disk
// would) so that leave bytes stay free; it returns the file's path.
func fill(t *testing.T, dir string, leave int64) string {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("filler-%d", time.Now().UnixNano()))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := availBytes(t, dir) - leave
	if n > 0 {
		if err := unix.Fallocate(int(f.Fd()), 0, 0, n); err != nil && !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("fallocate %d bytes: %v", n, err)
		}
	}
	// Whatever statfs rounding left, down to leave.
	buf := make([]byte, 4096)
	for availBytes(t, dir) > leave+4096 {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	return path
}

// options of a region.
type regionOpts struct {
	data          string // data directory (a tmpfs for full-disk tests)
	minFree       string // engine.min_free_space
	reserved      string // engine.reserved_space
	requestBuffer string // nfs.request_buffer
	recordTimeout time.Duration
}

// region is one `regionfs serve` process.
type region struct {
	t       *testing.T
	o       regionOpts
	dir     string // config, keys, log
	cfg     string
	api     string
	net     string // loopback /16 prefix
	nfsPort int
	cmd     *exec.Cmd
	done    chan error
	logPath string
	efs     *efs.Client
}

const configTemplate = `
region: us-east-1
account_id: "123456789012"
data_dir: %[1]s
api: {listen: "%[2]s"}
nfs: {port: %[3]d%[8]s}
credentials: [{access_key_id: AKIAFAULTSTESTKEY001, secret_access_key: faults-secret-0123456789abcdef}]
vpc: {id: vpc-0fa0fa0fa0fa0fa0f}
subnets:
  - {id: subnet-0fa00000000000aa1, availability_zone: us-east-1a, cidr: %[4]s.1.0/24, name: faults-a}
security_groups:
  - {id: sg-0fa00000000000aa1, name: default, description: NFS from loopback, ingress: [127.0.0.0/8]}
control: {transition_delay: 0s}
engine: {min_free_space: %[5]s, reserved_space: %[6]s, memtable_size: 4MiB, cache_size: 16MiB%[7]s}
log: {level: info, format: json}
`

// netSeq hands each region its own loopback /16.
var (
	netMu  sync.Mutex
	netSeq = 90
)

// startRegion writes a config and starts regionfs serve.
func startRegion(t *testing.T, o regionOpts) *region {
	t.Helper()
	netMu.Lock()
	netSeq++
	prefix := fmt.Sprintf("127.%d", netSeq)
	netMu.Unlock()
	r := &region{t: t, o: o, dir: t.TempDir(), net: prefix}
	if r.o.data == "" {
		r.o.data = filepath.Join(r.dir, "data")
	}
	if r.o.minFree == "" {
		r.o.minFree = "32MiB"
	}
	if r.o.reserved == "" {
		r.o.reserved = "16MiB"
	}
	r.api = fmt.Sprintf("%s.0.1:%d", prefix, testkit.FreePort(t, prefix+".0.1"))
	r.nfsPort = testkit.FreePort(t, prefix+".1.4")
	var nfsExtra, engineExtra string
	if o.requestBuffer != "" {
		nfsExtra += ", request_buffer: " + o.requestBuffer
	}
	if o.recordTimeout > 0 {
		nfsExtra += ", record_timeout: " + o.recordTimeout.String()
	}
	r.cfg = filepath.Join(r.dir, "region.yaml")
	cfg := fmt.Sprintf(configTemplate, r.o.data, r.api, r.nfsPort, prefix, r.o.minFree, r.o.reserved, engineExtra, nfsExtra)
	if err := os.WriteFile(r.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r.logPath = filepath.Join(r.dir, "serve.log")
	r.efs = efs.NewFromConfig(testkit.AWSConfig("http://"+r.api, regionName, accessKey, secretKey))
	r.start()
	t.Cleanup(r.stop)
	r.waitReady(60 * time.Second)
	return r
}

// start starts the process (its log is appended to).
func (r *region) start() {
	r.t.Helper()
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	r.cmd = exec.Command(regionfsBinary(r.t), "serve", "--config", r.cfg)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.done = make(chan error, 1)
	go func() { r.done <- r.cmd.Wait(); logf.Close() }()
}

func (r *region) waitReady(timeout time.Duration) {
	r.t.Helper()
	testkit.WaitHTTP(r.t, "http://"+r.api+"/metrics", timeout, r.done, r.output)
}

// alive fails the test when the process has ended.
func (r *region) alive() {
	r.t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		r.t.Fatalf("regionfs serve ended: %v\n%s", err, tail(r.output(), 40))
	default:
	}
}

// kill9 kills the process without warning.
func (r *region) kill9() {
	r.t.Helper()
	if err := r.cmd.Process.Kill(); err != nil {
		r.t.Fatal(err)
	}
	<-r.done
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
		r.t.Errorf("regionfs serve did not stop within 30 s of SIGTERM")
	}
}

func (r *region) output() string {
	b, _ := os.ReadFile(r.logPath)
	return string(b)
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// countLog counts log lines containing substr.
func (r *region) countLog(substr string) int {
	return strings.Count(r.output(), substr)
}

// status runs `regionfs status` against the region, as an operator would.
func (r *region) status() string {
	r.t.Helper()
	cmd := exec.Command(regionfsBinary(r.t), "status")
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey,
		"AWS_REGION="+regionName, "AWS_ENDPOINT_URL_EFS=http://"+r.api, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("regionfs status: %v\n%s", err, out)
	}
	return string(out)
}

// rssBytes is the resident set size of the process.
func (r *region) rssBytes() int64 {
	r.t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", r.cmd.Process.Pid))
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				r.t.Fatal(err)
			}
			return kb << 10
		}
	}
	r.t.Fatal("no VmRSS")
	return 0
}

// metric returns the value of a metric line of /metrics (the first
// sample whose name and labels start with prefix).
func (r *region) metric(prefix string) (float64, bool) {
	r.t.Helper()
	resp, err := http.Get("http://" + r.api + "/metrics")
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// fileSystem creates a file system and a mount target and returns the
// mount target's NFS address.
func (r *region) fileSystem(ctx context.Context) (fsID, nfsAddr string) {
	r.t.Helper()
	fs, err := r.efs.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(fmt.Sprintf("faults-%d", time.Now().UnixNano()))})
	if err != nil {
		r.t.Fatal(err)
	}
	fsID = aws.ToString(fs.FileSystemId)
	testkit.WaitFor(r.t, "file system available", 30*time.Second, func() bool {
		out, err := r.efs.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(fsID)})
		return err == nil && len(out.FileSystems) == 1 && out.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable
	})
	mt, err := r.efs.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: aws.String(fsID), SubnetId: aws.String("subnet-0fa00000000000aa1")})
	if err != nil {
		r.t.Fatal(err)
	}
	testkit.WaitFor(r.t, "mount target available", 30*time.Second, func() bool {
		out, err := r.efs.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{MountTargetId: mt.MountTargetId})
		return err == nil && len(out.MountTargets) == 1 && out.MountTargets[0].LifeCycleState == types.LifeCycleStateAvailable
	})
	return fsID, fmt.Sprintf("%s:%d", aws.ToString(mt.IpAddress), r.nfsPort)
}

// nfsClient dials a mount target and mounts the file system's root.
func nfsClient(t *testing.T, addr string) (*client.Client, proto.FH) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var c *client.Conn
	testkit.Eventually(t, 10*time.Second, func() error {
		var err error
		c, err = client.Dial(ctx, addr)
		return err
	})
	t.Cleanup(func() { c.Close() })
	cl := c.WithAuth(client.Unix("faults", 0, 0))
	fh, _, err := cl.Mount(ctx, "/")
	if err != nil {
		t.Fatalf("mount %s: %v", addr, err)
	}
	return cl, fh
}

// nfsURL is a libnfs URL of a file at the root of the export.
func nfsURL(addr, name string) string {
	return testkit.NFSURL(netip.MustParseAddrPort(addr), "/"+name)
}

// readAll reads a whole file over NFS.
func readAll(ctx context.Context, c *client.Client, fh proto.FH) ([]byte, error) {
	var out []byte
	for off := uint64(0); ; {
		rd, err := c.Read(ctx, fh, off, 1<<20)
		if err != nil {
			return out, err
		}
		out = append(out, rd.Data...)
		off += uint64(len(rd.Data))
		if rd.EOF || len(rd.Data) == 0 {
			return out, nil
		}
	}
}
