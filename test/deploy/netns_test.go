package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
	"github.com/regionfs/regionfs/internal/testkit/docshape"
)

// guide is the document this test follows.
var guide = filepath.Join(root, "docs/production.md")

// The two "hosts" of docs/production.md.
const (
	hostA = "198.18.0.1"
	hostB = "198.18.0.2"
)

// serviceUser is the unprivileged user the services run as here (the unit
// names `regionfs`, which CI machines do not have).
const (
	serviceUser = "nobody"
	serviceUID  = 65534
	serviceGID  = 65534
)

// needRoot skips the test when it does not run as root, or fails it under
// REGIONFS_REQUIRE_TOOLS=1 (CI runs as root).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(testkit.RequireToolsEnv) == "1" {
		t.Fatalf("this test creates network namespaces and needs root (%s=1)", testkit.RequireToolsEnv)
	}
	t.Skipf("skipping: this test creates network namespaces and needs root (set %s=1 to fail instead)", testkit.RequireToolsEnv)
}

// host is one network namespace standing for a machine: its own root for
// /etc/regionfs and /var/lib/regionfs, and the services it runs.
type host struct {
	t    *testing.T
	name string // a, b
	ns   string
	dir  string // stands for / of the host's files
}

// path maps an absolute path of the guide to the host's directory.
func (h *host) path(p string) string { return filepath.Join(h.dir, p) }

// localize rewrites the guide's absolute paths to the host's directory.
func (h *host) localize(s string) string {
	s = strings.ReplaceAll(s, "/etc/regionfs/", h.path("/etc/regionfs")+"/")
	return strings.ReplaceAll(s, "/var/lib/regionfs/", h.path("/var/lib/regionfs")+"/")
}

// ip runs ip(8), in the host's namespace when ns is set.
func ip(t *testing.T, ns string, args ...string) {
	t.Helper()
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// service is a process started like systemd starts the deploy/systemd
// units: as the service user, with only the capabilities the unit grants,
// no new privileges, and a notification socket it must report READY=1 on.
type service struct {
	name   string
	cmd    *exec.Cmd
	log    *testkit.Buffer
	done   chan error
	notify *net.UnixConn
}

// start runs argv (a unit's ExecStart, the binary replaced) in h's namespace.
func (h *host) start(name string, caps []string, argv []string) *service {
	t := h.t
	t.Helper()
	sockDir, err := os.MkdirTemp("", "regionfs-notify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	os.Chmod(sockDir, 0o755)
	sock := filepath.Join(sockDir, "notify")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	os.Chown(sock, serviceUID, serviceGID)

	bounding := "-all"
	for _, c := range caps {
		bounding += ",+" + c
	}
	args := []string{"netns", "exec", h.ns, "setpriv",
		fmt.Sprintf("--reuid=%d", serviceUID), fmt.Sprintf("--regid=%d", serviceGID), "--clear-groups",
		"--no-new-privs", "--bounding-set=" + bounding}
	if len(caps) > 0 {
		add := "+" + strings.Join(caps, ",+")
		args = append(args, "--inh-caps="+add, "--ambient-caps="+add)
	} else {
		args = append(args, "--inh-caps=-all")
	}
	args = append(args, argv...)
	s := &service{name: name, log: new(testkit.Buffer), done: make(chan error, 1), notify: nc}
	s.cmd = exec.Command("ip", args...)
	s.cmd.Env = []string{"PATH=/usr/bin:/bin", "NOTIFY_SOCKET=" + sock}
	s.cmd.Dir = "/"
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("%s's log:\n%s", name, s.log)
		}
	})
	return s
}

// ready waits for the service's READY=1, as systemd does for Type=notify.
func (s *service) ready(t *testing.T, timeout time.Duration) {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 4096)
		s.notify.SetReadDeadline(time.Now().Add(timeout))
		for {
			n, err := s.notify.Read(buf)
			if err != nil {
				got <- "error: " + err.Error()
				return
			}
			if strings.Contains("\n"+string(buf[:n])+"\n", "\nREADY=1\n") {
				got <- string(buf[:n])
				return
			}
		}
	}()
	select {
	case msg := <-got:
		if strings.HasPrefix(msg, "error: ") {
			t.Fatalf("%s did not report READY=1: %s\n%s", s.name, msg, s.log)
		}
		t.Logf("%s: %q", s.name, msg)
	case err := <-s.done:
		s.done <- err
		t.Fatalf("%s exited before it was ready: %v\n%s", s.name, err, s.log)
	}
}

// stop sends SIGTERM (systemctl stop) and waits; a clean stop exits 0.
func (s *service) stop(t *testing.T) error {
	select {
	case err := <-s.done:
		s.done <- err
		return err
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		err := <-s.done
		s.done <- err
		return fmt.Errorf("%s did not stop within 60 s of SIGTERM", s.name)
	}
}

// TestTwoHosts runs docs/production.md: two regions on two hosts (network
// namespaces joined by a veth pair, addresses from 198.18.0.0/15 that exist
// only inside them), each region and edge started with its systemd unit's
// command line as an unprivileged user holding only the unit's
// capabilities, with the guide's configs and the secrets `regionfs keygen`
// makes as the guide says; then the guide's client commands on each host.
// What keygen and the client commands print is compared with the guide's
// output blocks (<!-- output: TestTwoHosts/… -->) by shape.
func TestTwoHosts(t *testing.T) {
	needRoot(t)
	testkit.NeedTool(t, "ip")
	testkit.NeedTool(t, "setpriv")
	testkit.NeedTool(t, "aws")
	testkit.NeedTool(t, "nfs-cp")
	testkit.NeedTool(t, "nfs-cat")
	bin := binary(t)

	// The machines and the wire between them.
	id := os.Getpid() % 100000
	hosts := map[string]*host{}
	for _, name := range []string{"a", "b"} {
		h := &host{t: t, name: name, ns: fmt.Sprintf("rfs-deploy-%s-%d", name, id), dir: t.TempDir()}
		os.Chmod(h.dir, 0o755)
		os.Chmod(filepath.Dir(h.dir), 0o755)
		ip(t, "", "netns", "add", h.ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", h.ns).Run() })
		ip(t, h.ns, "link", "set", "lo", "up")
		hosts[name] = h
	}
	a, b := hosts["a"], hosts["b"]
	va, vb := fmt.Sprintf("rfsa%d", id), fmt.Sprintf("rfsb%d", id)
	ip(t, "", "link", "add", va, "type", "veth", "peer", "name", vb)
	t.Cleanup(func() { exec.Command("ip", "link", "del", va).Run() }) // gone with the namespaces, unless moving failed
	ip(t, "", "link", "set", va, "netns", a.ns)
	ip(t, "", "link", "set", vb, "netns", b.ns)
	for _, x := range []struct {
		h                   *host
		dev, addr, own, far string
		via                 string
	}{
		{a, va, hostA + "/24", "198.18.1.0/24", "198.18.2.0/24", hostB},
		{b, vb, hostB + "/24", "198.18.2.0/24", "198.18.1.0/24", hostA},
	} {
		ip(t, x.h.ns, "addr", "add", x.addr, "dev", x.dev)
		ip(t, x.h.ns, "link", "set", x.dev, "up")
		// "The host owns the subnet" (docs/production.md).
		ip(t, x.h.ns, "route", "add", "local", x.own, "dev", "lo")
		ip(t, x.h.ns, "route", "add", x.far, "via", x.via)
	}

	// Install: the guide's files, its directories and owners.
	var runs []docBlock
	for _, h := range hosts {
		os.MkdirAll(h.path("/etc/regionfs"), 0o755)
		os.Chmod(h.path("/etc/regionfs"), 0o750) // install -d -m 0750 -o root -g regionfs
		os.Chown(h.path("/etc/regionfs"), 0, serviceGID)
		os.MkdirAll(h.path("/var/lib/regionfs"), 0o755)
	}
	for _, blk := range docBlocks(t) {
		h := hosts[blk.host]
		if h == nil {
			t.Fatalf("docs/production.md names host %q", blk.host)
		}
		if blk.path == "" {
			runs = append(runs, blk)
			continue
		}
		if err := os.WriteFile(h.path(blk.path), []byte(h.localize(blk.content)), 0o640); err != nil {
			t.Fatal(err)
		}
		os.Chown(h.path(blk.path), 0, serviceGID)
	}
	// "on host B the same with listen: 198.18.0.2:8070"
	edgeA, err := os.ReadFile(a.path("/etc/regionfs/edge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(b.path("/etc/regionfs/edge.yaml"), bytes.ReplaceAll(edgeA, []byte("listen: "+hostA+":8070"), []byte("listen: "+hostB+":8070")), 0o640)
	os.Chown(b.path("/etc/regionfs/edge.yaml"), 0, serviceGID)

	// systemd's StateDirectory=regionfs/%i: made for the service's user.
	for _, x := range []struct {
		h      *host
		region string
	}{{a, "us-east-1"}, {b, "us-west-2"}} {
		d := x.h.path("/var/lib/regionfs/" + x.region)
		os.MkdirAll(d, 0o750)
		os.Chown(d, serviceUID, serviceGID)
	}

	// Secrets and keys, as the guide makes them: keygen on host A, the two
	// shared secrets copied to host B (scp -p keeps their mode), keygen on B.
	keygen := func(h *host, region string) string {
		out, err := exec.Command(bin, "keygen", "--config", h.path("/etc/regionfs/"+region+".yaml"), "--owner", serviceUser).CombinedOutput()
		if err != nil {
			t.Fatalf("keygen on host %s: %v\n%s", h.name, err, out)
		}
		t.Logf("keygen on host %s:\n%s", h.name, out)
		// The guide shows what it prints, with the host's paths.
		if err := docshape.Compare(guide, "TestTwoHosts/keygen-"+h.name, strings.ReplaceAll(string(out), h.dir, "")); err != nil {
			t.Error(err)
		}
		return string(out)
	}
	if out := keygen(a, "us-east-1"); strings.Count(out, "wrote ") != 3 {
		t.Errorf("keygen on host A wrote %d files, want 3 (access key, pair secret, KMS key)", strings.Count(out, "wrote "))
	}
	for _, f := range []string{"AKIAREGIONFSPROD0001.secret", "replication-us-east-1-us-west-2.secret"} {
		data, err := os.ReadFile(a.path("/etc/regionfs/" + f))
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(a.path("/etc/regionfs/" + f))
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
		}
		os.WriteFile(b.path("/etc/regionfs/"+f), data, 0o600)
		os.Chown(b.path("/etc/regionfs/"+f), serviceUID, serviceGID) // chown regionfs: /etc/regionfs/*.secret
	}
	if out := keygen(b, "us-west-2"); strings.Count(out, "wrote ") != 1 {
		t.Errorf("keygen on host B wrote %d files, want 1 (its KMS key; the copied secrets are kept)", strings.Count(out, "wrote "))
	}

	// The units' command lines, the binary in place of /usr/local/bin/regionfs.
	unitArgv := func(h *host, unit, instance string) []string {
		argv := execStart(t, "deploy/systemd/"+unit)
		for i, a := range argv {
			a = strings.ReplaceAll(a, "%i", instance)
			a = strings.ReplaceAll(a, "/usr/local/bin/regionfs", bin)
			argv[i] = h.localize(a)
		}
		return argv
	}
	regionCaps := unitCaps(t, "deploy/systemd/regionfs@.service")
	edgeCaps := unitCaps(t, "deploy/systemd/regionfs-edge.service")
	if len(edgeCaps) != 0 || len(regionCaps) != 1 || regionCaps[0] != "net_bind_service" {
		t.Fatalf("the units' capabilities changed (region %v, edge %v): update this test", regionCaps, edgeCaps)
	}
	regA := a.start("regionfs@us-east-1 on host A", regionCaps, unitArgv(a, "regionfs@.service", "us-east-1"))
	regB := b.start("regionfs@us-west-2 on host B", regionCaps, unitArgv(b, "regionfs@.service", "us-west-2"))
	regA.ready(t, 60*time.Second)
	regB.ready(t, 60*time.Second)
	edA := a.start("regionfs-edge on host A", nil, unitArgv(a, "regionfs-edge.service", ""))
	edB := b.start("regionfs-edge on host B", nil, unitArgv(b, "regionfs-edge.service", ""))
	edA.ready(t, 30*time.Second)
	edB.ready(t, 30*time.Second)

	// The guide's client commands, on a client of each host (here: in the
	// host's namespace, as root, in a directory of its own).
	if len(runs) != 2 || runs[0].host != "a" || runs[1].host != "b" {
		t.Fatalf("docs/production.md: want a client block for host a, then one for host b; got %d", len(runs))
	}
	var fsID string
	for i, blk := range runs {
		h := hosts[blk.host]
		work := t.TempDir()
		secret, err := os.ReadFile(h.path("/etc/regionfs/AKIAREGIONFSPROD0001.secret"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(work, "AKIAREGIONFSPROD0001.secret"), secret, 0o600)
		script := "set -euo pipefail\n" + blk.content + "echo \"FS=$FS\"\n"
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", h.ns, "bash", "-c", script)
		cmd.Dir = work
		cmd.WaitDelay = 10 * time.Second // a client command left running must not hold the output open
		cmd.Env = append(cleanEnv(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"), "FS="+fsID,
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		out, err := cmd.CombinedOutput()
		cancel()
		t.Logf("client of host %s:\n%s", h.name, out)
		if err != nil {
			t.Fatalf("the guide's commands on a client of host %s: %v", h.name, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		fsID = strings.TrimPrefix(lines[len(lines)-1], "FS=")
		// What the guide shows the commands print, by shape (the last
		// line, FS=, is this test's).
		if err := docshape.Compare(guide, "TestTwoHosts/client-"+h.name, strings.Join(lines[:len(lines)-1], "\n")); err != nil {
			t.Error(err)
		}
		switch i {
		case 0:
			text := string(out)
			// nfs-cp, create-replication-configuration, then status
			// --all-regions through the edge: both regions, the link up.
			for _, want := range []string{"copied 18 bytes\n", "us-west-2\tfs-",
				"us-east-1 " + fsID + " → us-west-2 fs-", "source  ENABLED  link up", "destination  ENABLED  link up"} {
				if !strings.Contains(text, want) {
					t.Errorf("host A's client output lacks %q", want)
				}
			}
		case 1:
			if !strings.Contains(string(out), "written on host A\n") {
				t.Errorf("the replica on host B does not hold notes.txt")
			}
		}
	}
	if !strings.HasPrefix(fsID, "fs-") {
		t.Fatalf("no file system id from host A's client: %q", fsID)
	}

	// systemctl stop: SIGTERM, a clean exit; every log line is JSON
	// (log.format: json) and a region's lines name the region.
	for _, x := range []struct {
		s      *service
		region string
	}{{edA, ""}, {edB, ""}, {regA, "us-east-1"}, {regB, "us-west-2"}} {
		if err := x.s.stop(t); err != nil {
			t.Errorf("%s: stop: %v", x.s.name, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(x.s.log.Bytes()))
		n := 0
		for sc.Scan() {
			n++
			var rec map[string]any
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Errorf("%s: a log line is not JSON: %q", x.s.name, sc.Text())
				continue
			}
			if x.region != "" && rec["region"] != x.region {
				t.Errorf("%s: a log line without region=%s: %q", x.s.name, x.region, sc.Text())
			}
		}
		if n == 0 {
			t.Errorf("%s logged nothing", x.s.name)
		}
	}
}

// unitCaps returns the capabilities a unit's AmbientCapabilities grants,
// lower case without CAP_, as setpriv takes them.
func unitCaps(t *testing.T, unit string) []string {
	t.Helper()
	var caps []string
	for _, l := range strings.Split(readFile(t, unit), "\n") {
		if v, ok := strings.CutPrefix(l, "AmbientCapabilities="); ok {
			for _, c := range strings.Fields(v) {
				caps = append(caps, strings.ToLower(strings.TrimPrefix(c, "CAP_")))
			}
		}
	}
	return caps
}

// cleanEnv is the test's environment without AWS settings of the machine.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "PATH=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}
