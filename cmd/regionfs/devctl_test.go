package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func runRoot(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

// TestDevRegionCmd: `dev region status` prints one line per region (raw
// JSON with --json), and without a running dev the commands say where they
// looked and suggest --data-dir.
func TestDevRegionCmd(t *testing.T) {
	dir := t.TempDir()
	nodes := map[string]*node{"us-east-1": {}, "us-west-2": {down: true}}
	ctl, err := startDevControl(context.Background(), dir, nodes, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.close()
	out, err := runRoot(t, "dev", "region", "status", "--data-dir", dir)
	if err != nil || out != "us-east-1: up\nus-west-2: down\n" {
		t.Fatalf("status: %v %q", err, out)
	}
	out, err = runRoot(t, "dev", "region", "status", "--json", "--data-dir", dir)
	if err != nil || strings.TrimSpace(out) != `{"us-east-1":"up","us-west-2":"down"}` {
		t.Fatalf("status --json: %v %q", err, out)
	}
	_, err = runRoot(t, "dev", "region", "stop", "eu-north-1", "--data-dir", dir)
	if err == nil || !strings.Contains(err.Error(), `no region "eu-north-1" in this regionfs dev (regions: us-east-1, us-west-2)`) {
		t.Fatalf("stop of an unknown region: %v", err)
	}

	empty := t.TempDir()
	for _, args := range [][]string{{"stop", "us-east-1"}, {"status"}} {
		_, err = runRoot(t, append([]string{"dev", "region"}, append(args, "--data-dir", empty)...)...)
		if err == nil || !strings.Contains(err.Error(), "no regionfs dev is running on "+empty) ||
			!strings.Contains(err.Error(), "pass it: regionfs dev region … --data-dir DIR") {
			t.Fatalf("%v without a running dev: %v", args, err)
		}
	}
}
