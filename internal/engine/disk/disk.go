package disk

import (
	"errors"
	"io"
	"io/fs"
)

// Errors. Implementations return errors that satisfy errors.Is with these
// (the OS implementation returns *fs.PathError wrapping syscall errors, which
// already match fs.ErrNotExist / fs.ErrExist; ENOSPC and EIO are matched by
// errors.Is(err, syscall.ENOSPC) etc.).
var (
	// ErrCrashed is returned by every operation on a Mem after Crash.
	ErrCrashed = errors.New("disk: crashed")
)

// File is an open file. Writes append at the current offset (files are
// written once, sequentially, then read with ReadAt).
type File interface {
	io.Writer
	io.ReaderAt
	// Sync makes the file's data and size durable (fsync). It does not make
	// the file's directory entry durable; see FS.SyncDir.
	Sync() error
	// Size returns the current size of the file.
	Size() (int64, error)
	Close() error
}

// WholeReader is an FS that reads a whole file in one call, without a
// File: OS opens, sizes, reads and closes it with four system calls and
// no allocation (an os.File also tries to register the file with the
// runtime's poller, which refuses regular files, and sets a cleanup). The
// block store reads every block file this way when its FS can.
type WholeReader interface {
	// ReadWhole reads file name whole into buf[:size] when its size fits
	// cap(buf) (inBuf true), else into a new buffer. Its errors are those
	// of Open and File.ReadAt.
	ReadWhole(name string, buf []byte) (data []byte, inBuf bool, err error)
}

// RawWholeReader is a WholeReader that can also read a whole file's data
// with a raw system call while the page cache holds it (OS.ReadWholeRaw;
// the calls that can block go through the runtime): the call keeps the
// goroutine's P for the copy, so callers use it only when nothing else
// waits to run (blocks.WithRawReads).
type RawWholeReader interface {
	WholeReader
	ReadWholeRaw(name string, buf []byte) (data []byte, inBuf bool, err error)
}

// Usage is what statfs reports for the file system holding a path.
type Usage struct {
	TotalBytes uint64
	FreeBytes  uint64 // available to unprivileged users
	TotalFiles uint64
	FreeFiles  uint64
}

// FS is the seam the block store uses for files. Names are slash-separated
// paths relative to the FS root; they never contain "..".
//
// Durability contract (what a crash keeps): file contents and sizes only as
// of their last File.Sync; directory entries (creations, renames, removals,
// sub-directories) only as of their directory's last SyncDir. A rename is
// atomic: after a crash a name refers to the old or the new file, never to a
// mix.
type FS interface {
	// Create creates name for writing; it fails with fs.ErrExist if name
	// exists.
	Create(name string) (File, error)
	// Open opens an existing file for reading.
	Open(name string) (File, error)
	// Rename atomically replaces newname by oldname.
	Rename(oldname, newname string) error
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// MkdirAll creates a directory and any missing parents (not durable
	// until the parents are synced).
	MkdirAll(name string) error
	// SyncDir makes the entries of directory name durable.
	SyncDir(name string) error
	// ReadDir lists a directory, sorted by name.
	ReadDir(name string) ([]fs.DirEntry, error)
	// Stat describes a file or directory.
	Stat(name string) (fs.FileInfo, error)
	// Usage reports the capacity of the file system holding name.
	Usage(name string) (Usage, error)
}
