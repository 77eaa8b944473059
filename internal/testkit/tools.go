package testkit

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// RequireToolsEnv names the environment variable that turns a missing tool
// from a skip into a failure (.ci/run sets it to 1).
const RequireToolsEnv = "REGIONFS_REQUIRE_TOOLS"

// debianPackage names the Debian package of the tools the tests use, for
// the skip message.
var debianPackage = map[string]string{
	"nfs-ls":  "libnfs-utils",
	"nfs-cp":  "libnfs-utils",
	"nfs-cat": "libnfs-utils",
	"python3": "python3",
	// nfs-ganesha's VFS back end is the package nfs-ganesha-vfs.
	"ganesha.nfsd": "nfs-ganesha",
	"rpcbind":      "rpcbind",
}

// NeedTool returns the path of the program name. When it is not on PATH
// the test is skipped with a message, or fails under
// REGIONFS_REQUIRE_TOOLS=1.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		hint := ""
		if pkg, ok := debianPackage[name]; ok {
			hint = " (Debian package " + pkg + ")"
		}
		Missing(t, "%s%s is not on PATH", name, hint)
	}
	return p
}

// NeedPython returns the path of python3 once `import module` works in it
// (boto3, botocore, botocore.auth); otherwise it skips or fails like
// NeedTool.
func NeedPython(t testing.TB, module string) string {
	t.Helper()
	py := NeedTool(t, "python3")
	if out, err := exec.Command(py, "-c", "import "+module).CombinedOutput(); err != nil {
		Missing(t, "python3 cannot import %s: %v %s", module, err, out)
	}
	return py
}

// Missing skips the test with the message format (what it needs that is
// missing), or fails it under REGIONFS_REQUIRE_TOOLS=1.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(RequireToolsEnv) == "1" {
		t.Fatalf("required tool missing ("+RequireToolsEnv+"=1): "+format, args...)
	}
	t.Skipf("skipping: "+format+" (set "+RequireToolsEnv+"=1 to fail instead)", args...)
}

// BotocoreModel decodes into v the newest of botocore's models of service
// (botocore/data/SERVICE/VERSION/service-2.json, gzipped or not), found
// with the python3 py, and returns the model's VERSION.
func BotocoreModel(t testing.TB, py, service string, v any) string {
	t.Helper()
	out, err := exec.Command(py, "-c", "import botocore, os; print(os.path.dirname(botocore.__file__))").Output()
	if err != nil {
		t.Fatalf("botocore's location: %v", err)
	}
	paths, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "data", service, "*", "service-2.json*"))
	if len(paths) == 0 {
		t.Fatalf("botocore has no %s model", service)
	}
	sort.Strings(paths)
	path := paths[len(paths)-1]
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = z
	}
	if err := json.NewDecoder(r).Decode(v); err != nil {
		t.Fatalf("botocore's %s model %s: %v", service, path, err)
	}
	return filepath.Base(filepath.Dir(path))
}
