package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestPromotionGuardCommands: `regionfs replication policy` sets the
// guard in the destination region, status shows it, and with the source
// region down `regionfs failover` refuses the stale replica (recovery
// point and loss in the message, the replica still read-only) until
// --force. What the commands print has the shape docs/runbook.md shows.
func TestPromotionGuardCommands(t *testing.T) {
	ctx := context.Background()
	p := startOpsPairOn(t, "127.32.0.1", "127.33.0.1")
	_, dst := p.replicated(t, "guard", "before\n")
	p.waitEnabled(t, dst)

	if out, err := runRoot(t, "replication", "policy", "--region", "ap-northeast-2", dst); err == nil {
		t.Fatalf("policy without --max-lag:\n%s", out)
	}
	out, err := runRoot(t, "replication", "policy", "--region", "ap-northeast-2", "--max-lag", "500ms", dst)
	t.Logf("replication policy:\n%s", out)
	if err != nil || !strings.Contains(out, "refuses to promote a replica more than 500ms behind") {
		t.Fatalf("replication policy: %v\n%s", err, out)
	}
	matchDoc(t, runbook, "TestPromotionGuardCommands/policy", out)
	out, err = runRoot(t, "status", "--region", "ap-northeast-2")
	if err != nil || !strings.Contains(out, "promotion guard: failover refuses a replica more than 500ms behind") {
		t.Fatalf("status lacks the guard: %v\n%s", err, out)
	}

	p.stopA(t)
	time.Sleep(time.Second) // the replica ages past the 500 ms guard
	out, err = runRoot(t, "failover", "--region", "ap-northeast-2", dst)
	t.Logf("failover of a stale replica: %v\n%s", err, out)
	if err == nil || !strings.Contains(err.Error(), "promotion policy") || !strings.Contains(err.Error(), "recovery point is seq") {
		t.Fatalf("failover beyond the guard: %v\n%s", err, out)
	}
	// What the user sees: the command prints nothing, main the error.
	matchDoc(t, runbook, "TestPromotionGuardCommands/refused", out+"regionfs: "+err.Error()+"\n")
	for _, bad := range []string{"conflict:", "bad request:", "replication configuration not found:"} {
		if strings.Contains(err.Error(), bad) {
			t.Errorf("internal prefix %q in %v", bad, err)
		}
	}
	fs, err := p.b.control.region.EngineFS(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Mkdir(ctx, engine.RootCred, engine.RootIno, "probe", engine.SetAttr{}); err == nil {
		t.Fatal("the replica became writable after a refused failover")
	}
	out, err = runRoot(t, "failover", "--region", "ap-northeast-2", "--force", dst)
	t.Logf("failover --force:\n%s", out)
	if err != nil || !strings.Contains(out, "failover of "+dst+" done") {
		t.Fatalf("failover --force: %v\n%s", err, out)
	}
	matchDoc(t, runbook, "TestPromotionGuardCommands/force", out)
	testkit.WaitFor(t, "the replica writable", 10*time.Second, func() bool {
		fs, err := p.b.control.region.EngineFS(dst)
		if err != nil {
			return false
		}
		_, err = fs.Mkdir(ctx, engine.RootCred, engine.RootIno, "probe2", engine.SetAttr{})
		return err == nil
	})
}
