package disk

import (
	"io"
	"io/fs"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// osReadState is what ReadWhole learned of the kernel, and its counters.
type osReadState struct {
	noNoatime atomic.Bool
	// raw counts ReadWholeRaw calls whose data came whole from the page
	// cache with raw reads, uncached those that read (some of) it
	// through the runtime.
	raw, uncached atomic.Uint64
}

// ReadWhole reads file name whole (WholeReader), through the runtime.
//
// The file is opened with O_NOATIME when the process owns it (it wrote
// its block files): the first read of a file written after its access
// time otherwise writes the inode (relatime), a journal update per block
// read once; nothing reads the access time of a block file.
func (o *OS) ReadWhole(name string, buf []byte) ([]byte, bool, error) {
	return o.readWhole(name, buf, false)
}

// ReadWholeRaw is ReadWhole with the file's data read with a raw system
// call (unix.RawSyscall: without entering the Go runtime's system-call
// state) as far as the page cache holds it: preadv2 with RWF_NOWAIT,
// which returns EAGAIN rather than wait for the disk. What the cache
// lacks is read through the runtime (unix.Pread, counted: Uncached).
//
// Only that read is raw. A goroutine in a raw call keeps its P in the
// running state, so the garbage collector's stop-the-world (and so every
// goroutine of the process) waits for the call to end: a raw call must
// never block. The open, fstat and close of the file go through the
// runtime, since each can wait: the open for the directory's or the
// inode's blocks, or on a FUSE or NFS block directory for the server
// (FUSE_OPEN, GETATTR), the close for a FUSE server's FLUSH; raw, each
// stopped the process for as long (TestReadWholeRawBlockingOpen; the
// WAL's raw calls were reverted for the same reason, 1039e6f). A raw
// read keeps its P for the copy out of the page cache (~80 µs per MiB
// here). What it saves is a few entries into the runtime's system-call
// state, each of which may wake the runtime's monitor (sysmon) when the
// process was idle (read10 in bench/nfs/README.md).
func (o *OS) ReadWholeRaw(name string, buf []byte) ([]byte, bool, error) {
	return o.readWhole(name, buf, true)
}

func (o *OS) readWhole(name string, buf []byte, raw bool) ([]byte, bool, error) {
	fd, size, err := o.openSized(name)
	if err != nil {
		return nil, false, err
	}
	defer unix.Close(fd)
	return o.readFd(fd, size, name, buf, raw)
}

// openSized opens file name to read it and returns its descriptor and
// size (openat and fstat, through the runtime).
func (o *OS) openSized(name string) (int, int64, error) {
	p, err := o.path(name)
	if err != nil {
		return -1, 0, err
	}
	fd, err := o.openRead(p)
	if err != nil {
		return -1, 0, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, 0, &fs.PathError{Op: "fstat", Path: name, Err: err}
	}
	return fd, st.Size, nil
}

// readFd reads size bytes of open file fd (named name) from its start,
// into buf when they fit (ReadWhole); raw as ReadWholeRaw's.
func (o *OS) readFd(fd int, size int64, name string, buf []byte, raw bool) ([]byte, bool, error) {
	inBuf := size <= int64(cap(buf))
	var data []byte
	if inBuf {
		data = buf[:size]
	} else {
		data = make([]byte, size)
	}
	n := 0
	if raw {
		n = preadCached(fd, data)
		if n == len(data) {
			o.raw.Add(1)
		} else {
			o.uncached.Add(1)
		}
	}
	for n < len(data) {
		k, err := unix.Pread(fd, data[n:], int64(n))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return nil, false, &fs.PathError{Op: "pread", Path: name, Err: err}
		case k == 0:
			return nil, false, &fs.PathError{Op: "pread", Path: name, Err: io.ErrUnexpectedEOF}
		}
		n += k
	}
	return data, inBuf, nil
}

// Raw reports how many ReadWholeRaw calls read their file's data with
// raw system calls only.
func (o *OS) Raw() uint64 { return o.raw.Load() }

// Uncached reports how many ReadWholeRaw calls read through the Go
// runtime's system-call path because the page cache lacked (some of)
// the file's data (they may wait for the disk).
func (o *OS) Uncached() uint64 { return o.uncached.Load() }

// openRead opens path p read-only, through the runtime.
func (o *OS) openRead(p string) (int, error) {
	path, err := unix.BytePtrFromString(p)
	if err != nil {
		return -1, err
	}
	flags := unix.O_RDONLY | unix.O_CLOEXEC
	if !o.noNoatime.Load() {
		flags |= unix.O_NOATIME
	}
	for {
		// unix.Openat would make another C string of p.
		fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(path)), uintptr(flags), 0, 0, 0)
		switch {
		case e == 0:
			return int(fd), nil
		case e == unix.EINTR:
			continue
		case e == unix.EPERM && flags&unix.O_NOATIME != 0:
			// Not the file's owner (a store copied by another user):
			// its access times it is.
			o.noNoatime.Store(true)
			flags &^= unix.O_NOATIME
			continue
		}
		return -1, e
	}
}

var atFDCWD = unix.AT_FDCWD

// preadCached reads into data what the page cache holds of fd's file
// from its start, raw, and returns how many bytes it read (ReadWhole).
// RWF_NOWAIT makes the call return EAGAIN rather than wait for the disk:
// it never blocks, which is what makes it safe to make raw. It is the
// only raw system call of the package (TestRawCallsNeverBlock).
func preadCached(fd int, data []byte) int {
	n := 0
	for n < len(data) {
		iov := unix.Iovec{Base: &data[n]}
		iov.SetLen(len(data) - n)
		k, _, e := unix.RawSyscall6(unix.SYS_PREADV2, uintptr(fd), uintptr(unsafe.Pointer(&iov)), 1,
			uintptr(n), 0, unix.RWF_NOWAIT)
		switch {
		case e == unix.EINTR:
			continue
		case e != 0 || k == 0:
			// EAGAIN (not cached), EOPNOTSUPP (a file system without
			// the flag), the end of the file: the caller reads on.
			return n
		}
		n += int(k)
	}
	return n
}
