package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	} {
		if got := lineMatches(tc.want, tc.got); got != tc.ok {
			t.Errorf("lineMatches(%q, %q) = %v", tc.want, tc.got, got)
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
		if got := matches(want, tc.got); got != tc.ok {
			t.Errorf("matches(%q) = %v", tc.got, got)
		}
	}
	if !matches(nil, nil) || matches(nil, []string{"x"}) || !matches(nil, []string{"", " "}) {
		t.Error("empty output")
	}
}

func TestParse(t *testing.T) {
	doc := "intro\n\n" + marker + "\n```console\n$ echo a\na\n$ X=1\n$ echo $X\n1\n```\n\n```console\n$ not run\n```\n" +
		marker + "\n```console\n$ echo b\nb\n```\n"
	steps, err := parse("d.md", doc)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range steps {
		got = append(got, s.cmd+"=>"+strings.Join(s.want, "|"))
	}
	if want := "echo a=>a;X=1=>;echo $X=>1;echo b=>b"; strings.Join(got, ";") != want || steps[0].line != 5 {
		t.Fatalf("steps %q (first at line %d)", got, steps[0].line)
	}
	for _, bad := range []string{marker + "\n```sh\n$ x\n```\n", marker + "\ntext\n", marker + "\n```console\nout\n$ x\n```\n", marker + "\n```console\n$ x\n"} {
		if _, err := parse("bad.md", bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

func TestRetryable(t *testing.T) {
	for cmd, ok := range map[string]bool{
		"aws efs describe-file-systems --query x":                        true,
		"aws efs describe-replication-configurations --region us-west-2": true,
		"AWS_MAX_ATTEMPTS=1 aws efs describe-file-systems":               true,
		"aws ec2 describe-subnets":                                       true,
		"nfs-cat 'nfs://127.1.1.4/a'":                                    true,
		"./regionfs status --all-regions":                                true,
		"./regionfs failover --report $SRC":                              true,
		"aws efs create-file-system --creation-token x":                  false,
		"nfs-cp a.txt 'nfs://x/a'":                                       false,
		"./regionfs failover $FS":                                        false,
		"./regionfs dev region stop us-east-1":                           false,
	} {
		if got := retryable(cmd, 0); got != ok {
			t.Errorf("retryable(%q) = %v", cmd, got)
		}
		if !retryable(cmd, 1) {
			t.Errorf("a failed %q is not retryable", cmd)
		}
	}
}

// TestCheck runs a document through a real bash: variables carry over,
// output without a final newline, a read that waits for a file, and a
// mismatch reported with both sides.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "doc.md")
	os.WriteFile(doc, []byte(marker+"\n```console\n$ N=41; N=$((N+1))\n$ echo \"n is $N\"\nn is 42\n"+
		"$ printf 'no newline'\nno newline\n$ (sleep 0.5; echo later > f) &\n$ cat f\nlater\n$ false\n```\n"), 0o644)
	var log bytes.Buffer
	err := check(context.Background(), &log, dir, 10*time.Second, 2*time.Second, []string{doc})
	if err == nil || !strings.Contains(err.Error(), "doc.md:11") || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("check: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "ok "+doc+":9 cat f") {
		t.Fatalf("log:\n%s", log.String())
	}
	os.WriteFile(doc, []byte(marker+"\n```console\n$ echo 7 apples\n7 pears\n```\n"), 0o644)
	err = check(context.Background(), &log, dir, 10*time.Second, time.Second, []string{doc})
	if err == nil || !strings.Contains(err.Error(), "documented:\n>> 7 pears\ngot:\n>> 7 apples") {
		t.Fatalf("mismatch: %v", err)
	}
}
