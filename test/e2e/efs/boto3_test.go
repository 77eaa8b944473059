package efse2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBoto3 runs testdata/boto3_flow.py with boto3 against a region: the
// same flow as the CLI test, from Python.
func TestBoto3(t *testing.T) {
	py := needTool(t, "python3")
	needTool(t, "nfs-cp")
	needTool(t, "nfs-cat")
	if err := exec.Command(py, "-c", "import boto3").Run(); err != nil {
		if os.Getenv("REGIONFS_REQUIRE_TOOLS") == "1" {
			t.Fatalf("boto3 is required (REGIONFS_REQUIRE_TOOLS=1): %v", err)
		}
		t.Skipf("boto3 not importable by %s; skipping", py)
	}
	r := startRegion(t, "ap-south-1", "127.42")
	script, err := filepath.Abs("testdata/boto3_flow.py")
	must(t, err)
	out, err := r.shell("E2E_NFS_PORT=" + itoa(r.nfsPort) + " E2E_TMP=" + quote(t.TempDir()) + " exec python3 " + quote(script))
	if err != nil {
		t.Fatalf("boto3 flow: %v\n%s", err, out)
	}
	var res struct {
		FileSystem   string   `json:"file_system"`
		MountTargets []string `json:"mount_targets"`
		Bytes        int      `json:"bytes_over_nfs"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.MountTargets) != 2 || res.Bytes != 26000 {
		t.Fatalf("boto3 flow output %q: %v", out, err)
	}
	t.Logf("boto3: %s", out)
}
