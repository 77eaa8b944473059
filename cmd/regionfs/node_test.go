package main

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/config"
	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/testkit"
)

func testNodeConfig(t *testing.T, dir string, nfsPort int) *config.Config {
	t.Helper()
	zero := time.Duration(0)
	keyFile := filepath.Join(dir, "key")
	if err := ensureKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		Region: "ap-south-1", AccountID: "444455556666", DataDir: filepath.Join(dir, "data"),
		API:         config.Listener{Listen: "127.4.0.1:7070"}, // not started here
		NFS:         config.NFS{Port: nfsPort},
		Credentials: []config.Credential{{AccessKeyID: "AKIANODETESTKEY0001", SecretAccessKey: "node-test-secret-0123456789"}},
		Subnets: []config.Subnet{
			{ID: "subnet-0c0000000000000a1", AvailabilityZone: "ap-south-1a", CIDR: "127.4.1.0/24"},
			{ID: "subnet-0c0000000000000b1", AvailabilityZone: "ap-south-1b", CIDR: "127.4.2.0/24"},
		},
		SecurityGroups: []config.SecurityGroup{
			{ID: "sg-0c0000000000000a1", Name: "open", Ingress: []string{"127.0.0.0/8"}},
			{ID: "sg-0c0000000000000b1", Name: "closed", Ingress: []string{"10.0.0.0/8"}},
		},
		KMSKeys: []config.KMSKey{{ID: "key-1", Aliases: []string{config.DefaultAlias}, KeyFile: keyFile}},
		Control: config.Control{TransitionDelay: &zero},
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// waitFor waits up to 20 s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, what, 20*time.Second, cond)
}

// TestNodeMountTargets drives the control plane of a real node: mount
// targets in two subnets serve NFS on their own addresses (libnfs writes
// through one and reads through the other), an access point applies its
// POSIX user, a closed security group refuses clients, and after a restart
// the control plane serves the mount targets again.
func TestNodeMountTargets(t *testing.T) {
	nfsCp := testkit.NeedTool(t, "nfs-cp")
	nfsCat := testkit.NeedTool(t, "nfs-cat")
	nfsLs := testkit.NeedTool(t, "nfs-ls")
	ctx := context.Background()
	dir := t.TempDir()
	port := testkit.FreePort(t, "127.4.1.1")
	cfg := testNodeConfig(t, dir, port)
	log := slog.New(slog.DiscardHandler)
	n, err := openNode(ctx, cfg, log, nil, func(err error) { t.Errorf("fatal: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	r := n.control.region
	fs, err := r.CreateFileSystem(ctx, control.CreateFileSystemInput{CreationToken: "node-test", Encrypted: true})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "file system available", func() bool {
		d, err := r.DescribeFileSystem(ctx, fs.ID)
		return err == nil && d.LifeCycleState == control.StateAvailable
	})
	var mts []control.MountTarget
	for i, sub := range []string{"subnet-0c0000000000000a1", "subnet-0c0000000000000b1"} {
		mt, err := r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: sub, SecurityGroups: []string{"sg-0c0000000000000a1"}})
		if err != nil {
			t.Fatalf("mount target %d: %v", i, err)
		}
		mts = append(mts, mt)
	}
	closedMT, err := r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: "subnet-0c0000000000000a1", SecurityGroups: []string{"sg-0c0000000000000b1"}})
	if err == nil {
		t.Fatalf("a second mount target in one zone: %+v", closedMT)
	}
	ap, err := r.CreateAccessPoint(ctx, control.CreateAccessPointInput{ClientToken: "ap", FileSystemID: fs.ID,
		PosixUser:     &control.PosixUser{UID: 4321, GID: 4321},
		RootDirectory: control.RootDirectory{Path: "/team", CreationInfo: &control.CreationInfo{OwnerUID: 4321, OwnerGID: 4321, Permissions: "750"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "mount targets available", func() bool {
		got, _, err := r.DescribeMountTargets(ctx, control.MountTargetQuery{FileSystemID: fs.ID})
		if err != nil || len(got) != 2 {
			return false
		}
		for _, m := range got {
			if m.LifeCycleState != control.StateAvailable {
				return false
			}
		}
		return true
	})
	addr := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr(mts[i].IPAddress), uint16(port))
	}
	if !netip.MustParsePrefix("127.4.1.0/24").Contains(addr(0).Addr()) || !netip.MustParsePrefix("127.4.2.0/24").Contains(addr(1).Addr()) {
		t.Fatalf("mount target addresses %v %v", addr(0), addr(1))
	}
	run := func(tool string, args ...string) (string, error) {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(cctx, tool, args...).CombinedOutput()
		return string(out), err
	}
	src := filepath.Join(dir, "in.txt")
	os.WriteFile(src, []byte("across mount targets\n"), 0o644)
	if out, err := run(nfsCp, src, testkit.NFSURL(addr(0), "/note.txt")); err != nil {
		t.Fatalf("nfs-cp via %v: %v %s", addr(0), err, out)
	}
	if out, err := run(nfsCat, testkit.NFSURL(addr(1), "/note.txt")); err != nil || out != "across mount targets\n" {
		t.Fatalf("nfs-cat via %v: %v %q", addr(1), err, out)
	}
	if out, err := run(nfsCp, src, testkit.NFSURL(addr(1), "/"+ap.ID+"/mine.txt")); err != nil {
		t.Fatalf("nfs-cp via access point: %v %s", err, out)
	}
	if out, err := run(nfsLs, testkit.NFSURL(addr(0), "/team/")); err != nil || !strings.Contains(out, "4321") || !strings.Contains(out, "mine.txt") {
		t.Fatalf("access point directory: %v %s", err, out)
	}
	// Closing the security group of mount target 1 refuses its clients.
	if err := r.ModifyMountTargetSecurityGroups(ctx, mts[1].ID, []string{"sg-0c0000000000000b1"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "closed security group enforced", func() bool {
		_, err := run(nfsLs, testkit.NFSURL(addr(1), "//"))
		return err != nil
	})

	// Restart: the control plane serves the mount targets again.
	if err := n.close(ctx); err != nil {
		t.Fatal(err)
	}
	n, err = openNode(ctx, cfg, log, nil, func(err error) { t.Errorf("fatal: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	defer n.close(ctx)
	waitFor(t, "mount target served after restart", func() bool {
		out, err := run(nfsCat, testkit.NFSURL(addr(0), "/note.txt"))
		return err == nil && out == "across mount targets\n"
	})
	if _, err := run(nfsLs, testkit.NFSURL(addr(1), "//")); err == nil {
		t.Fatal("closed security group open again after a restart")
	}
}
