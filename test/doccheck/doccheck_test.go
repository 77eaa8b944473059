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
