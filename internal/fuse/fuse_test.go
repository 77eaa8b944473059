package fuse

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

func TestBasicRoundTrip(t *testing.T) {
	m := newMount(t)
	big := make([]byte, 5<<20+123)
	rand.Read(big)
	p := filepath.Join(m.dir, "d", "big.bin")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, big, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, big) {
		t.Fatalf("read back %d bytes, differ", len(got))
	}
	if err := os.Symlink("big.bin", filepath.Join(m.dir, "d", "l")); err != nil {
		t.Fatal(err)
	}
	if s, err := os.Readlink(filepath.Join(m.dir, "d", "l")); err != nil || s != "big.bin" {
		t.Fatalf("readlink %q %v", s, err)
	}
	ents, err := os.ReadDir(filepath.Join(m.dir, "d"))
	if err != nil || len(ents) != 2 {
		t.Fatalf("readdir %v %v", ents, err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Size() != int64(len(big)) {
		t.Fatalf("stat %v %v", st, err)
	}
}
