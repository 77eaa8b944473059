package fuse

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/testkit"
)

// slowCalls delays the client's calls of one NFS procedure on their way
// out; seen (when not nil) is told of each such call as its delay begins.
type slowCalls struct {
	net.Conn
	proc  uint32
	delay time.Duration
	seen  chan<- struct{}
}

func (c slowCalls) Write(b []byte) (int, error) {
	if len(b) > rpc.RecordHeaderSize {
		if h, _, err := rpc.ParseCall(b[rpc.RecordHeaderSize:]); err == nil && h.Prog == proto.ProgNFS && h.Proc == c.proc {
			if c.seen != nil {
				select {
				case c.seen <- struct{}{}:
				default:
				}
			}
			time.Sleep(c.delay) // the delay this wrapper exists to add
		}
	}
	return c.Conn.Write(b)
}

// TestUnlinkRacingLastClose: a file unlinked while open is renamed aside
// until its last close; when that close ends while the rename is on its
// way (the kernel releases a file after close(2) returns), the temporary
// name still goes.
func TestUnlinkRacingLastClose(t *testing.T) {
	renaming := make(chan struct{}, 1)
	m := newMountSpace(t, nil, func(m *testMount) {
		m.wrap = func(nc net.Conn) net.Conn { return slowCalls{nc, proto.ProcRename, 300 * time.Millisecond, renaming} }
	})
	name := filepath.Join(m.dir, "f")
	if err := os.WriteFile(name, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	removed := make(chan error, 1)
	go func() { removed <- os.Remove(name) }()
	select { // the RENAME aside is on its way
	case <-renaming:
	case <-time.After(30 * time.Second):
		t.Fatal("no RENAME aside within 30 s of the unlink")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the temporary name to go", 10*time.Second, func() bool {
		left, _ := filepath.Glob(filepath.Join(m.dir, ".regionfs-unlinked-*"))
		return len(left) == 0
	})
}

// TestCloseNotInterrupted: signals reaching a thread blocked in close(2)
// (Go's runtime sends its threads SIGURG all the time) do not make the
// close fail: the FUSE flush waits for its COMMIT like a hard NFS mount.
func TestCloseNotInterrupted(t *testing.T) {
	m := newMountSpace(t, nil, func(m *testMount) {
		m.wrap = func(nc net.Conn) net.Conn { return slowCalls{nc, proto.ProcCommit, 300 * time.Millisecond, nil} }
	})
	f, err := os.Create(filepath.Join(m.dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 4<<20)); err != nil {
		t.Fatal(err)
	}
	tid := make(chan int, 1)
	closed := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid <- syscall.Gettid()
		closed <- f.Close()
	}()
	thread := <-tid
	for {
		select {
		case err := <-closed:
			if err != nil {
				t.Fatalf("close while signalled: %v", err)
			}
			got, err := os.ReadFile(filepath.Join(m.dir, "f"))
			if err != nil || len(got) != 4<<20 {
				t.Fatalf("after close: %d bytes, %v", len(got), err)
			}
			return
		case <-time.After(20 * time.Millisecond):
			syscall.Tgkill(os.Getpid(), thread, syscall.SIGURG)
		}
	}
}
