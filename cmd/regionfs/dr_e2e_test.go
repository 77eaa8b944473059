package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/testkit"
)

// The whole disaster-recovery story with the real aws CLI and libnfs, as an
// operator would live it: replicate us-east-1 → us-west-2, see the data and
// the lag on the replica, lose us-east-1, fail over from us-west-2, write
// to the promoted file system, get us-east-1 back (fenced), fail back
// incrementally into the original, fail over again, and check every file
// at each step.
func TestDisasterRecoveryE2E(t *testing.T) {
	testkit.NeedTool(t, "aws")
	testkit.NeedTool(t, "nfs-cp")
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "data")
	p := startDev(t, bin, dir)
	work := t.TempDir()
	ctx := context.Background()

	must := func(out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("%v\n%s\n--- dev log ---\n%s", err, out, tail(p.logText(), 60))
		}
		return out
	}
	waitFor := func(what string, d time.Duration, f func() bool) {
		t.Helper()
		if !testkit.Until(d, f) {
			t.Fatalf("timed out after %s waiting for %s\n--- dev log ---\n%s", d, what, tail(p.logText(), 60))
		}
	}
	fsState := func(fs, region string) string {
		out, _ := p.aws("efs", "describe-file-systems", "--region", region, "--file-system-id", fs, "--query", "FileSystems[0].[LifeCycleState,FileSystemProtection.ReplicationOverwriteProtection]", "--output", "text")
		return out
	}
	mountTarget := func(fs, region string) string {
		t.Helper()
		subnet := must(p.aws("ec2", "describe-subnets", "--region", region, "--query", "Subnets[0].SubnetId", "--output", "text"))
		sg := must(p.aws("ec2", "describe-security-groups", "--region", region, "--query", "SecurityGroups[0].GroupId", "--output", "text"))
		mt := must(p.aws("efs", "create-mount-target", "--region", region, "--file-system-id", fs, "--subnet-id", subnet, "--security-groups", sg, "--query", "MountTargetId", "--output", "text"))
		waitFor("mount target "+mt, 30*time.Second, func() bool {
			out, _ := p.aws("efs", "describe-mount-targets", "--region", region, "--mount-target-id", mt, "--query", "MountTargets[0].LifeCycleState", "--output", "text")
			return out == "available"
		})
		return must(p.aws("efs", "describe-mount-targets", "--region", region, "--mount-target-id", mt, "--query", "MountTargets[0].IpAddress", "--output", "text"))
	}
	url := func(ip, path string) string {
		return fmt.Sprintf("nfs://%s%s?nfsport=%d&mountport=%d&version=3&auto-traverse-mounts=0", ip, path, devNFSPort, devNFSPort)
	}
	put := func(ip, path string, data []byte) error {
		f := filepath.Join(work, "put")
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("nfs-cp", f, url(ip, path)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("nfs-cp %s: %v: %s", path, err, out)
		}
		return nil
	}
	get := func(ip, path string) ([]byte, error) {
		out, err := exec.Command("nfs-cat", url(ip, path)).Output()
		if err != nil {
			return nil, fmt.Errorf("nfs-cat %s: %v", path, err)
		}
		return out, nil
	}
	// tree holds what every file should contain; check reads all of it.
	tree := map[string][]byte{}
	check := func(ip, step string, absent ...string) {
		t.Helper()
		for path, want := range tree {
			got, err := get(ip, path)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: %s on %s: %d bytes (%v), want %d", step, path, ip, len(got), err, len(want))
			}
		}
		for _, path := range absent {
			if _, err := get(ip, path); err == nil {
				t.Fatalf("%s: %s exists on %s", step, path, ip)
			}
		}
		t.Logf("%s: %d files verified on %s", step, len(tree), ip)
	}
	write := func(ip, path string, data []byte) {
		t.Helper()
		if err := put(ip, path, data); err != nil {
			t.Fatal(err)
		}
		tree[path] = data
	}

	// 1. A file system in us-east-1 with a tree written over NFS.
	src := must(p.aws("efs", "create-file-system", "--region", "us-east-1", "--creation-token", "dr-e2e", "--encrypted", "--tags", "Key=Name,Value=dr", "--query", "FileSystemId", "--output", "text"))
	waitFor("source available", 30*time.Second, func() bool { return strings.HasPrefix(fsState(src, "us-east-1"), "available") })
	sip := mountTarget(src, "us-east-1")
	mkdirs(t, ctx, sip, "/docs", "/docs/2026", "/bin")
	write(sip, "/hello.txt", []byte("hello, replica\n"))
	write(sip, "/docs/2026/report.bin", random(t, 3<<20+123))
	write(sip, "/bin/tool", random(t, 70_000))
	for i := range 20 {
		write(sip, fmt.Sprintf("/docs/note-%02d.txt", i), []byte(fmt.Sprintf("note %d\n", i)))
	}

	// 2. Replication to us-west-2: ENABLED, the tree on the replica,
	// writes refused there, lag visible.
	rep := must(p.aws("efs", "create-replication-configuration", "--region", "us-east-1", "--source-file-system-id", src, "--destinations", "Region=us-west-2", "--output", "json"))
	var rc struct {
		Destinations []struct{ FileSystemId, Status string }
	}
	if err := json.Unmarshal([]byte(rep), &rc); err != nil || len(rc.Destinations) != 1 || rc.Destinations[0].FileSystemId == "" {
		t.Fatalf("create-replication-configuration: %v\n%s", err, rep)
	}
	dst := rc.Destinations[0].FileSystemId
	status := func(region, fs string) string {
		out, _ := p.aws("efs", "describe-replication-configurations", "--region", region, "--file-system-id", fs, "--query", "Replications[0].Destinations[0].Status", "--output", "text")
		return out
	}
	waitFor("replication ENABLED", 60*time.Second, func() bool { return status("us-east-1", src) == "ENABLED" })
	if got := must(p.aws("efs", "describe-replication-configurations", "--region", "us-west-2", "--file-system-id", dst, "--query", "Replications[0].SourceFileSystemId", "--output", "text")); got != src {
		t.Fatalf("us-west-2 describes source %q, want %q", got, src)
	}
	if got := fsState(dst, "us-west-2"); got != "available\tREPLICATING" {
		t.Fatalf("replica state/protection: %q", got)
	}
	dip := mountTarget(dst, "us-west-2")
	check(dip, "replica after the initial sync")
	if err := put(dip, "/refused.txt", []byte("no")); err == nil {
		t.Fatal("the replica accepted a write")
	}
	if err := createOver(ctx, dip, "refused2.txt"); !errors.Is(err, proto.ErrROFS) {
		t.Fatalf("CREATE on the replica: %v, want NFS3ERR_ROFS", err)
	}
	for i := range 10 {
		write(sip, fmt.Sprintf("/docs/2026/live-%d.txt", i), []byte(fmt.Sprintf("written while replicating %d\n", i)))
	}
	waitFor("live writes on the replica", 30*time.Second, func() bool {
		got, err := get(dip, "/docs/2026/live-9.txt")
		return err == nil && bytes.Equal(got, tree["/docs/2026/live-9.txt"])
	})
	last := must(p.aws("efs", "describe-replication-configurations", "--region", "us-west-2", "--file-system-id", dst, "--query", "Replications[0].Destinations[0].LastReplicatedTimestamp", "--output", "text"))
	var lastSec float64
	if _, err := fmt.Sscan(last, &lastSec); err != nil {
		t.Fatalf("LastReplicatedTimestamp %q: %v", last, err)
	}
	if lag := time.Since(time.Unix(int64(lastSec), 0)); lag > 10*time.Second {
		t.Fatalf("lag %s while replicating", lag)
	}
	check(dip, "replica while replicating")

	// 3. us-east-1 goes down; failover from us-west-2.
	lost := "/docs/2026/lost-in-the-outage.txt"
	if out, err := exec.Command(bin, "dev", "region", "stop", "us-east-1", "--data-dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("region stop: %v %s", err, out)
	}
	t0 := time.Now()
	must(p.aws("efs", "delete-replication-configuration", "--region", "us-west-2", "--source-file-system-id", src))
	t.Logf("failover (delete in us-west-2 with us-east-1 down) took %s", time.Since(t0))
	waitFor("promoted replica writable", 30*time.Second, func() bool { return put(dip, "/after-failover.txt", []byte("after failover\n")) == nil })
	tree["/after-failover.txt"] = []byte("after failover\n")
	if got := fsState(dst, "us-west-2"); got != "available\tENABLED" {
		t.Fatalf("promoted state/protection: %q", got)
	}
	if out, err := p.aws("efs", "describe-replication-configurations", "--region", "us-west-2", "--file-system-id", dst); err == nil || !strings.Contains(out, "ReplicationNotFound") {
		t.Fatalf("describe after failover: %v %s", err, out)
	}
	check(dip, "promoted file system")

	// 4. us-east-1 comes back: it learns of the failover and is fenced.
	if out, err := exec.Command(bin, "dev", "region", "start", "us-east-1", "--data-dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("region start: %v %s", err, out)
	}
	waitFor("old source fenced (protection DISABLED)", 30*time.Second, func() bool { return fsState(src, "us-east-1") == "available\tDISABLED" })
	if err := put(sip, lost, []byte("must not be accepted")); err == nil {
		t.Fatal("the fenced old source accepted a write")
	}

	// 5. Failback into the original, incrementally, the EFS way.
	must(p.aws("efs", "update-file-system-protection", "--region", "us-east-1", "--file-system-id", src, "--replication-overwrite-protection", "DISABLED"))
	back := must(p.aws("efs", "create-replication-configuration", "--region", "us-west-2", "--source-file-system-id", dst,
		"--destinations", "Region=us-east-1,FileSystemId="+src, "--query", "Destinations[0].FileSystemId", "--output", "text"))
	if back != src {
		t.Fatalf("failback destination %q, want %q", back, src)
	}
	waitFor("failback ENABLED", 60*time.Second, func() bool { return status("us-west-2", dst) == "ENABLED" })
	write(dip, "/after-failback.txt", []byte("written on the promoted side after the failback started\n"))
	waitFor("the original up to date", 30*time.Second, func() bool {
		got, err := get(sip, "/after-failback.txt")
		return err == nil && bytes.Equal(got, tree["/after-failback.txt"])
	})
	check(sip, "original after the failback", lost)
	st := must(withEnv(dir, bin, "status", "--region", "us-west-2"))
	t.Logf("regionfs status during the failback:\n%s", st)

	// 6. Fail over again, back home: the original is writable.
	must(p.aws("efs", "delete-replication-configuration", "--region", "us-east-1", "--source-file-system-id", src))
	waitFor("original writable again", 30*time.Second, func() bool { return put(sip, "/home-again.txt", []byte("home\n")) == nil })
	tree["/home-again.txt"] = []byte("home\n")
	if got := fsState(src, "us-east-1"); got != "available\tENABLED" {
		t.Fatalf("original state/protection after the second failover: %q", got)
	}
	check(sip, "original after the second failover", lost)
}

// withEnv runs a command after `. DIR/env.sh`, as a user would.
func withEnv(dir string, args ...string) (string, error) {
	script := ". " + shellQuote(filepath.Join(dir, "env.sh")) + " && exec"
	for _, a := range args {
		script += " " + shellQuote(a)
	}
	out, err := exec.Command("bash", "-c", script).CombinedOutput()
	return string(out), err
}

func random(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// mkdirs makes directories over NFS with regionfs's own client (libnfs's
// tools have no mkdir).
func mkdirs(t *testing.T, ctx context.Context, ip string, paths ...string) {
	t.Helper()
	c, root := mountRoot(t, ctx, ip)
	for _, p := range paths {
		dir := root
		parts := strings.Split(strings.Trim(p, "/"), "/")
		for i, name := range parts {
			if i == len(parts)-1 {
				if _, err := c.Mkdir(ctx, dir, name, proto.Sattr{}); err != nil {
					t.Fatalf("mkdir %s: %v", p, err)
				}
				break
			}
			res, err := c.Lookup(ctx, dir, name)
			if err != nil {
				t.Fatalf("lookup %s in %s: %v", name, p, err)
			}
			dir = res.FH
		}
	}
}

func mountRoot(t *testing.T, ctx context.Context, ip string) (*client.Client, proto.FH) {
	t.Helper()
	conn, err := client.Dial(ctx, fmt.Sprintf("%s:%d", ip, devNFSPort))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := conn.WithAuth(client.Unix("e2e", 0, 0))
	root, _, err := c.Mount(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	return c, root
}

// createOver creates an empty file over NFS on the mount target at ip.
func createOver(ctx context.Context, ip, name string) error {
	return nfsWrite(ctx, fmt.Sprintf("%s:%d", ip, devNFSPort), name, "")
}
