package fuse

import (
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// dirents lists a directory with getdents(2) itself (os.ReadDir drops
// "." and ".."): name to inode number, in the order given.
func dirents(t *testing.T, dir string) (names []string, inos map[string]uint64) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	return direntsFD(t, fd)
}

// direntsFD is dirents of an open directory, from where it is.
func direntsFD(t *testing.T, fd int) (names []string, inos map[string]uint64) {
	t.Helper()
	inos = map[string]uint64{}
	buf := make([]byte, 4096)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return names, inos
		}
		for b := buf[:n]; len(b) > 0; {
			// struct linux_dirent64: ino 8, off 8, reclen 2, type 1, name.
			ino := binary.NativeEndian.Uint64(b[0:8])
			reclen := int(b[16]) | int(b[17])<<8
			name := b[19:reclen]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			names = append(names, string(name))
			inos[string(name)] = ino
			b = b[reclen:]
		}
	}
}

// TestReaddirDots: reading a directory through the mount gives "." and
// ".." first, with the inode numbers stat reports for the directory and
// its parent, as a local file system does (Connectathon's basic test6
// failed with "didn't read '.' dir entry").
func TestReaddirDots(t *testing.T) {
	m := newMount(t)
	parent := filepath.Join(m.dir, "d")
	dir := filepath.Join(parent, "sub")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ino := func(p string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	names, inos := dirents(t, dir)
	if len(names) != 5 || names[0] != "." || names[1] != ".." {
		t.Fatalf("entries %q, want . and .. first, then a, b, c", names)
	}
	if inos["."] != ino(dir) || inos[".."] != ino(parent) {
		t.Errorf(". has inode %d, .. %d; stat: %d and %d", inos["."], inos[".."], ino(dir), ino(parent))
	}
	if names, _ := dirents(t, m.dir); len(names) != 3 || names[0] != "." || names[1] != ".." || names[2] != "d" {
		t.Errorf("root entries %q, want ., .., d", names)
	}
}

// TestRewinddirRereads: a directory stream rewound (rewinddir, lseek to 0)
// shows the directory as it is now, as POSIX asks, not the entries read
// at the first getdents (Connectathon's basic test6: "unlinked 'file.0'
// dir entry read pass 1").
func TestRewinddirRereads(t *testing.T) {
	m := newMount(t)
	dir := filepath.Join(m.dir, "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if names, _ := direntsFD(t, fd); !slices.Equal(names, []string{".", "..", "a", "b"}) {
		t.Fatalf("entries %q, want ., .., a, b", names)
	}
	if err := os.Remove(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "c"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	names, _ := direntsFD(t, fd)
	slices.Sort(names)
	if !slices.Equal(names, []string{".", "..", "b", "c"}) {
		t.Errorf("entries after rewinding %q, want ., .., b, c", names)
	}
}
