package disk

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
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
	flags := unix.O_CREAT | unix.O_EXCL | unix.O_RDWR | unix.O_CLOEXEC
	if !o.createNoNoatime.Load() {
		flags |= unix.O_NOATIME
	}
	fd, err := openFd(p, flags, 0o600)
	if err != nil && flags&unix.O_NOATIME != 0 && err == unix.EPERM {
		// Only a file's owner may set O_NOATIME, and the kernel checks
		// it after creating the file: in a directory whose new files
		// are not the process's (a daemon not running as root on an
		// all_squash NFS export or a uid-forcing mount) the file now
		// exists, unopened. Its access times it is, from now on.
		o.createNoNoatime.Store(true)
		fd, err = openFd(p, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			// Not left behind for the caller to find.
			_ = unix.Unlink(p)
		}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return &osFile{fd: fd, name: p, o: o}, nil
}

// openFd opens path p with a bare openat (through the runtime), retried
// on EINTR. An *os.File costs four fcntl and an epoll_ctl more per open
// of a regular file or directory (the runtime tries to register each
// with its poller, which refuses them): a block put opens its file and,
// at the commit, its fan-out directory.
func openFd(p string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Open(p, flags, perm)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func (o *OS) Open(name string) (File, error) {
	p, err := o.path(name)
	if err != nil {
		return nil, err
	}
	fd, err := openFd(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return &osFile{fd: fd, name: p, o: o}, nil
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
	// Not os.Rename, whose lstat of newname first (a directory there is
	// refused) is a system call per block put: a block file never
	// replaces a directory, and rename(2) refuses that anyway.
	if err := unix.Renameat(unix.AT_FDCWD, a, unix.AT_FDCWD, b); err != nil {
		return &os.LinkError{Op: "rename", Old: a, New: b, Err: err}
	}
	return nil
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
	fd, err := openFd(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: p, Err: err}
	}
	err = fsyncFd(fd, false)
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return &fs.PathError{Op: "fsync", Path: p, Err: err}
	}
	return nil
}

// fsyncFd syncs fd (fdatasync when data), retried on EINTR.
func fsyncFd(fd int, data bool) error {
	for {
		var err error
		if data {
			err = unix.Fdatasync(fd)
		} else {
			err = unix.Fsync(fd)
		}
		if err != unix.EINTR {
			return err
		}
	}
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

// osFile is a file of OS.Create: a bare descriptor (see openFd), closed
// once (Close or Hold's Held). Writes and syncs go through the runtime.
//
// A Close (or Hold) racing another goroutine's call is safe, as with an
// *os.File: the call either finishes on the file before the descriptor
// is closed, or fails with fs.ErrClosed; it never uses the descriptor's
// number after a close has freed it for the next open.
type osFile struct {
	mu   sync.RWMutex // read-held by every call on fd; held by Close and Hold to take it
	fd   int          // -1 once closed or held
	name string
	o    *OS
}

// use returns the file's descriptor with mu read-held (the caller
// RUnlocks it when done with fd), or fs.ErrClosed (mu not held).
func (f *osFile) use(op string) (int, error) {
	f.mu.RLock()
	if f.fd < 0 {
		f.mu.RUnlock()
		return -1, &fs.PathError{Op: op, Path: f.name, Err: fs.ErrClosed}
	}
	return f.fd, nil
}

// take takes the descriptor away from the file (Close, Hold), after the
// calls using it have finished, or fails with fs.ErrClosed.
func (f *osFile) take(op string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fd := f.fd
	if fd < 0 {
		return -1, &fs.PathError{Op: op, Path: f.name, Err: fs.ErrClosed}
	}
	f.fd = -1
	return fd, nil
}

// Allocate gives the file size bytes of allocated blocks (fallocate), so
// that a reserve of space does not cost writing it.
func (f *osFile) Allocate(size int64) error {
	fd, err := f.use("fallocate")
	if err != nil {
		return err
	}
	defer f.mu.RUnlock()
	return unix.Fallocate(fd, 0, 0, size)
}

// DropCache asks the kernel to drop the file's pages from its cache; those
// written back (after Sync) go, the others stay. For data nothing reads
// soon (a replica's pushed blocks): on the development VM, a page cache
// that grows into memory the guest has not touched yet made each 1 MiB
// write(2) cost about twice the CPU of one whose pages are dropped and
// reused (a loop of 512 × 1 MiB files with fdatasync: 1.9–2.9 against
// 1.1–1.5 CPU-s per GiB).
func (f *osFile) DropCache() error {
	fd, err := f.use("fadvise")
	if err != nil {
		return err
	}
	defer f.mu.RUnlock()
	return unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
}

// Write appends p whole (write(2) until done, retried on EINTR).
func (f *osFile) Write(p []byte) (int, error) {
	fd, err := f.use("write")
	if err != nil {
		return 0, err
	}
	defer f.mu.RUnlock()
	n := 0
	for n < len(p) {
		k, err := unix.Write(fd, p[n:])
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return n, &fs.PathError{Op: "write", Path: f.name, Err: err}
		case k == 0:
			return n, &fs.PathError{Op: "write", Path: f.name, Err: io.ErrShortWrite}
		}
		n += k
	}
	return n, nil
}

// ReadAt reads len(p) bytes at off (io.ReaderAt: io.EOF when the file
// ends first).
func (f *osFile) ReadAt(p []byte, off int64) (int, error) {
	fd, err := f.use("read")
	if err != nil {
		return 0, err
	}
	defer f.mu.RUnlock()
	if off < 0 {
		return 0, &fs.PathError{Op: "readat", Path: f.name, Err: fs.ErrInvalid}
	}
	n := 0
	for n < len(p) {
		k, err := unix.Pread(fd, p[n:], off+int64(n))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return n, &fs.PathError{Op: "read", Path: f.name, Err: err}
		case k == 0:
			return n, io.EOF
		}
		n += k
	}
	return n, nil
}

// Sync uses fdatasync: the data and what is needed to read it back (the
// size), without timestamps.
func (f *osFile) Sync() error {
	fd, err := f.use("fdatasync")
	if err != nil {
		return err
	}
	defer f.mu.RUnlock()
	if err := fsyncFd(fd, true); err != nil {
		return &fs.PathError{Op: "fdatasync", Path: f.name, Err: err}
	}
	return nil
}

func (f *osFile) Close() error {
	fd, err := f.take("close")
	if err != nil {
		return err
	}
	if err := unix.Close(fd); err != nil {
		return &fs.PathError{Op: "close", Path: f.name, Err: err}
	}
	return nil
}

func (f *osFile) Size() (int64, error) {
	fd, err := f.use("fstat")
	if err != nil {
		return 0, err
	}
	defer f.mu.RUnlock()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, &fs.PathError{Op: "fstat", Path: f.name, Err: err}
	}
	return st.Size, nil
}
