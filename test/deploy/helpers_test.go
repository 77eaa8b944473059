package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/regionfs/regionfs/internal/testkit"
)

// root is the repository's root, seen from this package.
const root = "../.."

// built is the regionfs binary, built once.
var built testkit.SharedBuild

// TestMain makes the binary's directory readable by all: the namespace
// test runs it as another user.
func TestMain(m *testing.M) { built.Main(m, 0o755) }

func binary(t *testing.T) string {
	t.Helper()
	return built.Path(t)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docBlock is a block docs/production.md marks for the test: a file to
// install on a host (path set) or commands a client of that host runs.
type docBlock struct {
	host, path, content string
}

var docMarker = regexp.MustCompile(`^<!-- deploy-test: host=(\w+) (?:file=(\S+)|run) -->$`)

// docBlocks returns the blocks of docs/production.md marked for the test,
// in order.
func docBlocks(t *testing.T) []docBlock {
	t.Helper()
	var blocks []docBlock
	lines := strings.Split(readFile(t, "docs/production.md"), "\n")
	for i := 0; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], "<!-- deploy-test") && !docMarker.MatchString(lines[i]) {
			t.Fatalf("docs/production.md:%d: bad marker %q", i+1, lines[i])
		}
		m := docMarker.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			t.Fatalf("docs/production.md:%d: the marker is not followed by a block", i+1)
		}
		var body []string
		j := i + 2
		for ; j < len(lines) && !strings.HasPrefix(lines[j], "```"); j++ {
			body = append(body, lines[j])
		}
		blocks = append(blocks, docBlock{host: m[1], path: m[2], content: strings.Join(body, "\n") + "\n"})
		i = j
	}
	if len(blocks) == 0 {
		t.Fatal("docs/production.md marks no block for the test")
	}
	return blocks
}

// execStart returns a unit's ExecStart command line, split.
func execStart(t *testing.T, unit string) []string {
	t.Helper()
	for _, l := range strings.Split(readFile(t, unit), "\n") {
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			return strings.Fields(v)
		}
	}
	t.Fatalf("%s has no ExecStart", unit)
	return nil
}
