package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// OS is a real directory.
type OS struct {
	root string
	osReadState
	// createNoNoatime: a Create's O_NOATIME was refused (EPERM): the
	// files it creates are not the process's.
	createNoNoatime atomic.Bool
}

var _ FS = (*OS)(nil)

// NewOS returns the FS rooted at root (which must exist).
func NewOS(root string) (*OS, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("disk: %s is not a directory", abs)
	}
	return &OS{root: abs}, nil
}

// Root returns the absolute root directory.
func (o *OS) Root() string { return o.root }

func (o *OS) path(name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	return filepath.Join(o.root, filepath.FromSlash(name)), nil
}

// checkName rejects absolute names and names with ".." components.
func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || path.IsAbs(name) {
		return &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
		}
	}
	return nil
}

func (o *OS) Create(name string) (File, error) {
	p, err := o.path(name)
	if err != nil {
		return nil, err
	}
	// Read-write and without access-time updates: a block file's writer
	// may keep it open to read it (osFile.Hold).
	flags := os.O_CREATE | os.O_EXCL | os.O_RDWR
	if !o.createNoNoatime.Load() {
		flags |= unix.O_NOATIME
	}
	f, err := os.OpenFile(p, flags, 0o600)
	if err != nil && flags&unix.O_NOATIME != 0 && errors.Is(err, unix.EPERM) {
		// Only a file's owner may set O_NOATIME, and the kernel checks
		// it after creating the file: in a directory whose new files
		// are not the process's (a daemon not running as root on an
		// all_squash NFS export or a uid-forcing mount) the file now
		// exists, unopened. Its access times it is, from now on.
		o.createNoNoatime.Store(true)
		f, err = os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			// Not left behind for the caller to find.
			_ = os.Remove(p)
		}
	}
	if err != nil {
		return nil, err
	}
	return osFile{f, o}, nil
}

func (o *OS) Open(name string) (File, error) {
	p, err := o.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	return osFile{f, o}, nil
}

var _ RawWholeReader = (*OS)(nil)

func (o *OS) Rename(oldname, newname string) error {
	a, err := o.path(oldname)
	if err != nil {
		return err
	}
	b, err := o.path(newname)
	if err != nil {
		return err
	}
	return os.Rename(a, b)
}

func (o *OS) Remove(name string) error {
	p, err := o.path(name)
	if err != nil {
		return err
	}
	return os.Remove(p)
}

func (o *OS) MkdirAll(name string) error {
	p, err := o.path(name)
	if err != nil {
		return err
	}
	return os.MkdirAll(p, 0o755)
}

func (o *OS) SyncDir(name string) error {
	p, err := o.path(name)
	if err != nil {
		return err
	}
	d, err := os.Open(p)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (o *OS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := o.path(name)
	if err != nil {
		return nil, err
	}
	return os.ReadDir(p)
}

func (o *OS) Stat(name string) (fs.FileInfo, error) {
	p, err := o.path(name)
	if err != nil {
		return nil, err
	}
	return os.Stat(p)
}

func (o *OS) Usage(name string) (Usage, error) {
	p, err := o.path(name)
	if err != nil {
		return Usage{}, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return Usage{}, &fs.PathError{Op: "statfs", Path: name, Err: err}
	}
	bs := uint64(st.Bsize)
	return Usage{TotalBytes: st.Blocks * bs, FreeBytes: st.Bavail * bs, TotalFiles: st.Files, FreeFiles: st.Ffree}, nil
}

type osFile struct {
	f *os.File
	o *OS
}

// Allocate gives the file size bytes of allocated blocks (fallocate), so
// that a reserve of space does not cost writing it.
func (f osFile) Allocate(size int64) error { return unix.Fallocate(int(f.f.Fd()), 0, 0, size) }

// DropCache asks the kernel to drop the file's pages from its cache; those
// written back (after Sync) go, the others stay. For data nothing reads
// soon (a replica's pushed blocks): on the development VM, a page cache
// that grows into memory the guest has not touched yet made each 1 MiB
// write(2) cost about twice the CPU of one whose pages are dropped and
// reused (a loop of 512 × 1 MiB files with fdatasync: 1.9–2.9 against
// 1.1–1.5 CPU-s per GiB).
func (f osFile) DropCache() error {
	return unix.Fadvise(int(f.f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

func (f osFile) Write(p []byte) (int, error)             { return f.f.Write(p) }
func (f osFile) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }

// Sync uses fdatasync: the data and what is needed to read it back (the
// size), without timestamps.
func (f osFile) Sync() error {
	for {
		err := unix.Fdatasync(int(f.f.Fd()))
		if err != unix.EINTR {
			if err != nil {
				return &fs.PathError{Op: "fdatasync", Path: f.f.Name(), Err: err}
			}
			return nil
		}
	}
}
func (f osFile) Close() error { return f.f.Close() }
func (f osFile) Size() (int64, error) {
	st, err := f.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
