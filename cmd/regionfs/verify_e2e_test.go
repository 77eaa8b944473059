package main

import (
	"bytes"
	"encoding/binary"
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

// damageBlockFile flips the last byte of one block under dir: of a block
// file, or of a block in a pack (a replica's pushed blocks; the pack's
// trailer, id ‖ offset ‖ length per block and their count 12 bytes from
// the end, says where).
func damageBlockFile(t *testing.T, dir string) blocks.ID {
	t.Helper()
	var name string
	var id blocks.ID
	end := -1
	sep := string(filepath.Separator)
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name != "" || !strings.Contains(path, sep+"blocks"+sep) {
			return nil
		}
		if x, err := blocks.ParseID(d.Name()); err == nil {
			name, id = path, x
			return nil
		}
		if strings.HasSuffix(d.Name(), ".pack") {
			b, err := os.ReadFile(path)
			if err != nil || len(b) < 12 {
				return nil
			}
			const entry = blocks.IDSize + 8 + 4
			n := int(binary.BigEndian.Uint32(b[len(b)-12:]))
			if n == 0 || len(b) < 12+n*entry {
				return nil
			}
			tr := b[len(b)-12-n*entry:]
			x, err := blocks.IDFromBytes(tr[:blocks.IDSize])
			if err != nil {
				return nil
			}
			name, id = path, x
			end = int(binary.BigEndian.Uint64(tr[blocks.IDSize:])) + int(binary.BigEndian.Uint32(tr[blocks.IDSize+8:]))
		}
		return nil
	})
	if name == "" {
		t.Fatal("no block file or pack")
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Clone(b)
	if end < 0 {
		end = len(b)
	}
	b[end-1] ^= 0x55
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return id
}
