package replicatione2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

// TestDeleteDuringFailback: with the real aws CLI and libnfs, a failover
// A→B (A's region killed), then a failback B→A into the original file
// system whose resync runs for seconds (megabytes through a slow proxy) is
// deleted in A's region while the resync is under way, with B's region
// stopped (the double failure: the resync's source is gone) or up (a
// coordinated delete). It used to be refused for ever (ConflictException:
// a resync is running). Now the delete succeeds at once, and A's file
// system is back at exactly its own state from before the failback (its
// original files, with their original content, none of B's), writable,
// protection ENABLED; B fences itself when it is back (its changes since
// the fork are its loss), or stays writable after a coordinated delete.
func TestDeleteDuringFailback(t *testing.T) {
	tools := needCLITools(t)
	nfsCp, nfsCat, nfsLs := tools.nfsCp, tools.nfsCat, tools.nfsLs
	for i, sourceUp := range []bool{false, true} {
		t.Run(fmt.Sprintf("source-up=%v", sourceUp), func(t *testing.T) {
			// The failback's link (B → A) goes through the proxy.
			a, b, px := pairWithProxy(t, tools.bin, fmt.Sprintf("127.%d", 57+2*i), fmt.Sprintf("127.%d", 58+2*i), "b")
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(5, 6))
			put := func(ip, name string, size int) []byte {
				t.Helper()
				data := make([]byte, size)
				for j := range data {
					data[j] = byte(rng.Uint32())
				}
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command(nfsCp, p, nfsURL(ip, "/"+name)).CombinedOutput(); err != nil {
					t.Fatalf("nfs-cp %s: %v %s", name, err, out)
				}
				return data
			}
			cat := func(ip, name string) []byte {
				t.Helper()
				got, err := exec.Command(nfsCat, nfsURL(ip, "/"+name)).Output()
				if err != nil {
					t.Fatalf("nfs-cat %s: %v", name, err)
				}
				return got
			}

			// A's file system, replicated to B.
			src, sip := availableFS(t, a, "failback-src")
			orig := map[string][]byte{}
			for f := range 4 {
				name := fmt.Sprintf("f%d", f)
				orig[name] = put(sip, name, 256<<10)
			}
			var rc struct {
				Destinations []struct{ FileSystemId, Status string }
			}
			if err := json.Unmarshal([]byte(a.mustCLI("efs", "create-replication-configuration", "--source-file-system-id", src,
				"--destinations", `[{"Region":"us-west-2"}]`, "--output", "json")), &rc); err != nil {
				t.Fatal(err)
			}
			dst := rc.Destinations[0].FileSystemId
			testkit.WaitFor(t, "the replication ENABLED", 60*time.Second, func() bool { return status(a, src) == "ENABLED" })
			dip := mountTarget(t, b, dst)
			testkit.WaitFor(t, "the replica to hold the source's files", 30*time.Second, func() bool {
				got, err := exec.Command(nfsCat, nfsURL(dip, "/f3")).Output()
				return err == nil && bytes.Equal(got, orig["f3"])
			})

			// Failover: A's region dies, B is promoted and writes on
			// (megabytes).
			a.Kill9()
			b.mustCLI("efs", "delete-replication-configuration", "--source-file-system-id", src)
			for f := range 8 {
				put(dip, fmt.Sprintf("b%d", f), 1<<20)
			}
			// A is back: fenced (protection DISABLED), ready for the
			// failback.
			a.start()
			testkit.WaitFor(t, "the old source to learn of the failover", 30*time.Second, func() bool {
				return protection(a, src) == "DISABLED"
			})

			// The failback B → A runs through a slow link: about
			// 400 KiB/s, so the 8 MiB take some 20 s.
			px.SetDelay(5 * time.Millisecond)
			px.SetBandwidth(400 << 10)
			px.SetPieceBytes(2 << 10)
			b.mustCLI("efs", "create-replication-configuration", "--source-file-system-id", dst,
				"--destinations", fmt.Sprintf(`[{"Region":"us-east-1","FileSystemId":%q}]`, src), "--output", "json")
			testkit.WaitFor(t, "the failback ENABLING in A's region", 30*time.Second, func() bool { return status(a, src) == "ENABLING" })
			time.Sleep(2 * time.Second) // let ranges and blocks arrive: the state is half replaced
			if s := status(a, src); s != "ENABLING" {
				t.Fatalf("the failback is %q already: the test needs it in the middle", s)
			}
			if !sourceUp {
				b.Kill9()
			}
			t0 := time.Now()
			out, err := a.awsCLI("efs", "delete-replication-configuration", "--source-file-system-id", dst)
			if err != nil {
				t.Fatalf("delete-replication-configuration during the failback: %v %s\n%s", err, out, a.Tail(30))
			}
			t.Logf("delete-replication-configuration during the failback took %s", time.Since(t0))
			if out, err := a.awsCLI("efs", "describe-replication-configurations", "--file-system-id", src); err == nil || !strings.Contains(out, "ReplicationNotFound") {
				t.Fatalf("A's region still describes a replication: %v %s", err, out)
			}
			if p := protection(a, src); p != "ENABLED" {
				t.Fatalf("A's protection %q after the delete", p)
			}
			if log, _ := os.ReadFile(a.Log); !bytes.Contains(log, []byte("resync was abandoned")) {
				t.Errorf("A's log does not say that the resync was abandoned:\n%s", a.Tail(30))
			}
			// Exactly A's state from before the failback: its files with
			// their first content, none of B's.
			ls, err := exec.Command(nfsLs, nfsURL(sip, "/")).CombinedOutput()
			if err != nil {
				t.Fatalf("nfs-ls: %v %s", err, ls)
			}
			if strings.Contains(string(ls), " b") {
				t.Fatalf("B's files in A after the abandoned failback:\n%s", ls)
			}
			for name, want := range orig {
				if got := cat(sip, name); !bytes.Equal(got, want) {
					t.Fatalf("%s: %d bytes, not its content from before the failback", name, len(got))
				}
			}
			// Writable.
			note := put(sip, "after-delete.txt", 100)
			if got := cat(sip, "after-delete.txt"); !bytes.Equal(got, note) {
				t.Fatalf("after-delete.txt reads %q", got)
			}
			px.SetDelay(0)
			px.SetBandwidth(0)
			px.SetPieceBytes(0)
			if !sourceUp {
				// B is back: it learns it was left out and fences itself.
				b.start()
				testkit.WaitFor(t, "B to learn of the failover", 30*time.Second, func() bool {
					_, err := b.awsCLI("efs", "describe-replication-configurations", "--file-system-id", dst)
					return err != nil && protection(b, dst) == "DISABLED"
				})
				return
			}
			// Coordinated: B stays writable, without the replication.
			testkit.WaitFor(t, "B to forget the replication", 30*time.Second, func() bool {
				_, err := b.awsCLI("efs", "describe-replication-configurations", "--file-system-id", dst)
				return err != nil
			})
			if p := protection(b, dst); p != "ENABLED" {
				t.Fatalf("B's protection %q after a delete it took part in", p)
			}
			put(dip, "b-writable.txt", 100)
		})
	}
}
