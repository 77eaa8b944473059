package efse2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

// TestKill9 kills regionfs serve at two points — with a file system and a
// mount target just acknowledged (still creating), and after a file was
// written over NFS — and checks after each restart that every
// acknowledged change is there, transitions resume, and the mount target
// serves NFS again.
func TestKill9(t *testing.T) {
	testkit.NeedTool(t, "aws")
	nfsCp := testkit.NeedTool(t, "nfs-cp")
	nfsCat := testkit.NeedTool(t, "nfs-cat")
	r := startRegion(t, "sa-east-1", "127.43")
	var fs struct{ FileSystemId string }
	must(t, json.Unmarshal([]byte(r.mustAWS("efs", "create-file-system", "--creation-token", "k9", "--encrypted", "--output", "json")), &fs))
	id := fs.FileSystemId
	r.kill9() // right after the acknowledged create
	state := func() string {
		s, _ := r.aws("efs", "describe-file-systems", "--file-system-id", id, "--query", "FileSystems[0].LifeCycleState", "--output", "text")
		return s
	}
	testkit.WaitFor(t, "available after kill -9", 30*time.Second, func() bool { return state() == "available" })
	subnet := strings.Fields(r.mustAWS("ec2", "describe-subnets", "--query", "Subnets[].SubnetId", "--output", "text"))[0]
	ip := r.mustAWS("efs", "create-mount-target", "--file-system-id", id, "--subnet-id", subnet, "--query", "IpAddress", "--output", "text")
	r.mustAWS("efs", "tag-resource", "--resource-id", id, "--tags", "Key=durable,Value=yes")
	payload := bytes.Repeat([]byte("survives kill -9\n"), 10000)
	src := filepath.Join(t.TempDir(), "f")
	must(t, os.WriteFile(src, payload, 0o644))
	if out, err := exec.Command(nfsCp, src, r.nfsURL(ip, "/durable.txt")).CombinedOutput(); err != nil {
		t.Fatalf("nfs-cp: %v\n%s", err, out)
	}
	r.kill9()
	if tags := r.mustAWS("efs", "list-tags-for-resource", "--resource-id", id, "--query", "Tags[].Key", "--output", "text"); tags != "durable" {
		t.Errorf("tags after kill -9: %q", tags)
	}
	if n := r.mustAWS("efs", "describe-mount-targets", "--file-system-id", id, "--query", "MountTargets[0].IpAddress", "--output", "text"); n != ip {
		t.Errorf("mount target after kill -9: %q", n)
	}
	var got []byte
	testkit.WaitFor(t, "NFS served again after kill -9", 30*time.Second, func() bool {
		var err error
		got, err = exec.Command(nfsCat, r.nfsURL(ip, "/durable.txt")).Output()
		return err == nil
	})
	if !bytes.Equal(got, payload) {
		t.Fatalf("read %d bytes after kill -9, want %d", len(got), len(payload))
	}
}
