package fuse

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
)

// unordered sends the client's calls to proto.ProgRegionFS to a program
// the server does not have: the mount sees a server that is not regionfs.
type unordered struct{ net.Conn }

func (c unordered) Write(b []byte) (int, error) {
	if len(b) > rpc.RecordHeaderSize {
		if h, _, err := rpc.ParseCall(b[rpc.RecordHeaderSize:]); err == nil && h.Prog == proto.ProgRegionFS {
			b = append([]byte(nil), b...)
			// record mark, xid, message type, RPC version, program
			binary.BigEndian.PutUint32(b[rpc.RecordHeaderSize+12:], 0x3fffff00)
		}
	}
	return c.Conn.Write(b)
}

// noRegionFSCreate sends the client's REGIONFS_CREATE and
// REGIONFS_CREATE_VISIBLE calls to a procedure the server does not have:
// the mount sees a regionfs server older than it (asked counts them).
type noRegionFSCreate struct {
	net.Conn
	asked *atomic.Int32
}

func (c noRegionFSCreate) Write(b []byte) (int, error) {
	if len(b) > rpc.RecordHeaderSize {
		if h, _, err := rpc.ParseCall(b[rpc.RecordHeaderSize:]); err == nil && h.Prog == proto.ProgRegionFS && (h.Proc == proto.ProcRegionFSCreate || h.Proc == proto.ProcRegionFSCreateVisible) {
			c.asked.Add(1)
			b = append([]byte(nil), b...)
			// record mark, xid, message type, RPC version, program, version, procedure
			binary.BigEndian.PutUint32(b[rpc.RecordHeaderSize+20:], 0x7fff)
		}
	}
	return c.Conn.Write(b)
}

// readAs reads name (in the root) past the mount, as uid/gid: what
// another client sees.
func (m *testMount) readAs(t *testing.T, uid uint32, name string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, m.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl := c.WithAuth(client.Unix("other", uid, uid))
	lr, err := cl.Lookup(ctx, m.f.o.Root, name)
	if err != nil {
		return nil, err
	}
	rr, err := cl.Read(ctx, lr.FH, 0, 4096)
	if err != nil {
		return nil, err
	}
	return rr.Data, nil
}

// TestExclusiveCreateMode: a file made by open(O_CREAT|O_EXCL) has the
// mode the application asked for on the server once the open returns:
// another client (another uid, past the mount) reads it at once, where it
// saw mode 0 and got EACCES until the mount's close sent the mode (the
// NFSv3 EXCLUSIVE CREATE carries no attributes). On regionfs the mode
// travels in the create itself (REGIONFS_CREATE): no SETATTR follows, so
// a file written and closed costs none; a regionfs server without that
// procedure and other servers get a SETATTR before the open returns, as
// Linux's NFS client sends it.
func TestExclusiveCreateMode(t *testing.T) {
	// check opens a in m with O_EXCL, writes through it and checks what
	// the server and another client see before the close; it returns the
	// SETATTRs the open, the write and the close sent.
	check := func(t *testing.T, m *testMount, name string) uint64 {
		t.Helper()
		setattrs := m.sess.Calls()["SETATTR"].N
		f, err := os.OpenFile(filepath.Join(m.dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if a := m.serverAttr(t, name); a.Mode != 0o644 {
			t.Fatalf("mode on the server once open returned: %04o, want 0644", a.Mode)
		}
		if a := m.serverAttr(t, name); time.Since(time.Unix(int64(a.Mtime.Sec), 0)) > time.Hour {
			t.Fatalf("mtime on the server %v: not the server's clock (a verifier?)", a.Mtime)
		}
		if _, err := m.readAs(t, 4321, name); err != nil {
			t.Fatalf("another client reading the file once open returned: %v", err)
		}
		if _, err := f.WriteString("data"); err != nil {
			t.Fatal(err)
		}
		if st, err := f.Stat(); err != nil || st.Mode().Perm() != 0o644 {
			t.Fatalf("fstat through the mount: %v, %v; want mode 0644", st.Mode(), err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got, err := m.readAs(t, 4321, name); err != nil || string(got) != "data" {
			t.Fatalf("another client reading the file after close: %q, %v", got, err)
		}
		return m.sess.Calls()["SETATTR"].N - setattrs
	}
	t.Run("regionfs", func(t *testing.T) {
		m := newMount(t)
		if n := check(t, m, "a"); n != 0 {
			t.Fatalf("%d SETATTRs for an O_EXCL open, a write and a close, want 0 (the mode in the create)", n)
		}
		// An owner given through the file (cp -a) still goes with the
		// data, in one SETATTR at close.
		f, err := os.OpenFile(filepath.Join(m.dir, "b"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString("data"); err != nil {
			t.Fatal(err)
		}
		calls := setattrsSent(m.sess.Calls())
		if err := f.Chown(1234, 1234); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if a := m.serverAttr(t, "b"); a.Mode != 0o640 || a.Size != 4 || a.UID != 1234 {
			t.Fatalf("on the server after close: mode %04o size %d uid %d, want 0640, 4 and 1234", a.Mode, a.Size, a.UID)
		}
		if n := setattrsSent(m.sess.Calls()) - calls; n != 1 {
			t.Fatalf("%d SETATTRs for the chown and the close, want 1 (the owner with the data)", n)
		}
	})
	t.Run("regionfs without REGIONFS_CREATE", func(t *testing.T) {
		var asked atomic.Int32
		m := newMountSpace(t, nil, func(m *testMount) {
			m.wrap = func(nc net.Conn) net.Conn { return noRegionFSCreate{nc, &asked} }
		})
		if n := check(t, m, "a"); n != 1 {
			t.Fatalf("%d SETATTRs, want 1 (the mode, before the open returns)", n)
		}
		check(t, m, "b")
		if n := asked.Load(); n != 2 {
			t.Fatalf("REGIONFS_CREATE_VISIBLE and REGIONFS_CREATE asked %d times of a server without them, want each once per connection", n)
		}
	})
	t.Run("other server", func(t *testing.T) {
		m := newMountSpace(t, nil, func(m *testMount) {
			m.wrap = func(nc net.Conn) net.Conn { return unordered{nc} }
		})
		if n := check(t, m, "a"); n != 1 {
			t.Fatalf("%d SETATTRs, want 1 (the mode, before the open returns)", n)
		}
	})
}

// noPostOpSetAttr drops the post-operation attributes from the server's
// SETATTR replies (RFC 1813 lets a server leave them out): a server that
// does not say what a SETATTR left.
type noPostOpSetAttr struct {
	net.Conn
	mu   sync.Mutex
	xids map[uint32]bool // the SETATTR calls sent
	out  []byte          // of the record being read
}

func (c *noPostOpSetAttr) Write(b []byte) (int, error) {
	if len(b) > rpc.RecordHeaderSize {
		if h, _, err := rpc.ParseCall(b[rpc.RecordHeaderSize:]); err == nil && h.Prog == proto.ProgNFS && h.Proc == proto.ProcSetAttr {
			c.mu.Lock()
			c.xids[h.XID] = true
			c.mu.Unlock()
		}
	}
	return c.Conn.Write(b)
}

func (c *noPostOpSetAttr) Read(b []byte) (int, error) {
	if len(c.out) == 0 {
		rec, err := rpc.ReadRecord(c.Conn, nil, 64<<20)
		if err != nil {
			return 0, err
		}
		rec = c.strip(rec)
		c.out = binary.BigEndian.AppendUint32(nil, uint32(len(rec))|1<<31)
		c.out = append(c.out, rec...)
	}
	n := copy(b, c.out)
	c.out = c.out[n:]
	return n, nil
}

// strip removes the post-operation attributes of a successful SETATTR's
// reply: status, then wcc_data (pre_op_attr, post_op_attr).
func (c *noPostOpSetAttr) strip(rec []byte) []byte {
	xid, body, err := rpc.ParseReply(rec)
	c.mu.Lock()
	ours := c.xids[xid]
	delete(c.xids, xid)
	c.mu.Unlock()
	if err != nil || !ours || len(body) < 8 || binary.BigEndian.Uint32(body) != 0 {
		return rec
	}
	at := len(rec) - len(body) + 4 // pre_op_attr
	if binary.BigEndian.Uint32(rec[at:]) == 1 {
		at += 4 + 24
	} else {
		at += 4
	}
	const fattr3 = 84
	if len(rec) < at+4+fattr3 || binary.BigEndian.Uint32(rec[at:]) != 1 {
		return rec
	}
	binary.BigEndian.PutUint32(rec[at:], 0)
	return append(rec[:at+4], rec[at+4+fattr3:]...)
}

// TestExclusiveCreateFallbackAttrs: on a server without REGIONFS_CREATE
// whose SETATTR reply does not say what it left, the attributes an O_EXCL
// open hands the kernel are the file's after that SETATTR (asked for),
// not the CREATE's with the mode set over them: those were handed with a
// zero timeout meant as "do not cache", which go-fuse turns into its
// default (a second), and fstat right after the open showed the CREATE's
// times instead of the ones the SETATTR set.
func TestExclusiveCreateFallbackAttrs(t *testing.T) {
	m := newMountSpace(t, nil, func(m *testMount) {
		m.attrTimeout = time.Minute
		m.wrap = func(nc net.Conn) net.Conn {
			return &noPostOpSetAttr{Conn: unordered{nc}, xids: map[uint32]bool{}}
		}
	})
	f, err := os.OpenFile(filepath.Join(m.dir, "x"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	a := m.serverAttr(t, "x")
	if st.Mode().Perm() != 0o640 || !st.ModTime().Equal(a.Mtime.Go()) {
		t.Errorf("fstat after the O_EXCL open: mode %v mtime %v, want 0640 and the server's %v", st.Mode(), st.ModTime(), a.Mtime.Go())
	}
}
