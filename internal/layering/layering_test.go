package layering

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/regionfs/regionfs/"

// forbidden lists, for a package prefix, the prefixes it must not import
// (directly or through another package of this module).
var forbidden = map[string][]string{
	"internal/engine":      {"internal/api", "internal/nfs", "internal/control", "internal/replication", "internal/monitor", "internal/fuse", "cmd/"},
	"internal/replication": {"internal/api", "internal/nfs", "internal/fuse", "cmd/"},
	"internal/control":     {"internal/api", "internal/nfs", "internal/fuse", "cmd/"},
	"internal/cfn":         {"internal/api", "internal/nfs", "internal/fuse", "cmd/"},
	"internal/monitor":     {"internal/api", "internal/nfs", "internal/fuse", "cmd/"},
	"internal/nfs":         {"internal/api", "internal/fuse", "cmd/"},
	"internal/api":         {"internal/nfs", "internal/fuse", "cmd/"},
	"internal/config":      {"internal/"},
}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "github.com/regionfs/regionfs/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// violations returns the forbidden imports of p.
func violations(p pkg) []string {
	rel := strings.TrimPrefix(p.ImportPath, module)
	var out []string
	for owner, bans := range forbidden {
		if rel != owner && !strings.HasPrefix(rel, owner+"/") {
			continue
		}
		for _, dep := range p.Deps {
			drel, ok := strings.CutPrefix(dep, module)
			if !ok || drel == rel || strings.HasPrefix(drel, owner+"/") || drel == owner {
				continue
			}
			for _, ban := range bans {
				if strings.HasPrefix(drel, ban) {
					out = append(out, p.ImportPath+" → "+dep)
				}
			}
		}
	}
	return out
}

func TestLayering(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		for _, v := range violations(p) {
			t.Errorf("forbidden dependency: %s", v)
		}
	}
}

// TestLayeringDetects proves the check fails on a forbidden edge.
func TestLayeringDetects(t *testing.T) {
	bad := pkg{ImportPath: module + "internal/engine/kv", Deps: []string{module + "internal/nfs"}}
	if len(violations(bad)) != 1 {
		t.Fatal("an engine package importing nfs was not reported")
	}
	ok := pkg{ImportPath: module + "internal/nfs", Deps: []string{module + "internal/engine"}}
	if len(violations(ok)) != 0 {
		t.Fatal("nfs importing engine was reported")
	}
}
