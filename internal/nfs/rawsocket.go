package nfs

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawSocket reads requests from and writes replies to a TCP connection
// without TLS with raw system calls (unix.RawSyscall: the call does
// not enter the Go runtime's system-call state). The calls and their
// structures are golang.org/x/sys/unix's, which has them for every
// Linux architecture (syscall has no recvfrom on 386, where the C
// library multiplexes socket calls; the kernel has had it since 4.3). A raw call must never
// block: a goroutine in one keeps its P running, so the garbage
// collector's stop-the-world, and every goroutine with it, waits for the
// call to end (1039e6f). Each call passes MSG_DONTWAIT (recvfrom and
// sendmsg, not read and writev), so it does not wait even if the socket
// is in blocking mode (the net package makes its sockets non-blocking,
// but an os.File's Fd of a dup of it, for one, turns the shared open
// file blocking: TestRawSocketBlockingMode): when it would, it returns
// EAGAIN and syscall.RawConn waits for the socket through the runtime's
// poller, honouring the connection's deadlines, as net.Conn does. Only a
// *net.TCPConn takes this path (a TLS session's records go through
// net.Conn).
//
// Through net.Conn, each call enters the runtime's system-call state,
// and the first one after the process was idle wakes the runtime's
// monitor (sysmon), which then polls every 20 µs until the process is
// idle again: on the development VM ~2.7 sleeps, a futex wake and ~3
// thread switches per cold 1 MiB READ, 8-11 % of the server's CPU
// (read9, read10 in bench/nfs/README.md). With a READ's other system
// calls raw as well (disk.OS.ReadWhole when the page cache holds the
// block) the monitor stays asleep while a sequential reader is served.
type rawSocket struct {
	rc syscall.RawConn

	// The reader's state (only the connection's reader reads): the
	// buffer, what the call read and its error, and readStep as a func
	// made once.
	rp    []byte
	rn    int
	rerr  error
	rstep func(fd uintptr) bool

	// The writer's state, guarded by conn.wmu: the pieces left to write,
	// the error met, and writeStep as a func made once.
	iov   [maxRawPieces]unix.Iovec
	vec   []unix.Iovec
	msg   unix.Msghdr
	werr  error
	wstep func(fd uintptr) bool

	// calls counts the raw reads and writes, for tests.
	calls *atomic.Uint64
}

// newRawSocket returns the raw socket of nc, nil when nc is not a TCP
// connection.
func newRawSocket(nc net.Conn, calls *atomic.Uint64) *rawSocket {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawSocket{rc: rc, calls: calls}
	r.rstep, r.wstep = r.readStep, r.writeStep
	return r
}

// Read reads from the socket (io.Reader): what one recvfrom(2) returns,
// waiting for data as net.Conn.Read does.
func (r *rawSocket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.rp, r.rn, r.rerr = p, 0, nil
	err := r.rc.Read(r.rstep)
	n, rerr := r.rn, r.rerr
	r.rp, r.rerr = nil, nil
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// readStep reads into r.rp; false when nothing is there to read
// (syscall.RawConn.Read then waits for the socket).
func (r *rawSocket) readStep(fd uintptr) bool {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&r.rp[0])), uintptr(len(r.rp)),
			unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			r.calls.Add(1)
			r.rn = int(n)
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			r.rerr = os.NewSyscallError("recvfrom", e)
		}
		return true
	}
}

// maxRawPieces: a reply has at most three pieces (a READ's head, data and
// padding).
const maxRawPieces = 3

// write writes pieces whole (conn.wmu held), waiting for room in the
// socket as net.Conn.Write does.
func (r *rawSocket) write(pieces [][]byte) error {
	n := 0
	for _, p := range pieces {
		if len(p) > 0 {
			r.iov[n].Base = &p[0]
			r.iov[n].SetLen(len(p))
			n++
		}
	}
	r.vec, r.werr = r.iov[:n], nil
	err := r.rc.Write(r.wstep)
	werr := r.werr
	clear(r.iov[:])
	r.vec, r.werr = nil, nil
	if err != nil {
		return err
	}
	return werr
}

// writeStep writes what is left of r.vec; false when the socket is full
// (syscall.RawConn.Write then waits for room).
func (r *rawSocket) writeStep(fd uintptr) bool {
	for len(r.vec) > 0 {
		r.msg.Iov = &r.vec[0]
		r.msg.SetIovlen(len(r.vec))
		w, _, e := unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&r.msg)),
			unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		r.msg.Iov = nil
		switch e {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			r.werr = os.NewSyscallError("sendmsg", e)
			return true
		}
		r.calls.Add(1)
		for w > 0 && len(r.vec) > 0 {
			if l := uintptr(r.vec[0].Len); w >= l {
				w -= l
				r.vec = r.vec[1:]
				continue
			}
			r.vec[0].Base = (*byte)(unsafe.Add(unsafe.Pointer(r.vec[0].Base), w))
			r.vec[0].SetLen(int(uintptr(r.vec[0].Len) - w))
			w = 0
		}
	}
	return true
}

// loneReader reads a connection's requests with raw reads (rawSocket)
// while no request of another connection is being processed, else
// through net.Conn: a server serving other connections' requests keeps
// the runtime's monitor awake anyway, and with the monitor asleep nothing
// retakes a P from a goroutine in a system call nor polls the network
// while every P is busy (with every socket read raw, four streams read at
// 0.48-0.76x ganesha against 0.73-0.87x before, read10). The
// connection's own requests in process do not count: a client waiting
// for the reply of the one it sent (a small file's CREATE or FILE_SYNC
// WRITE, waiting for a durable commit) is read raw while it waits, which
// through net.Conn woke the monitor once per request (create12).
type loneReader struct{ c *conn }

func (r loneReader) Read(p []byte) (int, error) {
	if len(r.c.s.sem) <= int(r.c.processing.Load()) {
		return r.c.raw.Read(p)
	}
	return r.c.nc.Read(p)
}
