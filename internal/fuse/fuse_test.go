package fuse

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
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

// TestKernelReadahead: SetKernelReadahead raises the mount's kernel
// readahead window (read_ahead_kb of its bdi, 128 KiB by default for FUSE)
// to ReadAhead pieces of IOSize, and a sequential read through the larger
// window returns the file intact.
func TestKernelReadahead(t *testing.T) {
	m := newMount(t)
	var st syscall.Stat_t
	if err := syscall.Stat(m.dir, &st); err != nil {
		t.Fatal(err)
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	before, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("the mount's bdi: %v", err)
	}
	if err := m.f.SetKernelReadahead(m.dir); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := strconv.Itoa(m.f.o.IOSize*m.f.o.ReadAhead>>10) + "\n"
	if string(after) != want || string(before) == want {
		t.Fatalf("read_ahead_kb %q before, %q after; want %q after", before, after, want)
	}
	big := make([]byte, 9<<20+17)
	rand.Read(big)
	f := filepath.Join(m.dir, "big")
	if err := os.WriteFile(f, big, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read back %d bytes (equal %v), %v", len(got), bytes.Equal(got, big), err)
	}
}

// TestNoXattrs: extended attributes are not supported (NFSv3 has none):
// getting, setting and removing one fail with EOPNOTSUPP, every time (the
// kernel answers them itself after the first), listing gives none, and a
// file written between them reads back intact.
func TestNoXattrs(t *testing.T) {
	m := newMount(t)
	p := filepath.Join(m.dir, "f")
	if err := os.WriteFile(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	for i := range 2 {
		if _, err := unix.Getxattr(p, "security.capability", buf); err != unix.EOPNOTSUPP {
			t.Fatalf("getxattr #%d: %v, want EOPNOTSUPP", i, err)
		}
		if _, err := unix.Getxattr(p, "user.x", buf); err != unix.EOPNOTSUPP {
			t.Fatalf("getxattr user.x #%d: %v, want EOPNOTSUPP", i, err)
		}
		if err := unix.Setxattr(p, "user.x", []byte("v"), 0); err != unix.EOPNOTSUPP {
			t.Fatalf("setxattr #%d: %v, want EOPNOTSUPP", i, err)
		}
		if err := unix.Removexattr(p, "user.x"); err != unix.EOPNOTSUPP {
			t.Fatalf("removexattr #%d: %v, want EOPNOTSUPP", i, err)
		}
		if sz, err := unix.Listxattr(p, buf); err != nil || sz != 0 {
			t.Fatalf("listxattr #%d: %d %v, want none", i, sz, err)
		}
		if err := os.WriteFile(p, []byte("two"+strconv.Itoa(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(p); err != nil || string(got) != "two"+strconv.Itoa(i) {
			t.Fatalf("read back %q %v", got, err)
		}
	}
}
