package replicatione2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/replication/faultproxy"
	"github.com/regionfs/regionfs/internal/testkit"
)

// awsCLI runs the real aws CLI against r's API and returns its trimmed
// output.
func (r *region) awsCLI(args ...string) (string, error) {
	r.t.Helper()
	home := r.t.TempDir()
	cmd := exec.Command("aws", args...)
	cmd.Env = append(os.Environ(), "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1", "AWS_CONFIG_FILE="+home+"/config",
		"AWS_SHARED_CREDENTIALS_FILE="+home+"/credentials", "AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey,
		"AWS_REGION="+r.name, "AWS_DEFAULT_REGION="+r.name, "AWS_ENDPOINT_URL=http://"+r.net+".0.1:7070")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// status is the aws CLI's status of the first destination of the
// replication configuration fs takes part in, as r describes it.
func status(r *region, fs string) string {
	s, _ := r.awsCLI("efs", "describe-replication-configurations", "--file-system-id", fs, "--query", "Replications[0].Destinations[0].Status", "--output", "text")
	return s
}

// protection is the aws CLI's replication overwrite protection of fs in r.
func protection(r *region, fs string) string {
	s, _ := r.awsCLI("efs", "describe-file-systems", "--file-system-id", fs, "--query", "FileSystems[0].FileSystemProtection.ReplicationOverwriteProtection", "--output", "text")
	return s
}

func (r *region) mustCLI(args ...string) string {
	r.t.Helper()
	out, err := r.awsCLI(args...)
	if err != nil {
		r.t.Fatalf("%s: aws %s: %v\n%s", r.name, strings.Join(args, " "), err, out)
	}
	return out
}

// nfsURL is a libnfs URL of path through the mount target at ip.
func nfsURL(ip, path string) string {
	return testkit.NFSURL(netip.AddrPortFrom(netip.MustParseAddr(ip), 12049), path)
}

// cliTools are the real clients the CLI tests drive (the aws CLI is run
// by name: awsCLI) and the regionfs binary they start.
type cliTools struct{ nfsCp, nfsCat, nfsLs, bin string }

// needCLITools finds the aws CLI and libnfs's tools (a test skips without
// them, or fails under REGIONFS_REQUIRE_TOOLS=1) and builds regionfs.
func needCLITools(t *testing.T) cliTools {
	t.Helper()
	testkit.NeedTool(t, "aws")
	return cliTools{
		nfsCp:  testkit.NeedTool(t, "nfs-cp"),
		nfsCat: testkit.NeedTool(t, "nfs-cat"),
		nfsLs:  testkit.NeedTool(t, "nfs-ls"),
		bin:    testkit.BuildRegionfs(t),
	}
}

// pairWithProxy starts two paired regions, us-east-1 ("a") on the
// loopback range na and us-west-2 ("b") on nb, whose replication link
// from the one named by proxied ("a" or "b") to the other goes through a
// fault proxy, closed once the regions have stopped.
func pairWithProxy(t *testing.T, bin, na, nb, proxied string) (a, b *region, px *faultproxy.Proxy) {
	t.Helper()
	from, to := na, nb
	if proxied == "b" {
		from, to = nb, na
	}
	px, err := faultproxy.New(from+".0.9:0", to+".0.1:7443")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	aPeer, bPeer := nb+".0.1:7443", na+".0.1:7443"
	if proxied == "b" {
		bPeer = px.Addr()
	} else {
		aPeer = px.Addr()
	}
	a = newRegion(t, bin, "us-east-1", na, "a", "us-west-2", aPeer)
	b = newRegion(t, bin, "us-west-2", nb, "b", "us-east-1", bPeer)
	return a, b, px
}

// availableFS creates a file system in r, waits until the aws CLI
// describes it available, and returns it with the address of a mount
// target of it.
func availableFS(t *testing.T, r *region, token string) (fs, ip string) {
	t.Helper()
	fs = createFS(t, r, token)
	testkit.WaitFor(t, "file system "+token+" available", 30*time.Second, func() bool {
		s, _ := r.awsCLI("efs", "describe-file-systems", "--file-system-id", fs, "--query", "FileSystems[0].LifeCycleState", "--output", "text")
		return s == "available"
	})
	return fs, mountTarget(t, r, fs)
}

// TestDeleteDuringInitialSync: with the real aws CLI and libnfs, a
// replication whose initial sync runs for seconds (megabytes through a
// slow proxy) is deleted while ENABLING, from the destination region, with
// the source region up (it stays writable and replicates again to a new
// destination) or stopped (the delete does not hang; the source fences
// itself when it is back). The destination is then an available, empty,
// writable file system with protection ENABLED.
func TestDeleteDuringInitialSync(t *testing.T) {
	tools := needCLITools(t)
	nfsCp, nfsCat, nfsLs := tools.nfsCp, tools.nfsCat, tools.nfsLs
	for i, sourceUp := range []bool{true, false} {
		t.Run(fmt.Sprintf("source-up=%v", sourceUp), func(t *testing.T) {
			// The initial sync's link (A → B) goes through the proxy.
			a, b, px := pairWithProxy(t, tools.bin, fmt.Sprintf("127.%d", 53+2*i), fmt.Sprintf("127.%d", 54+2*i), "a")
			dir := t.TempDir()

			src, sip := availableFS(t, a, "enabling-src")
			rng := rand.New(rand.NewPCG(3, 4))
			data := make([]byte, 1<<20)
			for f := range 8 {
				for j := range data {
					data[j] = byte(rng.Uint32())
				}
				p := filepath.Join(dir, fmt.Sprint("f", f))
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command(nfsCp, p, nfsURL(sip, fmt.Sprintf("/f%d", f))).CombinedOutput(); err != nil {
					t.Fatalf("nfs-cp to the source: %v %s", err, out)
				}
			}
			// About 400 KiB/s from the source to the destination: the 8 MiB
			// take some 20 s to sync.
			px.SetDelay(5 * time.Millisecond)
			px.SetBandwidth(400 << 10)
			px.SetPieceBytes(2 << 10)
			var rc struct {
				Destinations []struct{ FileSystemId, Status string }
			}
			if err := json.Unmarshal([]byte(a.mustCLI("efs", "create-replication-configuration", "--source-file-system-id", src,
				"--destinations", `[{"Region":"us-west-2"}]`, "--output", "json")), &rc); err != nil {
				t.Fatal(err)
			}
			dst := rc.Destinations[0].FileSystemId
			testkit.WaitFor(t, "the destination region to describe the replication", 30*time.Second, func() bool { return status(b, dst) == "ENABLING" })
			if s := status(a, src); s != "ENABLING" {
				t.Fatalf("source region status %q, want ENABLING", s)
			}
			if !sourceUp {
				a.Kill9()
			}
			t0 := time.Now()
			out, err := b.awsCLI("efs", "delete-replication-configuration", "--source-file-system-id", src)
			if err != nil {
				t.Fatalf("delete-replication-configuration during the initial sync: %v %s\n%s", err, out, b.Tail(30))
			}
			t.Logf("delete-replication-configuration while ENABLING took %s", time.Since(t0))
			if out, err := b.awsCLI("efs", "describe-replication-configurations", "--file-system-id", dst); err == nil || !strings.Contains(out, "ReplicationNotFound") {
				t.Fatalf("the destination still describes a replication: %v %s", err, out)
			}
			var fss struct {
				FileSystems []struct {
					LifeCycleState       string
					FileSystemProtection struct{ ReplicationOverwriteProtection string }
				}
			}
			if err := json.Unmarshal([]byte(b.mustCLI("efs", "describe-file-systems", "--file-system-id", dst, "--output", "json")), &fss); err != nil {
				t.Fatal(err)
			}
			if f := fss.FileSystems[0]; f.LifeCycleState != "available" || f.FileSystemProtection.ReplicationOverwriteProtection != "ENABLED" {
				t.Fatalf("destination after the delete: %+v", f)
			}
			// Empty (nothing of the partial copy) and writable over NFS.
			dip := mountTarget(t, b, dst)
			if ls, err := exec.Command(nfsLs, nfsURL(dip, "/")).CombinedOutput(); err != nil || strings.Contains(string(ls), " f") {
				t.Fatalf("nfs-ls of the promoted destination: %v\n%s", err, ls)
			}
			note := filepath.Join(dir, "note")
			if err := os.WriteFile(note, []byte("written after the delete\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(nfsCp, note, nfsURL(dip, "/after-delete.txt")).CombinedOutput(); err != nil {
				t.Fatalf("nfs-cp to the promoted destination: %v %s", err, out)
			}
			if got, err := exec.Command(nfsCat, nfsURL(dip, "/after-delete.txt")).Output(); err != nil || string(got) != "written after the delete\n" {
				t.Fatalf("nfs-cat from the promoted destination: %q %v", got, err)
			}
			px.SetDelay(0)
			px.SetBandwidth(0)
			px.SetPieceBytes(0)
			srcProtection := func() string {
				s, _ := a.awsCLI("efs", "describe-file-systems", "--file-system-id", src, "--query", "FileSystems[0].FileSystemProtection.ReplicationOverwriteProtection", "--output", "text")
				return s
			}
			if !sourceUp {
				// Back: it learns it was left out and fences itself.
				a.start()
				testkit.WaitFor(t, "the old source to learn of the failover", 30*time.Second, func() bool {
					_, err := a.awsCLI("efs", "describe-replication-configurations", "--file-system-id", src)
					return err != nil && srcProtection() == "DISABLED"
				})
				return
			}
			// Told at once: it stays writable and replicates again.
			if s, err := a.awsCLI("efs", "describe-replication-configurations", "--file-system-id", src); err == nil {
				t.Fatalf("the source still describes the replication: %s", s)
			}
			if p := srcProtection(); p != "ENABLED" {
				t.Fatalf("source protection %q after a delete it took part in", p)
			}
			if out, err := exec.Command(nfsCp, note, nfsURL(sip, "/source-writable.txt")).CombinedOutput(); err != nil {
				t.Fatalf("nfs-cp to the source: %v %s", err, out)
			}
			if err := json.Unmarshal([]byte(a.mustCLI("efs", "create-replication-configuration", "--source-file-system-id", src,
				"--destinations", `[{"Region":"us-west-2"}]`, "--output", "json")), &rc); err != nil {
				t.Fatal(err)
			}
			dst2 := rc.Destinations[0].FileSystemId
			if dst2 == dst {
				t.Fatal("the new replication reused the promoted destination")
			}
			testkit.WaitFor(t, "the new replication ENABLED", 60*time.Second, func() bool { return status(a, src) == "ENABLED" })
			dip2 := mountTarget(t, b, dst2)
			got, err := exec.Command(nfsCat, nfsURL(dip2, "/f7")).Output()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("nfs-cat of the new replica: %d bytes, %v", len(got), err)
			}
		})
	}
}
