package docshape

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLineMatches(t *testing.T) {
	for _, tc := range []struct {
		want, got string
		ok        bool
	}{
		{"fs-029bdbb44ae76b5a2\tdemo\tavailable", "fs-0aaaaaaaaaaaaaaaa   demo available", true},
		{"fs-029bdbb44ae76b5a2\tdemo\tavailable", "fs-0aaaaaaaaaaaaaaaa\tdemo\tcreating", false},
		{"fsmt-01019a8867150805b\t127.1.1.4", "fsmt-0ffffffffffffffff\t127.1.1.5", true},
		{"copied 22 bytes", "copied 40 bytes", true},
		{"arn:aws:kms:us-east-1:123456789012:key/75c9eaa4-9a02-40bd-067f-ad8f5b40886c", "arn:aws:kms:us-east-1:123456789012:key/00000000-1111-2222-3333-444444444444", true},
		{"  lag 0.054s  last replicated 2026-12-02 00:41:51.201  pending 0 records, 0 B", "  lag 1.2s  last replicated 2027-01-01 10:00:00.000  pending 3 records, 1.5 KiB", true},
		{"  initial sync  done: 21 B, 2 files in 12ms (1.7 KiB/s) at 2026-12-02 00:41:40.000", "  initial sync  done: 1.0 MiB, 2 files in 1m2s (3.0 MiB/s) at 2026-12-02 00:41:40.000", true},
		{"  initial sync  done: 21 B, 2 files", "  resync by journal  done: 21 B, 2 files", false},
		{"export AWS_SECRET_ACCESS_KEY=…", "export AWS_SECRET_ACCESS_KEY=abc/def+ghi", true},
		{"regionfs: config bad.yaml: … region", "regionfs: config bad.yaml: anything at all here region", true},
		{"a … c … e", "a b c d e", true},
		{"a … c … e", "a b d e", false},
		{"us-east-1: down", "us-east-1: up", false},
		{"rc-bafc5a2e19fd2e49  source  ENABLED  link up", "rc-0000000000000001  source  ENABLED  link up", true},
		{"drill drill-ea155dfdc426773c4 of fs-0fe477f2cc40618ae: started", "drill drill-020e1ee97a18b76dc of fs-0d2a7e78d9995c7f7: started", true},
	} {
		if got := LineMatches(tc.want, tc.got); got != tc.ok {
			t.Errorf("LineMatches(%q, %q) = %v", tc.want, tc.got, got)
		}
	}
}

func TestMatches(t *testing.T) {
	want := []string{"head", "…", "tail 1"}
	for _, tc := range []struct {
		got []string
		ok  bool
	}{
		{[]string{"head", "tail 2"}, true},
		{[]string{"head", "x", "y", "tail 3"}, true},
		{[]string{"head", "x"}, false},
		{[]string{"tail 3"}, false},
		{[]string{"", "head", "", "tail 4", ""}, true}, // blank lines do not count
		{[]string{"", "head", "", "x"}, false},
	} {
		if got := Matches(want, tc.got); got != tc.ok {
			t.Errorf("Matches(%q) = %v", tc.got, got)
		}
	}
	if !Matches(nil, nil) || Matches(nil, []string{"x"}) || !Matches(nil, []string{"", " "}) {
		t.Error("empty output")
	}
}

func TestBlock(t *testing.T) {
	doc := "# t\n\n<!-- output: TestX -->\n```\nline 1\n\nline 2\n```\n\n" +
		"- item\n\n  <!-- output: TestX/indented -->\n  ```\n  a 1\n    b\n  ```\n"
	got, line, err := Block(doc, "TestX")
	if err != nil || strings.Join(got, "|") != "line 1||line 2" || line != 3 {
		t.Fatalf("Block = %q, %d, %v", got, line, err)
	}
	got, _, err = Block(doc, "TestX/indented")
	if err != nil || strings.Join(got, "|") != "a 1|  b" {
		t.Fatalf("indented Block = %q, %v", got, err)
	}
	for name, bad := range map[string]string{
		"missing":  "text\n",
		"twice":    "<!-- output: TestX -->\n```\na\n```\n<!-- output: TestX -->\n```\nb\n```\n",
		"no block": "<!-- output: TestX -->\ntext\n",
		"unclosed": "<!-- output: TestX -->\n```\na\n",
	} {
		if _, _, err := Block(bad, "TestX"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestCompare(t *testing.T) {
	f := filepath.Join(t.TempDir(), "d.md")
	os.WriteFile(f, []byte("<!-- output: TestY -->\n```\nfs-0123456789abcdef0 at 127.1.1.4: 3 files\n…\ndone in 12ms\n```\n"), 0o644)
	if err := Compare(f, "TestY", "fs-0aaaaaaaaaaaaaaaa at 127.1.1.9: 40 files\nx\ny\ndone in 1.2s\n"); err != nil {
		t.Fatal(err)
	}
	err := Compare(f, "TestY", "fs-0aaaaaaaaaaaaaaaa at 127.1.1.9: 40 dirs\ndone in 1.2s\n")
	if err == nil || !strings.Contains(err.Error(), "d.md:1") || !strings.Contains(err.Error(), ">> fs-0aaaaaaaaaaaaaaaa at 127.1.1.9: 40 dirs") {
		t.Fatalf("mismatch: %v", err)
	}
	if err := Compare(f, "TestZ", "x"); err == nil {
		t.Fatal("no error for a missing marker")
	}
}

func TestDiff(t *testing.T) {
	for _, tc := range []struct {
		want, got []string
		diff      string
	}{
		{[]string{"a 1", "b 2"}, []string{"a 3", "c 4"}, "documented:\n   a 1\n>> b 2\ngot:\n   a 3\n>> c 4\n"},
		// After a "…" line the output line in its place is not known.
		{[]string{"a", "…", "d", "e"}, []string{"a", "b", "c", "d", "x"}, "documented:\n   a\n   …\n   d\n>> e\ngot:\n   a\n   b\n   c\n   d\n   x\n"},
		// Blank lines do not count.
		{[]string{"a", "", "b"}, []string{"", "a", "c"}, "documented:\n   a\n   \n>> b\ngot:\n   \n   a\n>> c\n"},
		// More output than documented.
		{[]string{"a"}, []string{"a", "b"}, "documented:\n   a\ngot:\n   a\n>> b\n"},
		{[]string{"a"}, nil, "documented:\n>> a\ngot:\n   (nothing)\n"},
	} {
		if d := Diff(tc.want, tc.got); d != tc.diff {
			t.Errorf("Diff(%q, %q) =\n%s\nwant\n%s", tc.want, tc.got, d, tc.diff)
		}
	}
}
