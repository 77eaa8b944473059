package fuse

import (
	"bufio"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/testkit"
)

func TestSigkillPending(t *testing.T) {
	for _, c := range []struct {
		status       string
		killed, isOK bool
	}{
		{"Name:\tx\nSigQ:\t0/95\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000000100\n", false, true},
		{"SigPnd:\t0000000000000100\nShdPnd:\t0000000000000000\n", true, true},
		{"SigPnd:\t0000000000000000\nShdPnd:\t0000000000000100\n", true, true},
		// SIGURG (23) and SIGINT (2) pending: not fatal by themselves.
		{"SigPnd:\t0000000000400002\nShdPnd:\t0000000000000000\n", false, true},
		{"Name:\tx\n", false, false},
		{"SigPnd:\tzz\n", false, false},
	} {
		killed, ok := sigkillPending([]byte(c.status))
		if killed != c.killed || ok != c.isOK {
			t.Errorf("%q: killed %v ok %v, want %v %v", c.status, killed, ok, c.killed, c.isOK)
		}
	}
	// This thread: alive, nothing fatal pending.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if callerKilled(uint32(syscall.Gettid())) {
		t.Error("the test's own thread reads as killed")
	}
	if !callerKilled(0) {
		t.Error("an unnamed caller (pid 0) does not read as killed")
	}
}

// lostCalls drops the client's calls of one NFS procedure (a server that
// never answers them); seen is told of each.
type lostCalls struct {
	net.Conn
	proc uint32
	seen chan<- struct{}
}

func (c lostCalls) Write(b []byte) (int, error) {
	if len(b) > rpc.RecordHeaderSize {
		if h, _, err := rpc.ParseCall(b[rpc.RecordHeaderSize:]); err == nil && h.Prog == proto.ProgNFS && h.Proc == c.proc {
			select {
			case c.seen <- struct{}{}:
			default:
			}
			return len(b), nil
		}
	}
	return c.Conn.Write(b)
}

// TestSignalsDoNotFailCalls: a Go program on the mount gets SIGURG from
// its runtime all the time; each one reaching a thread waiting on the
// server made the kernel interrupt the request, and the mount answered
// EINTR (CI: go-fuse's posixtest FstatDeleted failed with "interrupted
// system call"). Calls now finish whatever non-fatal signals arrive.
func TestSignalsDoNotFailCalls(t *testing.T) {
	m := newMountSpace(t, nil, func(m *testMount) {
		m.wrap = func(nc net.Conn) net.Conn { return slowCalls{nc, proto.ProcMkdir, 20 * time.Millisecond, nil} }
	})
	tid := make(chan int, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid <- syscall.Gettid()
		for i := range 15 {
			if err := syscall.Mkdir(filepath.Join(m.dir, "d"+strconv.Itoa(i)), 0o755); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	thread := <-tid
	signals := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("mkdir while signalled (%d signals): %v", signals, err)
			}
			if signals < 20 {
				t.Fatalf("only %d signals reached the calls", signals)
			}
			ents, err := os.ReadDir(m.dir)
			if err != nil || len(ents) != 15 {
				t.Fatalf("after the mkdirs: %d entries, %v", len(ents), err)
			}
			return
		case <-time.After(2 * time.Millisecond):
			if err := syscall.Tgkill(os.Getpid(), thread, syscall.SIGURG); err != nil {
				t.Fatal(err)
			}
			signals++
		}
	}
}

// TestKillEndsWaitingCall: a process killed while its call waits on a
// server that does not answer is let go (the interrupt is honoured once
// the signal is fatal), as on a hard NFS mount.
func TestKillEndsWaitingCall(t *testing.T) {
	seen := make(chan struct{}, 1)
	m := newMountSpace(t, nil, func(m *testMount) {
		m.wrap = func(nc net.Conn) net.Conn { return lostCalls{nc, proto.ProcCreate, seen} }
	})
	// The shell creates the file itself (a redirection), with a handler
	// for SIGUSR1: that signal interrupts its call without killing it.
	cmd := exec.Command("sh", "-c", `trap : USR1; echo > "$1"`, "sh", filepath.Join(m.dir, "held"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-seen:
	case err := <-exited:
		t.Fatalf("the shell ended before its call was sent: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the CREATE never reached the server")
	}
	// A signal that does not kill leaves the call waiting.
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		t.Fatalf("the create ended on a handled SIGUSR1: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	start := time.Now()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("the shell ended with %v, want killed", err)
		}
		t.Logf("killed process gone after %v", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("a killed process stayed stuck in its call for 10 s")
	}
}

// blockingRaw answers GETATTR only when its request is cancelled.
type blockingRaw struct {
	gofuse.RawFileSystem
	started chan struct{}
}

func (b blockingRaw) GetAttr(cancel <-chan struct{}, _ *gofuse.GetAttrIn, _ *gofuse.AttrOut) gofuse.Status {
	close(b.started)
	<-cancel
	return gofuse.EINTR
}

// TestEndedConnectionCancels: when the kernel has ended the FUSE
// connection (fusectl counts no request waiting while one has been in
// flight past connCheck: an abort, or the last user of a lazily unmounted
// mount gone), the requests in flight are cancelled and gone is called
// once. They retried for ever before, with the server unreachable, and
// `regionfs mount` never exited; while the kernel counts requests, they
// go on.
func TestEndedConnectionCancels(t *testing.T) {
	waiting := filepath.Join(t.TempDir(), "waiting")
	if err := os.WriteFile(waiting, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	k := newKillable(blockingRaw{RawFileSystem: gofuse.NewDefaultRawFileSystem(), started: started})
	var gone atomic.Int32
	k.waiting, k.gone = waiting, func(int) { gone.Add(1) }
	done := make(chan gofuse.Status, 1)
	go func() {
		in := &gofuse.GetAttrIn{}
		in.Caller.Pid = uint32(os.Getpid())
		done <- k.GetAttr(make(chan struct{}), in, &gofuse.AttrOut{})
	}()
	<-started
	select {
	case <-done:
		t.Fatal("a request ended while the kernel still counts it")
	case <-time.After(3 * connCheck):
	}
	if err := os.WriteFile(waiting, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-done:
		if st != gofuse.EINTR {
			t.Fatalf("status %v, want EINTR", st)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a request of an ended connection still runs 30 s later")
	}
	// connGone calls gone after it has cancelled the requests: the
	// request can end before that (it read 0 once in a -race run).
	testkit.WaitFor(t, "gone", 10*time.Second, func() bool { return gone.Load() != 0 })
	if n := gone.Load(); n != 1 {
		t.Fatalf("gone called %d times, want once", n)
	}
}

// TestAbortEndsMountWithoutFusectl: when the kernel ends the FUSE
// connection (umount -f aborts it) while a request waits on a server that
// never answers, the mount notices without fusectl (poll of its /dev/fuse
// descriptor says POLLERR), cancels the request and closes its session,
// and its serve loop ends (regionfs mount exits). Without fusectl it
// retried for ever and the serve loop never ended.
func TestAbortEndsMountWithoutFusectl(t *testing.T) {
	defer func(d string) { fusectlDir = d }(fusectlDir)
	fusectlDir = filepath.Join(t.TempDir(), "no-fusectl")
	seen := make(chan struct{}, 1)
	m := newMountSpace(t, nil, func(m *testMount) {
		m.wrap = func(nc net.Conn) net.Conn { return lostCalls{nc, proto.ProcCreate, seen} }
	})
	// The test unmounts it (go-fuse's Unmount waits for the serve loop,
	// which before the fix never ended).
	srv := m.fsrv
	m.fsrv = nil
	defer unix.Unmount(m.dir, unix.MNT_DETACH)
	// The caller lives on after its create fails (a caller that is gone
	// or killed lets its request go by itself): it says so on stdout,
	// then sleeps.
	cmd := exec.Command("sh", "-c", `echo > "$1"; echo failed; exec sleep 60`, "sh", filepath.Join(m.dir, "held"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	failed := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		failed <- line
	}()
	select {
	case <-seen:
	case line := <-failed:
		t.Fatalf("the shell's create ended before its call was sent: %q", line)
	case <-time.After(30 * time.Second):
		t.Fatal("the CREATE never reached the server")
	}
	// MNT_FORCE aborts a FUSE connection (fuse_umount_begin), busy or not.
	if err := unix.Unmount(m.dir, unix.MNT_FORCE); err != nil && err != unix.EBUSY {
		t.Fatalf("umount -f: %v", err)
	}
	select {
	case <-failed:
	case <-time.After(10 * time.Second):
		t.Fatal("the caller still waits 10 s after the abort")
	}
	served := make(chan struct{})
	go func() {
		srv.Wait()
		close(served)
	}()
	select {
	case <-served:
	case <-time.After(20 * time.Second):
		t.Fatal("the mount's serve loop still runs 20 s after the kernel ended its connection (its request retries for ever)")
	}
}
