package disk_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/regionfs/regionfs/internal/engine/disk"
)

func contract(t *testing.T, open func(t *testing.T) disk.FS) {
	t.Run("CreateWriteRead", func(t *testing.T) {
		d := open(t)
		f, err := d.Create("a")
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("hello "))
		f.Write([]byte("world"))
		if n, _ := f.Size(); n != 11 {
			t.Fatalf("size %d", n)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if _, err := d.Create("a"); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("exclusive create: %v", err)
		}
		r, err := d.Open("a")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		b := make([]byte, 5)
		if n, err := r.ReadAt(b, 6); n != 5 || string(b) != "world" || (err != nil && err != io.EOF) {
			t.Fatalf("read %q %v", b, err)
		}
		if _, err := r.ReadAt(b, 100); err != io.EOF {
			t.Fatalf("read past end: %v", err)
		}
	})
	t.Run("DirsRenameRemove", func(t *testing.T) {
		d := open(t)
		if err := d.MkdirAll("x/y/z"); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"x/y/b", "x/y/a"} {
			f, err := d.Create(n)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte(n))
			f.Close()
		}
		ents, err := d.ReadDir("x/y")
		if err != nil || len(ents) != 3 || ents[0].Name() != "a" || ents[1].Name() != "b" || !ents[2].IsDir() {
			t.Fatalf("readdir %v %v", ents, err)
		}
		if err := d.Rename("x/y/a", "x/y/b"); err != nil {
			t.Fatal(err)
		}
		st, err := d.Stat("x/y/b")
		if err != nil || st.Size() != 5 {
			t.Fatalf("renamed file: %v %v", st, err)
		}
		if _, err := d.Stat("x/y/a"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("old name: %v", err)
		}
		if err := d.Remove("x/y"); err == nil {
			t.Fatal("removed a non-empty directory")
		}
		if err := d.Remove("x/y/b"); err != nil {
			t.Fatal(err)
		}
		if err := d.Remove("x/y/b"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("remove missing: %v", err)
		}
		if err := d.SyncDir("x/y"); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Open("nope"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("open missing: %v", err)
		}
		if _, err := d.Usage("."); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("BadNames", func(t *testing.T) {
		d := open(t)
		for _, n := range []string{"/etc/passwd", "../x", "a/../../b", ""} {
			if _, err := d.Create(n); err == nil {
				t.Errorf("created %q", n)
			}
			if _, err := d.Open(n); err == nil {
				t.Errorf("opened %q", n)
			}
		}
	})
}

func TestOS(t *testing.T) {
	contract(t, func(t *testing.T) disk.FS {
		d, err := disk.NewOS(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

func TestMem(t *testing.T) { contract(t, func(*testing.T) disk.FS { return disk.NewMem() }) }

func TestFaultyPassesThrough(t *testing.T) {
	contract(t, func(*testing.T) disk.FS { return disk.NewFaulty(disk.NewMem()) })
}

func exists(d disk.FS, name string) bool { _, err := d.Stat(name); return err == nil }

func content(t *testing.T, d disk.FS, name string) string {
	t.Helper()
	f, err := d.Open(name)
	if err != nil {
		return "<missing>"
	}
	defer f.Close()
	n, _ := f.Size()
	b := make([]byte, n)
	f.ReadAt(b, 0)
	return string(b)
}

func TestMemCrash(t *testing.T) {
	m := disk.NewMem()
	m.MkdirAll("d")
	write := func(name, data string, sync bool) {
		f, err := m.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(data))
		if sync {
			f.Sync()
		}
		f.Close()
	}
	// A new directory is not durable until its parent is synced.
	if exists(m.CrashClone(), "d") {
		t.Fatal("unsynced mkdir survived")
	}
	m.SyncDir(".")
	write("d/synced-unnamed", "x", true) // data synced, name not
	if c := m.CrashClone(); !exists(c, "d") || exists(c, "d/synced-unnamed") {
		t.Fatal("file name durable without a directory sync")
	}
	m.SyncDir("d")
	write("d/unsynced-data", "lost", false)
	m.SyncDir("d")
	c := m.CrashClone()
	if content(t, c, "d/synced-unnamed") != "x" {
		t.Fatal("synced file lost")
	}
	if got := content(t, c, "d/unsynced-data"); got != "" {
		t.Fatalf("unsynced data survived: %q", got)
	}
	// Rename: durable only with a directory sync; atomic.
	write("d/tmp", "new", true)
	m.Rename("d/tmp", "d/synced-unnamed")
	c = m.CrashClone()
	if content(t, c, "d/synced-unnamed") != "x" || exists(c, "d/tmp") {
		t.Fatal("unsynced rename visible after crash")
	}
	m.SyncDir("d")
	c = m.CrashClone()
	if content(t, c, "d/synced-unnamed") != "new" || exists(c, "d/tmp") {
		t.Fatal("synced rename lost")
	}
	// Remove: undone by a crash unless the directory was synced.
	m.Remove("d/synced-unnamed")
	if !exists(m.CrashClone(), "d/synced-unnamed") {
		t.Fatal("unsynced remove durable")
	}
	// Crash: everything fails afterwards, open files too.
	f, _ := m.Open("d/unsynced-data")
	m.Crash()
	if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, disk.ErrCrashed) {
		t.Fatalf("read after crash: %v", err)
	}
	if _, err := m.Create("z"); !errors.Is(err, disk.ErrCrashed) {
		t.Fatalf("create after crash: %v", err)
	}
}

func TestMemOpenFileSurvivesRemove(t *testing.T) {
	m := disk.NewMem()
	f, _ := m.Create("a")
	f.Write([]byte("data"))
	f.Close()
	r, _ := m.Open("a")
	m.Remove("a")
	b := make([]byte, 4)
	if _, err := r.ReadAt(b, 0); err != nil || string(b) != "data" {
		t.Fatalf("read of removed open file: %q %v", b, err)
	}
}

func TestFaulty(t *testing.T) {
	f := disk.NewFaulty(disk.NewMem())
	f.Inject(disk.Fault{Op: disk.OpWrite, Nth: 2, Err: syscall.ENOSPC})
	file, _ := f.Create("a")
	if _, err := file.Write([]byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := file.Write([]byte("2")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("second write: %v", err)
	}
	if _, err := file.Write([]byte("3")); err != nil {
		t.Fatalf("third write (not sticky): %v", err)
	}
	if n, _ := file.Size(); n != 2 {
		t.Fatalf("failed write wrote something: size %d", n)
	}
	f.Inject(disk.Fault{Op: disk.OpSync, Nth: 1, Err: syscall.EIO, Sticky: true})
	for range 3 {
		if err := file.Sync(); !errors.Is(err, syscall.EIO) {
			t.Fatalf("sticky sync fault: %v", err)
		}
	}
	f.Clear()
	if err := file.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Inject(disk.Fault{Op: disk.OpRename, Nth: 1, Err: syscall.EIO})
	if err := f.Rename("a", "b"); !errors.Is(err, syscall.EIO) {
		t.Fatal(err)
	}
	f.Inject(disk.Fault{Op: disk.OpSyncDir, Nth: 1, Err: syscall.EIO})
	if err := f.SyncDir("."); !errors.Is(err, syscall.EIO) {
		t.Fatal(err)
	}
	f.Inject(disk.Fault{Op: disk.OpCreate, Nth: 1, Err: syscall.ENOSPC})
	if _, err := f.Create("c"); !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	if f.Count(disk.OpWrite) != 3 || f.Count(disk.OpSync) != 4 {
		t.Fatalf("counts: %d writes, %d syncs", f.Count(disk.OpWrite), f.Count(disk.OpSync))
	}
}

// TestOSReadWhole: ReadWhole reads a file whole into the caller's buffer
// when it fits (the block store's read path), into a new one when not,
// and fails as Open does on a missing file or a bad name.
func TestOSReadWhole(t *testing.T) {
	d, err := disk.NewOS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		t.Helper()
		f, err := d.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	data := make([]byte, 100<<10)
	for i := range data {
		data[i] = byte(i * 13)
	}
	write("f", data)
	write("empty", nil)
	buf := make([]byte, 10, 128<<10)
	got, inBuf, err := d.ReadWhole("f", buf)
	if err != nil || !inBuf || !bytes.Equal(got, data) || &got[0] != &buf[:1][0] {
		t.Fatalf("fits: %d bytes, in buf %v, %v", len(got), inBuf, err)
	}
	got, inBuf, err = d.ReadWhole("f", make([]byte, 0, 4096))
	if err != nil || inBuf || !bytes.Equal(got, data) {
		t.Fatalf("larger than the buffer: %d bytes, in buf %v, %v", len(got), inBuf, err)
	}
	if got, inBuf, err := d.ReadWhole("empty", buf); err != nil || !inBuf || len(got) != 0 {
		t.Fatalf("empty: %d bytes, in buf %v, %v", len(got), inBuf, err)
	}
	if _, _, err := d.ReadWhole("nope", buf); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	if _, _, err := d.ReadWhole("../x", buf); err == nil {
		t.Fatal("read a name with ..")
	}
	// The path, its C string and the deferred close: 3 objects. Through
	// Open, Size, ReadAt and Close it is 6 (os.File and its poller state)
	// and one more system call (an epoll_ctl, which the kernel refuses for
	// a regular file).
	if n := testing.AllocsPerRun(20, func() { d.ReadWhole("f", buf) }); n > 3 {
		t.Fatalf("ReadWhole allocates %.0f objects, want at most 3", n)
	}
}

// TestOSReadWholeUncached is ReadWholeRaw's count of reads made through
// the runtime (not timed, issue 16): a file just written and synced is in
// the kernel's caches and is read with raw system calls only (1 raw, 0
// uncached); once its pages are dropped from the page cache, the read
// goes through the runtime's pread (1 uncached) and still returns the
// file. It fails when ReadWholeRaw reads through the runtime (1 uncached
// for the cached file, tried). ReadWhole counts neither.
func TestOSReadWholeUncached(t *testing.T) {
	d, err := disk.NewOS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	f, err := d.Create("f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 2<<20)
	got, _, err := d.ReadWhole("f", buf)
	if err != nil || !bytes.Equal(got, data) || d.Raw() != 0 || d.Uncached() != 0 {
		t.Fatalf("through the runtime: %d bytes, %v, %d raw, %d uncached", len(got), err, d.Raw(), d.Uncached())
	}
	got, _, err = d.ReadWholeRaw("f", buf)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("cached: %d bytes, %v", len(got), err)
	}
	if n := d.Uncached(); n != 0 || d.Raw() != 1 {
		t.Fatalf("a file in the page cache: %d raw, %d uncached reads, want 1 and 0", d.Raw(), n)
	}
	dc, ok := f.(interface{ DropCache() error })
	if !ok {
		t.Fatal("an OS file cannot drop its pages")
	}
	if err := dc.DropCache(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	clear(buf[:cap(buf)])
	got, _, err = d.ReadWholeRaw("f", buf)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("dropped: %d bytes, %v", len(got), err)
	}
	if n := d.Uncached(); n != 1 || d.Raw() != 1 {
		t.Fatalf("a file out of the page cache: %d uncached reads, want 1", n)
	}
}

// TestOSReadWholeNoAtime: ReadWhole and ReadWholeRaw leave a file's access time alone
// (O_NOATIME; not timed, issue 16), where an ordinary read of a file
// whose access time is older than its modification writes the inode
// (relatime), which the control file shows. It fails without O_NOATIME
// (tried).
func TestOSReadWholeNoAtime(t *testing.T) {
	root := t.TempDir()
	d, err := disk.NewOS(root)
	if err != nil {
		t.Fatal(err)
	}
	old, now := time.Now().Add(-time.Hour).Truncate(time.Second), time.Now().Truncate(time.Second)
	atime := func(name string) time.Time {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(root, name), &st); err != nil {
			t.Fatal(err)
		}
		return time.Unix(st.Atim.Unix())
	}
	for _, name := range []string{"block", "control"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte("data"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(root, name), old, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.ReadFile(filepath.Join(root, "control")); err != nil {
		t.Fatal(err)
	}
	if !atime("control").After(old) {
		t.Fatal("an ordinary read left the access time alone: the mount does not update access times, nothing to compare")
	}
	if _, _, err := d.ReadWhole("block", make([]byte, 0, 16)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.ReadWholeRaw("block", make([]byte, 0, 16)); err != nil {
		t.Fatal(err)
	}
	if at := atime("block"); !at.Equal(old) {
		t.Fatalf("ReadWhole changed the access time from %v to %v", old, at)
	}
}
