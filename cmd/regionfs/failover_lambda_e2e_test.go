package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestFailoverLambda runs docs/failover-lambda.md's function (extracted
// from the document) with boto3 against two regions whose source region is
// down: it promotes the replica (printing what docs/runbook.md shows), and
// a second run says it already was.
func TestFailoverLambda(t *testing.T) {
	ctx := context.Background()
	py := testkit.NeedPython(t, "boto3")
	doc, err := os.ReadFile("../../docs/failover-lambda.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```python\n")
	code, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/failover-lambda.md has no python block")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "run.py")
	if err := os.WriteFile(script, []byte(code+`
import json, sys
print(json.dumps(handler({"region": sys.argv[1], "file_system_id": sys.argv[2]}, None)))
`), 0o644); err != nil {
		t.Fatal(err)
	}

	p := startOpsPairOn(t, "127.34.0.1", "127.35.0.1")
	src, dst := p.replicated(t, "lambda", "replicated\n")
	testkit.WaitFor(t, "the file replicated", 30*time.Second, func() bool {
		got, err := readFile(p.b, dst, "a.txt")
		return err == nil && got == "replicated\n"
	})
	p.stopA(t) // the source region is down

	run := func() (map[string]any, string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, py, script, "ap-northeast-2", dst)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_PROFILE=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("failover function: %v\n%s", err, ee.Stderr)
			}
			t.Fatal(err)
		}
		var r map[string]any
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		t.Logf("failover function: %s", out)
		return r, string(out)
	}
	r, out := run()
	matchDoc(t, runbook, "TestFailoverLambda", out)
	if r["promoted"] != true || r["former_source"] != src || r["former_source_region"] != "ap-northeast-1" {
		t.Fatalf("first run: %v", r)
	}
	fs, err := p.b.control.region.EngineFS(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Mkdir(ctx, engine.RootCred, engine.RootIno, "after-failover", engine.SetAttr{}); err != nil {
		t.Fatalf("the replica is not writable after the function returned: %v", err)
	}
	if got, err := readFile(p.b, dst, "a.txt"); err != nil || got != "replicated\n" {
		t.Fatalf("promoted file system lost the data: %q %v", got, err)
	}
	if r, _ := run(); r["promoted"] != false {
		t.Fatalf("second run: %v", r)
	}
}
