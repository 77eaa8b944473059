package layering

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the lists of layers in doc.go and docs/architecture.md")

type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	statSources(t)
	cmd := exec.Command("go", "list", "-json", module+"...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
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

// statSources looks at every Go file of the module, so that go test's
// cache (which tracks the files a test opens and stats) reruns this test
// when one changes; go list, a child process, is not tracked.
func statSources(t *testing.T) {
	t.Helper()
	err := filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != "../.." {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") {
			_, err = os.Stat(p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// violations returns the imports of p that go against the layers.
func violations(p pkg) []string {
	rel := strings.TrimPrefix(p.ImportPath, module)
	r := rankOf(rel)
	if r < 0 {
		return []string{rel + " is in no layer: place it in layers (internal/layering/layers.go)"}
	}
	var out []string
	check := func(imports []string, test bool) {
		for _, imp := range imports {
			dep, ok := strings.CutPrefix(imp, module)
			if !ok || dep == rel {
				continue
			}
			if _, ok := exceptions[rel+" → "+dep]; ok {
				continue
			}
			d := rankOf(dep)
			switch {
			case d < 0:
				out = append(out, fmt.Sprintf("%s imports %s, which is in no layer", rel, dep))
			case d < r:
			case test && helper(dep) && (d <= r || strings.HasPrefix(dep, rel+"/")):
			default:
				kind := "imports"
				if test {
					kind = "tests import"
				}
				out = append(out, fmt.Sprintf("%s (%s) %s %s (%s)", rel, layers[r].name, kind, dep, layers[d].name))
			}
		}
	}
	check(p.Imports, false)
	check(p.TestImports, true)
	check(p.XTestImports, true)
	return out
}

// helper reports whether a package exists for tests: testkit, and the
// conformance suites and fakes named after what they test (kvtest,
// blockstest, controltest).
func helper(pkg string) bool {
	return pkg == "internal/testkit" || strings.HasSuffix(path.Base(pkg), "test")
}

func TestLayering(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		for _, v := range violations(p) {
			t.Errorf("layering: %s", v)
		}
	}
	for _, v := range unmatched(pkgs) {
		t.Errorf("layering: %s names no package: remove it from layers (internal/layering/layers.go)", v)
	}
}

// unmatched returns the table's patterns that place no package of the
// module, so that the table names only what exists.
func unmatched(pkgs []pkg) []string {
	var out []string
	for _, l := range layers {
		for _, pat := range l.packages {
			base, tree := strings.CutSuffix(pat, "/...")
			found := false
			for _, p := range pkgs {
				rel := strings.TrimPrefix(p.ImportPath, module)
				if rel == base || tree && strings.HasPrefix(rel, base+"/") {
					found = true
					break
				}
			}
			if !found {
				out = append(out, pat)
			}
		}
	}
	return out
}

// TestLayeringDetects proves the check fails on each kind of bad edge.
func TestLayeringDetects(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    pkg
		bad  int
	}{
		{"engine imports nfs", pkg{ImportPath: module + "internal/engine/kv", Imports: []string{module + "internal/nfs"}}, 1},
		{"replication imports control", pkg{ImportPath: module + "internal/replication", Imports: []string{module + "internal/control"}}, 1},
		{"control imports replication", pkg{ImportPath: module + "internal/control", Imports: []string{module + "internal/replication"}}, 1},
		{"replconf imports control and replication", pkg{ImportPath: module + "internal/control/replconf", Imports: []string{module + "internal/control", module + "internal/replication"}}, 0},
		{"efsrepl imports replconf", pkg{ImportPath: module + "internal/api/efsrepl", Imports: []string{module + "internal/control/replconf", module + "internal/control"}}, 0},
		{"engine test imports replication", pkg{ImportPath: module + "internal/engine", XTestImports: []string{module + "internal/replication"}}, 1},
		{"same layer", pkg{ImportPath: module + "internal/api/efs", Imports: []string{module + "internal/nfs"}}, 1},
		{"unplaced package", pkg{ImportPath: module + "internal/newthing"}, 1},
		{"unplaced import", pkg{ImportPath: module + "internal/nfs", Imports: []string{module + "internal/newthing"}}, 1},
		{"nfs imports engine", pkg{ImportPath: module + "internal/nfs", Imports: []string{module + "internal/engine"}}, 0},
		{"a new service imports control", pkg{ImportPath: module + "internal/api/cloudwatch", Imports: []string{module + "internal/control"}}, 0},
		{"a new kv backend runs kvtest", pkg{ImportPath: module + "internal/engine/kv/pgkv", Imports: []string{module + "internal/engine/kv"},
			XTestImports: []string{module + "internal/engine/kv/kvtest", module + "internal/testkit"}}, 0},
		{"kv's tests run kvtest", pkg{ImportPath: module + "internal/engine/kv", XTestImports: []string{module + "internal/engine/kv/kvtest"}}, 0},
		{"a service's tests use the api server", pkg{ImportPath: module + "internal/api/efs", XTestImports: []string{module + "internal/api/region", module + "internal/control/controltest"}}, 0},
		{"control's tests use controltest", pkg{ImportPath: module + "internal/control", XTestImports: []string{module + "internal/control/controltest"}}, 0},
		{"engine's tests use controltest", pkg{ImportPath: module + "internal/engine", XTestImports: []string{module + "internal/control/controltest"}}, 1},
	} {
		if got := violations(tc.p); len(got) != tc.bad {
			t.Errorf("%s: %d violations %q, want %d", tc.name, len(got), got, tc.bad)
		}
	}
}

// TestDocListsLayers keeps the package doc's list of layers equal to the
// table (go test ./internal/layering -update rewrites it).
func TestDocListsLayers(t *testing.T) {
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "// # Layers\n", "package layering\n"
	i, j := bytes.Index(b, []byte(begin)), bytes.LastIndex(b, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("doc.go has no %q section before %q", begin, end)
	}
	want := append(append(append([]byte{}, b[:i]...), docLayers()...), b[j:]...)
	if bytes.Equal(b, want) {
		return
	}
	if *update {
		if err := os.WriteFile("doc.go", want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("doc.go's layers differ from the table; run go test ./internal/layering -update\n%s", want)
}

func docLayers() []byte {
	var b bytes.Buffer
	b.WriteString("// # Layers\n//\n// Lowest first; a package imports only packages of layers earlier in\n// this list.\n//\n")
	for i, l := range layers {
		fmt.Fprintf(&b, "//\t%2d %s: %s\n", i, l.name, l.job)
		line := "//\t     "
		for j, p := range l.packages {
			if j > 0 && len(line)+len(p) > 78 {
				b.WriteString(strings.TrimRight(line, " ") + "\n")
				line = "//\t     "
			}
			line += p + " "
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	b.WriteString("//\n// # Exceptions\n//\n")
	for k, v := range exceptions {
		fmt.Fprintf(&b, "//   - %s: %s\n", k, v)
	}
	return b.Bytes()
}

// TestArchitectureDocListsLayers keeps the layer table of
// docs/architecture.md equal to the table (go test ./internal/layering
// -update rewrites it).
func TestArchitectureDocListsLayers(t *testing.T) {
	const file = "../../docs/architecture.md"
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- layers: generated by go test ./internal/layering -update -->\n", "<!-- /layers -->\n"
	i, j := bytes.Index(b, []byte(begin)), bytes.Index(b, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("%s has no %q … %q section", file, begin, end)
	}
	i += len(begin)
	want := append(append(append([]byte{}, b[:i]...), markdownLayers()...), b[j:]...)
	if bytes.Equal(b, want) {
		return
	}
	if *update {
		if err := os.WriteFile(file, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s's layers differ from the table; run go test ./internal/layering -update\n%s", file, markdownLayers())
}

func markdownLayers() []byte {
	var b bytes.Buffer
	b.WriteString("| rank | layer | job | packages |\n| ---: | --- | --- | --- |\n")
	for i, l := range layers {
		ps := make([]string, len(l.packages))
		for j, p := range l.packages {
			ps[j] = "`" + p + "`"
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s |\n", i, l.name, l.job, strings.Join(ps, " "))
	}
	return b.Bytes()
}

// TestUnmatchedDetects proves that a pattern naming no package is found.
func TestUnmatchedDetects(t *testing.T) {
	got := unmatched([]pkg{{ImportPath: module + "internal/engine"}, {ImportPath: module + "internal/api/efs"}})
	has := func(p string) bool { return slices.Contains(got, p) }
	if has("internal/engine") || has("internal/api/...") || !has("internal/nfs") || !has("cmd/...") {
		t.Fatalf("unmatched: %v", got)
	}
}
