package efse2e

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/regionfs/regionfs/internal/testkit"
)

// TestBoto3 runs testdata/boto3_flow.py with boto3 against a region: the
// same flow as the CLI test, from Python.
func TestBoto3(t *testing.T) {
	testkit.NeedPython(t, "boto3")
	testkit.NeedTool(t, "nfs-cp")
	testkit.NeedTool(t, "nfs-cat")
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
