// Package docshape compares a program's output with what a document shows
// of it, by shape: what varies from run to run (resource ids, addresses,
// access keys, UUIDs, timestamps, byte sizes, durations, other numbers)
// becomes a placeholder on both sides, and runs of blanks one space. In the
// documented text, "…" stands for any text within a line, and a line that
// is only "…" for any number of lines; blank lines do not count on either
// side.
//
// test/doccheck runs the README's console blocks with it; tests that print
// what a document shows compare it with Block and Compare (a block follows
// a marker line such as <!-- output: TestName -->), so that a document that
// drifts from the program fails CI.
package docshape

import (
	"regexp"
	"strings"
)

// normalisers turn what varies from run to run into placeholders, most
// specific first.
var normalisers = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`arn:aws:[a-z0-9-]+:[a-z0-9-]*:\d*:[A-Za-z0-9/._:+=,@-]+`), "<arn>"},
	{regexp.MustCompile(`\b(fs|fsmt|fsap|subnet|sg|vpc|rc|drill)-[0-9a-f]{8,40}\b`), "<$1>"},
	{regexp.MustCompile(`\bAKIA[A-Z2-7]{16}\b`), "<akid>"},
	{regexp.MustCompile(`\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`), "<uuid>"},
	// Hashes and block ids (keyed per file-system lineage).
	{regexp.MustCompile(`\b[0-9a-f]{32,}\b`), "<hex>"},
	{regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?`), "<time>"},
	{regexp.MustCompile(`\b\d+(\.\d+)? ?(B|KiB|MiB|GiB|TiB|PiB)\b`), "<size>"},
	{regexp.MustCompile(`\b(\d+(\.\d+)?(h|m|s|ms|µs|us|ns))+\b`), "<dur>"},
	{regexp.MustCompile(`\d+(\.\d+)?`), "<n>"},
	{regexp.MustCompile(`[ \t]+`), " "},
}

// Normalise returns the shape of a line.
func Normalise(l string) string {
	for _, n := range normalisers {
		l = n.re.ReplaceAllString(l, n.repl)
	}
	return strings.TrimSpace(l)
}

// LineMatches reports whether an output line has the shape of a documented
// one ("…" in it stands for any text).
func LineMatches(want, got string) bool {
	parts := strings.Split(want, "…")
	for i := range parts {
		parts[i] = Normalise(parts[i])
	}
	g := Normalise(got)
	if len(parts) == 1 {
		return g == parts[0]
	}
	if !strings.HasPrefix(g, parts[0]) {
		return false
	}
	g = g[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(g, p)
		if i < 0 {
			return false
		}
		g = g[i+len(p):]
	}
	return strings.HasSuffix(g, parts[len(parts)-1])
}

// Matches reports whether output lines have the documented shape; a
// documented line that is only "…" stands for any number of lines. Blank
// lines do not count on either side (the aws CLI starts an error with one,
// depending on its version).
func Matches(want, got []string) bool {
	return matchLines(nonBlank(want), nonBlank(got))
}

func nonBlank(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func matchLines(want, got []string) bool {
	if len(want) == 0 {
		return len(got) == 0
	}
	if strings.TrimSpace(want[0]) == "…" {
		for i := 0; i <= len(got); i++ {
			if matchLines(want[1:], got[i:]) {
				return true
			}
		}
		return false
	}
	return len(got) > 0 && LineMatches(want[0], got[0]) && matchLines(want[1:], got[1:])
}
