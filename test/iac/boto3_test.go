package iac

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regionfs/regionfs/internal/testkit"
)

// TestWithBoto3 runs every KMS, security-group and CloudFormation
// operation (and the CloudFormation waiters) with boto3.
func TestWithBoto3(t *testing.T) {
	py := testkit.NeedPython(t, "boto3")
	e := newEnv(t)
	tpl := filepath.Join(t.TempDir(), "stack.yaml")
	if err := os.WriteFile(tpl, []byte(stackTemplate), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "testdata/boto3_iac.py", subA, tpl)
	cmd.Env = e.cliEnv(t)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || !strings.HasSuffix(strings.TrimSpace(out.String()), "ok") {
		t.Fatalf("boto3: %v\n%s", err, out.String())
	}
}
