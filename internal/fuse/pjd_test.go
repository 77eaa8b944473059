package fuse

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Cases found by pjdfstest (github.com/pjd/pjdfstest) through regionfs
// mount that ext4 passes.

// asNobody runs sh -c script as uid/gid 65534 with f as its fd 3: f is a
// directory it reaches as /proc/self/fd/3 without search permission on
// the test's directories above it.
func asNobody(t *testing.T, f *os.File, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// TestNonOwnerWriteClearsSetuid is pjdfstest chmod/12.t: a write (or a
// truncate) of a world-writable setuid file by another user succeeds and
// clears setuid and setgid. The kernel asked the client to clear them
// with a SETATTR of the mode, as the writer, which the server refuses to
// a non-owner: the write failed with EPERM and the bits stayed.
func TestNonOwnerWriteClearsSetuid(t *testing.T) {
	m := newMount(t)
	dir, err := os.Open(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	for _, c := range []struct{ name, script string }{
		{"write", `exec 4>>/proc/self/fd/3/write && printf x >&4 && stat -L -c %a /proc/self/fd/4`},
		{"truncate", "truncate -s 0 /proc/self/fd/3/truncate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, mode := range []os.FileMode{os.ModeSetuid, os.ModeSetgid, os.ModeSetuid | os.ModeSetgid} {
				p := filepath.Join(m.dir, c.name)
				if err := os.WriteFile(p, []byte("data"), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, 0o777|mode); err != nil {
					t.Fatal(err)
				}
				out, err := asNobody(t, dir, c.script)
				if err != nil {
					t.Fatalf("%s of a %v file by uid 65534: %v", c.name, 0o777|mode, err)
				}
				if out != "" && out != "777" {
					// fstat by the writer, before it closes the file.
					t.Errorf("%s of a %v file by uid 65534: the writer sees mode %s, want 777", c.name, 0o777|mode, out)
				}
				st, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if got := st.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid); got != 0o777 {
					t.Errorf("%s of a %v file by uid 65534: mode %v, want %v", c.name, 0o777|mode, got, os.FileMode(0o777))
				}
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestLongNameInKnownDirIsTooLong is pjdfstest chmod/02.t (and its
// siblings for chown, link, rename, …): in a directory whose names the
// client knows (one it just made), a name over NAME_MAX is ENAMETOOLONG,
// not ENOENT.
func TestLongNameInKnownDirIsTooLong(t *testing.T) {
	m := newMount(t)
	dir := filepath.Join(m.dir, "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(dir, strings.Repeat("x", nameMax+1))
	for name, op := range map[string]func() error{
		"chmod": func() error { return os.Chmod(long, 0o644) },
		"stat":  func() error { _, err := os.Lstat(long); return err },
		"chown": func() error { return os.Lchown(long, 1, 1) },
	} {
		if err := op(); !errors.Is(err, syscall.ENAMETOOLONG) {
			t.Errorf("%s of a %d-byte name: %v, want ENAMETOOLONG", name, nameMax+1, err)
		}
	}
}

// TestCreateModeZero is pjdfstest open/26.t: open(O_CREAT) with mode 0000
// makes a file of mode 0000 (go-fuse showed it as 0644) that the opener
// may still write; mkdir with 0000 likewise (shown as 0755).
func TestCreateModeZero(t *testing.T) {
	m := newMount(t)
	for _, flag := range []int{os.O_WRONLY, os.O_RDWR, os.O_RDONLY} {
		p := filepath.Join(m.dir, "f")
		f, err := os.OpenFile(p, os.O_CREATE|flag, 0)
		if err != nil {
			t.Fatal(err)
		}
		if flag != os.O_RDONLY {
			if _, err := f.WriteString("data"); err != nil {
				t.Errorf("write to a new mode-0 file (flags %#x): %v", flag, err)
			}
		}
		if err := f.Close(); err != nil {
			t.Errorf("close of a new mode-0 file (flags %#x): %v", flag, err)
		}
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != 0 {
			t.Errorf("open(O_CREAT|%#x, 0): mode %v, want %v", flag, st.Mode(), os.FileMode(0))
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	d := filepath.Join(m.dir, "d")
	if err := os.Mkdir(d, 0); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(d); err != nil || st.Mode() != os.ModeDir {
		t.Errorf("mkdir(0): %v, %v; want mode %v", st.Mode(), err, os.ModeDir)
	}
}
