package fuse

import (
	"cmp"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/testkit"
)

// lostReply loses the reply to the first call of a procedure sent while
// armed: once that call is out (sent is told), reads of its connection
// wait for lose to close, then fail as a dropped connection does.
type lostReply struct {
	net.Conn
	prog  uint32         // the procedure's program (0: NFS)
	proc  *atomic.Uint32 // the procedure; 0 (NULL): not armed
	sent  chan<- struct{}
	lose  *atomic.Pointer[chan struct{}]
	fails atomic.Bool
}

func (c *lostReply) Write(b []byte) (int, error) {
	if p := c.proc.Load(); p != 0 && len(b) > rpc.RecordHeaderSize {
		if h, _, err := rpc.ParseCall(b[rpc.RecordHeaderSize:]); err == nil && h.Prog == cmp.Or(c.prog, proto.ProgNFS) && h.Proc == p && c.proc.CompareAndSwap(p, 0) {
			c.fails.Store(true)
			n, err := c.Conn.Write(b)
			c.sent <- struct{}{}
			return n, err
		}
	}
	return c.Conn.Write(b)
}

func (c *lostReply) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.fails.Load() {
		<-*c.lose.Load()
		return 0, io.EOF
	}
	return n, err
}

// TestChangeReplayedAfterRestart: the server makes a change and is
// restarted before its reply reaches the mount; the mount sends the change
// again and the new server, which has not kept the old one's replies,
// finds its effect (REMOVE: the name is gone; MKDIR: it is there). The
// system call succeeds, as the change was made, instead of failing with
// ENOENT or EEXIST (seen with kill -9 of a server under writers that
// unlink their files).
func TestChangeReplayedAfterRestart(t *testing.T) {
	var proc atomic.Uint32
	var lose atomic.Pointer[chan struct{}]
	sent := make(chan struct{}, 1)
	m := newMountSpace(t, nil, func(m *testMount) {
		m.wrap = func(nc net.Conn) net.Conn { return &lostReply{Conn: nc, proc: &proc, sent: sent, lose: &lose} }
	})
	// exists looks name up past the mount: whether the server has it.
	exists := func(name string) bool {
		nc, err := net.DialTimeout("tcp", m.addr, 5*time.Second)
		if err != nil {
			return false
		}
		defer nc.Close()
		c := client.NewConn(nc).WithAuth(client.Unix("t", 0, 0))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = c.Lookup(ctx, m.f.o.Root, name)
		return err == nil
	}
	p := func(name string) string { return filepath.Join(m.dir, name) }
	var open *os.File // the file unlinked while open
	defer func() {
		if open != nil {
			open.Close()
		}
	}()
	for _, tc := range []struct {
		op    string
		proc  uint32
		setup func() error
		do    func() error
		made  func() bool
	}{
		{"unlink", proto.ProcRemove,
			func() error { return os.WriteFile(p("f"), []byte("x"), 0o644) },
			func() error { return os.Remove(p("f")) },
			func() bool { return !exists("f") }},
		{"rmdir", proto.ProcRmdir,
			func() error { return os.Mkdir(p("d"), 0o755) },
			func() error { return os.Remove(p("d")) },
			func() bool { return !exists("d") }},
		{"mkdir", proto.ProcMkdir,
			func() error { return nil },
			func() error { return os.Mkdir(p("e"), 0o755) },
			func() bool { return exists("e") }},
		{"rename", proto.ProcRename,
			func() error { return os.WriteFile(p("g"), []byte("x"), 0o644) },
			func() error { return os.Rename(p("g"), p("h")) },
			func() bool { return exists("h") }},
		{"link", proto.ProcLink,
			func() error { return os.WriteFile(p("i"), []byte("x"), 0o644) },
			func() error { return os.Link(p("i"), p("j")) },
			func() bool { return exists("j") }},
		{"unlink of an open file", proto.ProcRename, // moved aside
			func() (err error) {
				if err := os.WriteFile(p("o"), []byte("x"), 0o644); err != nil {
					return err
				}
				open, err = os.Open(p("o"))
				return err
			},
			func() error { return os.Remove(p("o")) },
			func() bool { return !exists("o") }},
		{"symlink", proto.ProcSymlink,
			func() error { return nil },
			func() error { return os.Symlink("target", p("k")) },
			func() bool { return exists("k") }},
	} {
		if err := tc.setup(); err != nil {
			t.Fatal(err)
		}
		ch := make(chan struct{})
		lose.Store(&ch)
		proc.Store(tc.proc)
		done := make(chan error, 1)
		go func() { done <- tc.do() }()
		select {
		case <-sent:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no %s call within 30 s", tc.op, proto.ProcNames[tc.proc])
		}
		testkit.WaitFor(t, tc.op+" made by the server", 30*time.Second, tc.made)
		m.stopServer()
		m.startServer()
		close(ch)
		if err := <-done; err != nil {
			t.Errorf("%s: %v", tc.op, err)
		}
		if !tc.made() {
			t.Errorf("%s: not made", tc.op)
		}
	}
}

// TestExclusiveCreateReplayedAfterRestart: the server makes the file of an
// open(O_CREAT|O_EXCL) and is restarted before its reply reaches the
// mount; the create the mount sends again finds the file. The open
// succeeds (its own call made the file): an exclusive create with the
// mount's verifier, where a GUARDED one failed with EEXIST. The file then
// has the mode and data the application gave it, and a second O_EXCL
// open of the name still fails with EEXIST. Run with regionfs's
// REGIONFS_CREATE (the file made has its mode at once, before the reply)
// and with the NFSv3 EXCLUSIVE CREATE and SETATTR of a server without it.
func TestExclusiveCreateReplayedAfterRestart(t *testing.T) {
	for _, tc := range []struct {
		name       string
		prog, proc uint32
		hide       bool // the server seems to have no REGIONFS_CREATE
		modeAtOnce bool
	}{
		{"REGIONFS_CREATE_VISIBLE", proto.ProgRegionFS, proto.ProcRegionFSCreateVisible, false, true},
		{"NFSv3 EXCLUSIVE", proto.ProgNFS, proto.ProcCreate, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var proc atomic.Uint32
			var lose atomic.Pointer[chan struct{}]
			var asked atomic.Int32
			sent := make(chan struct{}, 1)
			m := newMountSpace(t, nil, func(m *testMount) {
				m.wrap = func(nc net.Conn) net.Conn {
					if tc.hide {
						nc = noRegionFSCreate{nc, &asked}
					}
					return &lostReply{Conn: nc, prog: tc.prog, proc: &proc, sent: sent, lose: &lose}
				}
			})
			// look finds name past the mount.
			look := func(name string) (*proto.LookupRes, error) {
				nc, err := net.DialTimeout("tcp", m.addr, 5*time.Second)
				if err != nil {
					return nil, err
				}
				defer nc.Close()
				c := client.NewConn(nc).WithAuth(client.Unix("t", 0, 0))
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				return c.Lookup(ctx, m.f.o.Root, name)
			}
			name := filepath.Join(m.dir, "x")
			ch := make(chan struct{})
			lose.Store(&ch)
			proc.Store(tc.proc)
			done := make(chan error, 1)
			go func() {
				f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
				if err != nil {
					done <- err
					return
				}
				if _, err := f.WriteString("mine"); err != nil {
					f.Close()
					done <- err
					return
				}
				done <- f.Close()
			}()
			select {
			case <-sent:
			case <-time.After(30 * time.Second):
				t.Fatal("no create within 30 s")
			}
			var made *proto.LookupRes
			testkit.WaitFor(t, "the file made by the server", 30*time.Second, func() bool {
				lr, err := look("x")
				made = lr
				return err == nil
			})
			if tc.modeAtOnce && (made.Attr == nil || made.Attr.Mode != 0o640) {
				t.Fatalf("the file made by REGIONFS_CREATE, before its reply: %+v, want mode 0640", made.Attr)
			}
			m.stopServer()
			m.startServer()
			close(ch)
			if err := <-done; err != nil {
				t.Fatalf("open(O_EXCL) whose create was sent again after a server restart: %v", err)
			}
			lr, err := look("x")
			if err != nil {
				t.Fatal(err)
			}
			if lr.Attr == nil || lr.Attr.Mode != 0o640 || lr.Attr.Size != 4 {
				t.Fatalf("file on the server: %+v, want mode 0640 and 4 bytes", lr.Attr)
			}
			if got, err := os.ReadFile(name); err != nil || string(got) != "mine" {
				t.Fatalf("read back %q, %v", got, err)
			}
			if _, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("a second O_EXCL open: %v, want EEXIST", err)
			}
		})
	}
}
