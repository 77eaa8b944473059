package nfs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/tlsca"
	"github.com/regionfs/regionfs/internal/testkit"
)

// freeAddrOn returns a free TCP address on ip.
func freeAddrOn(t *testing.T, ip string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// targetURL is a libnfs URL of path on the mount target at a. libnfs
// mounts everything before the last "/" of the path; with its default
// auto-traverse-mounts=1 it refuses the empty export it derives for files
// at the root, so those go through "/" with a double slash.
func targetURL(a netip.AddrPort, path string) string {
	if strings.Count(path, "/") == 1 {
		path = "/" + path
	}
	return fmt.Sprintf("nfs://%s%s?nfsport=%d&mountport=%d&version=3", a.Addr(), path, a.Port(), a.Port())
}

// targetFS opens an engine on d (closed when the test ends) and creates
// the file system fs-0123456789abcdef0 the targets serve.
func targetFS(t *testing.T, d disk.FS) *engine.FS {
	t.Helper()
	e, err := engine.Open(context.Background(), engine.Options{KV: kv.NewMemory(), Disk: d, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	fs, err := e.CreateFS(context.Background(), "fs-0123456789abcdef0", engine.FSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestTargets(t *testing.T) {
	nfsCp := testkit.NeedTool(t, "nfs-cp")
	nfsLs := testkit.NeedTool(t, "nfs-ls")
	ctx := context.Background()
	d, err := disk.NewOS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fs := targetFS(t, d)
	reg := prometheus.NewRegistry()
	m := NewTargets(TargetsOptions{Registerer: reg})
	defer m.Shutdown(ctx)
	a1, a2 := freeAddrOn(t, "127.0.0.1"), freeAddrOn(t, "127.0.0.2")
	everyone := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	nobody := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	uid := uint32(1234)
	mt1 := control.MountTargetSpec{ID: "fsmt-1", FileSystemID: "fs-0123456789abcdef0", Addr: a1, FS: fs, Ingress: everyone,
		AccessPoints: []control.AccessPointSpec{{ID: "fsap-0123456789abcdef0", Path: "/apdir", PosixUser: &engine.Cred{UID: uid, GID: uid}, CreationInfo: &control.DirCreation{UID: uid, GID: uid, Mode: 0o750}}}}
	mt2 := control.MountTargetSpec{ID: "fsmt-2", FileSystemID: "fs-0123456789abcdef0", Addr: a2, FS: fs, Ingress: nobody}
	if err := m.Start(ctx, mt1); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx, mt2); err != nil {
		t.Fatal(err)
	}
	run := func(tool string, args ...string) (string, error) {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(cctx, tool, args...).CombinedOutput()
		return string(out), err
	}
	src := filepath.Join(t.TempDir(), "in")
	os.WriteFile(src, []byte("hello through a mount target\n"), 0o644)
	if out, err := run(nfsCp, src, targetURL(a1, "/hello.txt")); err != nil {
		t.Fatalf("nfs-cp in: %v %s", err, out)
	}
	// mt2's security group admits nobody on loopback.
	if out, err := run(nfsLs, targetURL(a2, "/")); err == nil {
		t.Fatalf("nfs-ls through a closed security group worked: %s", out)
	}
	mt2.Ingress = everyone
	if err := m.Update(ctx, mt2); err != nil {
		t.Fatal(err)
	}
	out, err := run(nfsLs, targetURL(a2, "/"))
	if err != nil || !strings.Contains(out, "hello.txt") {
		t.Fatalf("nfs-ls through mt2 after opening it: %v %s", err, out)
	}
	dst := filepath.Join(t.TempDir(), "out")
	if out, err := run(nfsCp, targetURL(a2, "/hello.txt"), dst); err != nil {
		t.Fatalf("nfs-cp out: %v %s", err, out)
	}
	if b, _ := os.ReadFile(dst); string(b) != "hello through a mount target\n" {
		t.Fatalf("read back %q", b)
	}
	// Through the access point, files land in its directory as its user.
	if out, err := run(nfsCp, src, targetURL(a1, "/fsap-0123456789abcdef0/ap.txt")); err != nil {
		t.Fatalf("nfs-cp via access point: %v %s", err, out)
	}
	out, err = run(nfsLs, targetURL(a2, "/apdir/"))
	if err != nil || !strings.Contains(out, "ap.txt") || !strings.Contains(out, "1234") {
		t.Fatalf("access point file: %v %s", err, out)
	}
	// A regional outage: nothing answers, then everything comes back.
	if err := m.Suspend(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", a1.String(), time.Second); err == nil {
		c.Close()
		t.Fatal("mount target still accepts while suspended")
	}
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	if out, err := run(nfsLs, targetURL(a1, "/")); err != nil || !strings.Contains(out, "hello.txt") {
		t.Fatalf("after resume: %v %s", err, out)
	}
	// Each mount target's NFS metrics, also after suspend/resume registered them again.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				found = found || (l.GetName() == "mount_target" && l.GetValue() == "fsmt-1")
			}
		}
	}
	if !found {
		t.Fatal("no NFS metrics labelled mount_target=fsmt-1")
	}
	if err := m.Stop(ctx, "fsmt-1"); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", a1.String(), time.Second); err == nil {
		c.Close()
		t.Fatal("stopped mount target still accepts")
	}
}

// TestTargetsTLS: a mount target offers TLS with a certificate for its
// address from the region's CA; RequireTLS (the file system policy)
// refuses plain-text MOUNT, also for libnfs.
func TestTargetsTLS(t *testing.T) {
	ctx := context.Background()
	fs := targetFS(t, disk.NewMem())
	ca, err := tlsca.Open(t.TempDir(), "test NFS CA")
	if err != nil {
		t.Fatal(err)
	}
	m := NewTargets(TargetsOptions{CA: ca, Region: "us-east-1"})
	defer m.Shutdown(ctx)
	a := freeAddrOn(t, "127.0.0.1")
	mt := control.MountTargetSpec{ID: "fsmt-1", FileSystemID: "fs-0123456789abcdef0", Addr: a, FS: fs,
		Ingress: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	if err := m.Start(ctx, mt); err != nil {
		t.Fatal(err)
	}
	pool := ca.Pool()
	plainMount := func() error {
		c, err := client.Dial(ctx, a.String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, _, err = c.WithAuth(client.Unix("h", 0, 0)).Mount(ctx, "/")
		return err
	}
	if err := plainMount(); err != nil {
		t.Fatalf("plain-text mount without a policy: %v", err)
	}
	mt.RequireTLS = true
	if err := m.Update(ctx, mt); err != nil {
		t.Fatal(err)
	}
	if err := plainMount(); !errors.Is(err, proto.MountErrAcces) {
		t.Fatalf("plain-text mount with TLS required: %v, want MNT3ERR_ACCES", err)
	}
	{
		nfsLs := testkit.NeedTool(t, "nfs-ls")
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(cctx, nfsLs, targetURL(a, "/")).CombinedOutput(); err == nil {
			t.Fatalf("nfs-ls in plain text with TLS required: %s", out)
		}
	}
	for _, name := range []string{"127.0.0.1", "fs-0123456789abcdef0.efs.us-east-1.amazonaws.com"} {
		c, err := client.DialTLS(ctx, a.String(), &tls.Config{RootCAs: pool, ServerName: name})
		if err != nil {
			t.Fatalf("TLS as %s: %v", name, err)
		}
		_, _, err = c.WithAuth(client.Unix("h", 0, 0)).Mount(ctx, "/")
		c.Close()
		if err != nil {
			t.Fatalf("TLS mount as %s: %v", name, err)
		}
	}
}
