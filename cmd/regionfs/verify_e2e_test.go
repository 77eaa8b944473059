package main

import (
	"bytes"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestVerifyCommand: `regionfs verify` in the destination region finds a
// replica healthy; a block file of the replica damaged on disk makes the
// next pass report it (and exit non-zero) and send it again, and a later
// pass matches. What it prints has the shape docs/runbook.md shows.
func TestVerifyCommand(t *testing.T) {
	p := startOpsPairOn(t, "127.34.0.1", "127.35.0.1")
	rng := rand.New(rand.NewPCG(14, 1))
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(rng.IntN(256))
	}
	src, dst := p.replicated(t, "verify", string(data))
	p.waitEnabled(t, dst)
	testkit.WaitFor(t, "the replica to hold the file", 30*time.Second, func() bool {
		got, err := readFile(p.b, dst, "a.txt")
		return err == nil && got == string(data)
	})
	out, err := runRoot(t, "verify", "--region", "ap-northeast-2", dst)
	t.Logf("verify:\n%s", out)
	if err != nil || !strings.Contains(out, "match at seq") {
		t.Fatalf("verify of a healthy replica: %v\n%s", err, out)
	}
	matchDoc(t, runbook, "TestVerifyCommand/match", out)

	id := damageBlockFile(t, p.b.cfg.DataDir)
	out, err = runRoot(t, "verify", "--region", "ap-northeast-1", src)
	t.Logf("verify after damage: %v\n%s", err, out)
	if err == nil || !strings.Contains(out, "MISMATCH") || !strings.Contains(out, "bad block: "+id.String()) {
		t.Fatalf("verify of a damaged replica: %v\n%s", err, out)
	}
	matchDoc(t, runbook, "TestVerifyCommand/mismatch", out+"regionfs: "+err.Error()+"\n")
	testkit.WaitFor(t, "a matching pass after the repair", 30*time.Second, func() bool {
		out, err = runRoot(t, "verify", "--region", "ap-northeast-2", dst)
		return err == nil && strings.Contains(out, "match at seq")
	})
	got, err := readFile(p.b, dst, "a.txt")
	if err != nil || got != string(data) {
		t.Fatalf("replica file after the repair: %v (%d bytes)", err, len(got))
	}
	if out, err := runRoot(t, "verify", "--region", "ap-northeast-2", "fs-0123456789abcdef0"); err == nil || strings.Contains(err.Error(), "not found:") {
		t.Fatalf("verify of an unknown file system: %v\n%s", err, out)
	}
}

// damageBlockFile flips the last byte of one block file under dir.
func damageBlockFile(t *testing.T, dir string) blocks.ID {
	t.Helper()
	var name string
	var id blocks.ID
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name != "" {
			return nil
		}
		if x, err := blocks.ParseID(d.Name()); err == nil && strings.Contains(path, string(filepath.Separator)+"blocks"+string(filepath.Separator)) {
			name, id = path, x
		}
		return nil
	})
	if name == "" {
		t.Fatal("no block file")
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Clone(b)
	b[len(b)-1] ^= 0x55
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return id
}
