package fuse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
)

// heldReplies, while armed, holds the replies the client receives for
// 300 ms from the moment it sends a GETATTR (telling held), and sends a
// REMOVE or RENAME during that time only 100 ms after it is made: the
// server answers the GETATTR first, but the client learns of it only after
// the REMOVE or RENAME is done too.
type heldReplies struct {
	net.Conn
	armed *atomic.Bool
	until *atomic.Int64 // unix nanoseconds
	held  chan<- struct{}
}

func (c heldReplies) Write(b []byte) (int, error) {
	if len(b) > rpc.RecordHeaderSize {
		if h, _, err := rpc.ParseCall(b[rpc.RecordHeaderSize:]); err == nil && h.Prog == proto.ProgNFS {
			switch {
			case h.Proc == proto.ProcGetAttr && c.armed.Load():
				c.until.Store(time.Now().Add(300 * time.Millisecond).UnixNano())
				select {
				case c.held <- struct{}{}:
				default:
				}
			case (h.Proc == proto.ProcRemove || h.Proc == proto.ProcRename) && time.Now().UnixNano() < c.until.Load():
				time.Sleep(100 * time.Millisecond) // the delay this wrapper exists to add
			}
		}
	}
	return c.Conn.Write(b)
}

func (c heldReplies) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if d := time.Until(time.Unix(0, c.until.Load())); d > 0 {
		time.Sleep(d) // the delay this wrapper exists to add
	}
	return n, err
}

// openRacing opens name while the reply to its open's GETATTR is held,
// runs change meanwhile (once the GETATTR is held), and once both are
// done returns what the open file reads.
func openRacing(t *testing.T, armed *atomic.Bool, held <-chan struct{}, name string, change func() error) ([]byte, error) {
	t.Helper()
	opened := make(chan *os.File, 1)
	openErr := make(chan error, 1)
	armed.Store(true)
	go func() {
		f, err := os.Open(name)
		if err != nil {
			openErr <- err
			return
		}
		opened <- f
	}()
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("no GETATTR within 30 s of the open")
	}
	armed.Store(false)
	if err := change(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-openErr:
		return nil, err
	case f := <-opened:
		defer f.Close()
		return readAll(f)
	}
}

func readAll(f *os.File) ([]byte, error) {
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := f.Read(buf)
		out = append(out, buf[:n]...)
		if n == 0 || err != nil {
			if err != nil && err.Error() == "EOF" {
				err = nil
			}
			return out, err
		}
	}
}

// TestOpenRacingRenameOver: a file opened while another process of the
// same mount renames a file over it (or unlinks it) stays readable
// through the open file, as on a local file system, instead of its reads
// failing with ESTALE once the server has dropped it (the open was
// counted only after its GETATTR came back, so the rename or unlink went
// ahead without moving the file aside). An open that loses the race to
// an unlink may fail with ENOENT.
func TestOpenRacingRenameOver(t *testing.T) {
	var armed atomic.Bool
	var until atomic.Int64
	held := make(chan struct{}, 1)
	m := newMountSpace(t, nil, func(m *testMount) {
		m.wrap = func(nc net.Conn) net.Conn { return heldReplies{nc, &armed, &until, held} }
		// The kernel keeps what the test looked up for the whole test:
		// with attributes expired (1 s, on a loaded machine), its open
		// asks GETATTR for the permission check before the OPEN, that
		// GETATTR was the one held, and the rename ran before the open
		// reached the mount (reading the new contents, rightly).
		m.attrTimeout = time.Hour
	})
	// Files are written past the mount, so that their contents are not in
	// its page cache: the open file's reads go to the server.
	c := m.sess.Client(client.Unix("t", 0, 0))
	put := func(name, data string) {
		mode := uint32(0o644)
		cr, err := c.Create(context.Background(), m.f.o.Root, name, proto.Unchecked, proto.Sattr{Mode: &mode})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(context.Background(), cr.FH, 0, []byte(data), proto.FileSync); err != nil {
			t.Fatal(err)
		}
	}
	for i, op := range []string{"rename", "unlink"} {
		target := fmt.Sprintf("target%d", i)
		put(target, "old contents")
		put("tmp", "new contents")
		// The names are known to the kernel, and to the mount (a rename
		// looks its target up again, and the mount answers that from the
		// listing).
		if _, err := os.ReadDir(m.dir); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{target, "tmp"} {
			if _, err := os.Stat(filepath.Join(m.dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		select { // a GETATTR held before this round
		case <-held:
		default:
		}
		got, err := openRacing(t, &armed, held, filepath.Join(m.dir, target), func() error {
			if op == "rename" {
				return os.Rename(filepath.Join(m.dir, "tmp"), filepath.Join(m.dir, target))
			}
			return os.Remove(filepath.Join(m.dir, target))
		})
		if op == "unlink" && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil || string(got) != "old contents" {
			t.Errorf("%s: the open file read %q, %v; want the old contents", op, got, err)
		}
	}
}

// TestOpenWaitingForRemovalEndsWithCaller: an open waiting for an unlink
// or rename over its file that is on its way (a server that does not
// answer) ends when its caller is killed (its context), as the mount's
// calls do, instead of holding the killed process.
func TestOpenWaitingForRemovalEndsWithCaller(t *testing.T) {
	m := newMountSpace(t, nil, func(m *testMount) { m.noFUSE = true })
	n := &node{f: m.f, fh: m.f.o.Root}
	n.removing, n.removed = 1, make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan syscall.Errno, 1)
	go func() {
		_, _, e := n.Open(ctx, syscall.O_RDONLY)
		done <- e
	}()
	cancel()
	select {
	case e := <-done:
		if e != syscall.EINTR {
			t.Fatalf("open whose caller went: %v, want EINTR", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an open whose caller went still waits for the removal")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.opens != 0 {
		t.Fatalf("%d opens counted", n.opens)
	}
}
