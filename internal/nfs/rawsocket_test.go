package nfs

import (
	"bytes"
	"errors"
	"go/ast"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/race"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestReadSystemCallsRaw is the system-call guard of a sequential
// reader's READs (issue 16, not timed): over TCP without TLS, each READ
// of blocks the page cache holds is read from the socket, answered and
// its next chunk read from its block file with raw system calls only
// (rawSocket, disk.OS.ReadWhole), which do not wake the Go runtime's
// monitor (sysmon) the way a call through net.Conn or unix.Pread does:
// at least a raw read and a raw writev per READ, and no block file read
// through the runtime. It fails when the replies go back through
// net.Conn (32 raw calls, tried) or the block files are read through the
// runtime (0 raw block reads, tried). With the race
// detector on, connections use net.Conn (race.Enabled) and only the block
// reads are counted.
func TestReadSystemCallsRaw(t *testing.T) {
	const blocks = 32
	f := newFixture(t, envOpt{dir: t.TempDir()})
	fh := blocksFile(t, f, blocks)
	st := f.fs.Stats().Blocks
	raw := f.srv.rawCalls.Load()
	readBlocks(t, f, fh, blocks)
	raw = f.srv.rawCalls.Load() - raw
	st2 := f.fs.Stats().Blocks
	reads, rawReads, uncached := st2.Gets-st.Gets, st2.RawReads-st.RawReads, st2.UncachedReads-st.UncachedReads
	t.Logf("%d READs: %d raw socket calls, %d block files read, %d with raw calls only, %d through the runtime", blocks, raw, reads, rawReads, uncached)
	if raw < 2*blocks-blocks/4 && !race.Enabled {
		t.Fatalf("%d raw socket reads and writes for %d READs, want at least 2 per READ but the first few", raw, blocks)
	}
	if reads < blocks/2 {
		t.Fatalf("%d block files read for %d READs of blocks just written: the cache answered, nothing measured", reads, blocks)
	}
	// A block read while another request of the reader is in process (a
	// prefetch overlapping the next READ: how many depends on the
	// scheduler, 5 of 32 seen in one run of six on an idle machine) goes
	// through the runtime's poller instead: a quarter is allowed.
	if uncached > blocks/4 || rawReads+blocks/4 < reads {
		t.Fatalf("%d of %d block reads made with raw calls only, %d through the runtime; want all but %d raw (a lone reader's prefetches, blocks just written and in the page cache)", rawReads, reads, uncached, blocks/4)
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (srv, cli net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cli, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	srv, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, cli
}

// TestRawSocketWritePartial: a reply larger than the socket's send
// buffer, to a client that reads slowly, goes out whole and in order
// through several raw writes with waits for room in between; a write
// past the deadline fails.
func TestRawSocketWritePartial(t *testing.T) {
	nc, cli := tcpPair(t)
	if err := nc.(*net.TCPConn).SetWriteBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Uint64
	r := newRawSocket(nc, &calls)
	pieces := [][]byte{bytes.Repeat([]byte("h"), 100), make([]byte, 3<<20), nil}
	for i := range pieces[1] {
		pieces[1][i] = byte(i * 7)
	}
	want := append(append([]byte{}, pieces[0]...), pieces[1]...)
	got := make(chan []byte, 1)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 4<<10)
		for b.Len() < len(want) {
			n, err := cli.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		got <- b.Bytes()
	}()
	_ = nc.SetWriteDeadline(time.Now().Add(time.Minute))
	if err := r.write(pieces); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("received %d bytes, not the %d written", len(b), len(want))
	}
	if n := calls.Load(); n < 2 {
		t.Fatalf("%d raw writes for 3 MiB through a 16 KiB send buffer, want several", n)
	}
	// Nobody reads now: the socket fills and the deadline ends the write.
	_ = nc.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	if err := r.write([][]byte{make([]byte, 64<<20)}); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a 64 MiB write to a socket nobody reads: %v, want a deadline error", err)
	}
}

// TestRawSocketRead: raw reads return what the peer sent, wait for more,
// honour the read deadline, end with io.EOF when the peer closes, and a
// read waiting when the connection is closed returns net.ErrClosed.
func TestRawSocketRead(t *testing.T) {
	nc, cli := tcpPair(t)
	var calls atomic.Uint64
	r := newRawSocket(nc, &calls)
	got := make(chan struct{})
	go func() {
		cli.Write([]byte("hello"))
		<-got
		cli.Write([]byte(" world")) // the reader waits for it, or finds it there
	}()
	var b bytes.Buffer
	buf := make([]byte, 64)
	for b.Len() < len("hello world") {
		n, err := r.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(buf[:n])
		if b.String() == "hello" {
			close(got)
		}
	}
	if b.String() != "hello world" {
		t.Fatalf("read %q", b.String())
	}
	_ = nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	_ = nc.SetReadDeadline(time.Time{})
	cli.Close()
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer closed: %d, %v", n, err)
	}
	if calls.Load() < 2 {
		t.Fatalf("%d raw reads counted", calls.Load())
	}

	nc2, _ := tcpPair(t)
	r2 := newRawSocket(nc2, &calls)
	done := make(chan error, 1)
	go func() {
		_, err := r2.Read(make([]byte, 8))
		done <- err
	}()
	// Closed while the read waits, or before it starts: net.ErrClosed
	// either way.
	nc2.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed connection: %v, want net.ErrClosed", err)
	}
}

// TestRawSocketBlockingMode: raw reads and writes never block, even on a
// socket in blocking mode (the Fd of an os.File of a dup of the
// connection turns the open file they share blocking): a read with
// nothing to read and a write to a full socket wait through the runtime's
// poller and end at their deadlines. With read(2) and writev(2), raw, the
// read waited in the kernel past its deadline, its P held (a garbage
// collection then waits for it, and every goroutine with it: automatic
// collections are off here, so the test fails rather than hangs).
func TestRawSocketBlockingMode(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	nc, cli := tcpPair(t)
	if err := nc.(*net.TCPConn).SetWriteBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	f, err := nc.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Fd() // the shared open file is blocking from now on
	fl, err := fcntlFlags(nc)
	if err != nil || fl&syscall.O_NONBLOCK != 0 {
		t.Fatalf("the socket is still non-blocking (flags %#x, %v): nothing to test", fl, err)
	}
	var calls atomic.Uint64
	r := newRawSocket(nc, &calls)

	_ = nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	read := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 64))
		read <- err
	}()
	select {
	case err := <-read:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a read with nothing to read: %v, want a deadline error", err)
		}
	case <-time.After(10 * time.Second):
		cli.Write([]byte("x")) // release it
		<-read
		t.Fatal("a raw read of a socket in blocking mode waited in the kernel past its deadline")
	}

	_ = nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	wrote := make(chan error, 1)
	go func() { wrote <- r.write([][]byte{make([]byte, 64<<20)}) }()
	select {
	case err := <-wrote:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a 64 MiB write to a socket nobody reads: %v, want a deadline error", err)
		}
	case <-time.After(10 * time.Second):
		cli.Close() // release it
		<-wrote
		t.Fatal("a raw write to a full socket in blocking mode waited in the kernel past its deadline")
	}
}

func fcntlFlags(nc net.Conn) (int, error) {
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var fl int
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		fl = int(r)
		if e != 0 {
			ferr = e
		}
	}); err != nil {
		return 0, err
	}
	return fl, ferr
}

// TestRawCallsNeverBlock is the guard of the package's raw system calls
// (RawSyscall, RawSyscall6): a goroutine in one keeps its P running and
// stops the garbage collector until the call returns, so each passes
// MSG_DONTWAIT (rawSocket), which makes a socket call return EAGAIN
// rather than wait whatever the socket's mode. It failed with read(2)
// and writev(2).
func TestRawCallsNeverBlock(t *testing.T) {
	for _, c := range testkit.RawSyscalls(t) {
		dontWait := false
		for _, a := range c.Args {
			ast.Inspect(a, func(n ast.Node) bool {
				if e, ok := n.(ast.Expr); ok && testkit.Names(e, "MSG_DONTWAIT") {
					dontWait = true
				}
				return !dontWait
			})
		}
		if !dontWait {
			t.Errorf("%s: a raw system call without MSG_DONTWAIT", c.Pos)
		}
	}
}
