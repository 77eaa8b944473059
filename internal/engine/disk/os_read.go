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
	noOpenat2, noNoatime atomic.Bool
	// openat2Refused, when not 0 (tests), is what openat2 fails with,
	// as under a seccomp filter that refuses the system call.
	openat2Refused unix.Errno
	// raw counts ReadWholeRaw calls made with raw calls only, uncached
	// those that read through the runtime (the caches lacked the path or
	// the data).
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

// ReadWholeRaw is ReadWhole with its system calls made raw
// (unix.RawSyscall: without entering the Go runtime's system-call state)
// as long as none of them can wait for the disk (RawWholeReader): the
// path is resolved from the kernel's caches only (openat2 with
// RESOLVE_CACHED) and the data read only as far as the page cache holds
// it (preadv2 with RWF_NOWAIT); fstat and close of an open regular file
// do not wait. What the caches lack is done again through the runtime
// (unix.Open, unix.Pread), which may hand the thread's P to other
// goroutines while it waits (counted, Uncached). A raw call keeps its P
// for the copy out of the page cache (~80 µs per MiB here). What it
// saves is the runtime's monitor (sysmon): asleep while the process is
// idle, it is woken by the first system call that enters the runtime's
// state and then polls every 20 µs until the process is idle again; a
// cold 1 MiB READ paid ~2.7 of its sleeps, a futex wake and ~3 thread
// switches on the development VM (read10 in bench/nfs/README.md).
func (o *OS) ReadWholeRaw(name string, buf []byte) ([]byte, bool, error) {
	return o.readWhole(name, buf, true)
}

func (o *OS) readWhole(name string, buf []byte, raw bool) ([]byte, bool, error) {
	p, err := o.path(name)
	if err != nil {
		return nil, false, err
	}
	fd, cached, err := o.openRead(p, raw)
	if err != nil {
		return nil, false, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	defer closeFD(fd, raw)
	var st unix.Stat_t
	if _, _, e := unix.RawSyscall(unix.SYS_FSTAT, uintptr(fd), uintptr(unsafe.Pointer(&st)), 0); e != 0 {
		return nil, false, &fs.PathError{Op: "fstat", Path: name, Err: e}
	}
	inBuf := st.Size <= int64(cap(buf))
	var data []byte
	if inBuf {
		data = buf[:st.Size]
	} else {
		data = make([]byte, st.Size)
	}
	n := 0
	if raw {
		n = preadCached(fd, data)
		if cached && n == len(data) {
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

func closeFD(fd int, raw bool) {
	if raw {
		unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
		return
	}
	unix.Close(fd)
}

// Raw reports how many ReadWholeRaw calls were made with raw system
// calls only.
func (o *OS) Raw() uint64 { return o.raw.Load() }

// Uncached reports how many ReadWholeRaw calls went through the Go
// runtime's system-call path because the kernel's caches lacked the
// file's path or data (they may wait for the disk).
func (o *OS) Uncached() uint64 { return o.uncached.Load() }

// openRead opens path p read-only; with raw, raw when the kernel's
// caches resolve it (cached), else through the runtime.
func (o *OS) openRead(p string, raw bool) (fd int, cached bool, err error) {
	path, err := unix.BytePtrFromString(p)
	if err != nil {
		return -1, false, err
	}
	flags := unix.O_RDONLY | unix.O_CLOEXEC
	if !o.noNoatime.Load() {
		flags |= unix.O_NOATIME
	}
	for {
		fd, cached, err = o.openAt(path, flags, raw)
		if err == unix.EPERM && flags&unix.O_NOATIME != 0 {
			// Not the file's owner (a store copied by another user):
			// its access times it is.
			o.noNoatime.Store(true)
			flags &^= unix.O_NOATIME
			continue
		}
		return fd, cached, err
	}
}

func (o *OS) openAt(path *byte, flags int, raw bool) (int, bool, error) {
	refused := false // openat2 failed where open(2) may not
	if raw && !o.noOpenat2.Load() {
		how := unix.OpenHow{Flags: uint64(flags), Resolve: resolveCached}
		for {
			fd, _, e := unix.RawSyscall6(unix.SYS_OPENAT2, uintptr(atFDCWD), uintptr(unsafe.Pointer(path)),
				uintptr(unsafe.Pointer(&how)), unsafe.Sizeof(how), 0, 0)
			if o.openat2Refused != 0 {
				if e == 0 {
					unix.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
				}
				e = o.openat2Refused
			}
			switch e {
			case 0:
				return int(fd), true, nil
			case unix.EINTR:
				continue
			case unix.ENOSYS, unix.EINVAL:
				// A kernel without openat2 or RESOLVE_CACHED (< 5.12).
				o.noOpenat2.Store(true)
			case unix.EAGAIN:
				// Not all in the caches: the lookup may read the disk.
			case unix.ENOENT, unix.ENOTDIR:
				return -1, true, e
			default:
				// EPERM or EACCES may be a seccomp filter's refusal of a
				// system call it does not know (older container
				// runtimes), or the file's (O_NOATIME of a file the
				// process does not own): open(2) tells them apart.
				refused = true
			}
			break
		}
	}
	for {
		// unix.Openat would make another C string of p.
		fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(path)), uintptr(flags), 0, 0, 0)
		switch e {
		case 0:
			if refused {
				o.noOpenat2.Store(true) // open(2) does what openat2 is refused
			}
			return int(fd), false, nil
		case unix.EINTR:
			continue
		}
		return -1, false, e
	}
}

// resolveCached is RESOLVE_CACHED of openat2(2) (linux/openat2.h): the
// lookup fails with EAGAIN rather than read the disk.
const resolveCached = 0x20

var atFDCWD = unix.AT_FDCWD

// preadCached reads into data what the page cache holds of fd's file
// from its start, raw, and returns how many bytes it read (ReadWhole).
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
