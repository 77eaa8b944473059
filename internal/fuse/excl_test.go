package fuse

import (
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"testing"

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

// TestExclusiveCreateMode: a file made by open(O_CREAT|O_EXCL) gets the
// mode the application asked for. On regionfs the mode travels with the
// file's data (the server keeps the file private, mode 0, meanwhile; the
// mount shows the mode at once, and another open of the file sends it
// first); on another server it is set before the open returns.
func TestExclusiveCreateMode(t *testing.T) {
	t.Run("regionfs", func(t *testing.T) {
		m := newMount(t)
		name := filepath.Join(m.dir, "a")
		f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString("data"); err != nil {
			t.Fatal(err)
		}
		if st, err := f.Stat(); err != nil || st.Mode().Perm() != 0o640 {
			t.Fatalf("fstat through the mount: %v, %v; want mode 0640", st.Mode(), err)
		}
		if a := m.serverAttr(t, "a"); a.Mode != 0 {
			t.Fatalf("mode on the server before close: %04o, want 0 (private until the mode is sent)", a.Mode)
		}
		calls := m.sess.Calls()["SETATTR"].N
		// An owner given through the file (cp -a) goes with the mode.
		if err := f.Chown(1234, 1234); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if a := m.serverAttr(t, "a"); a.Mode != 0o640 || a.Size != 4 || a.UID != 1234 {
			t.Fatalf("on the server after close: mode %04o size %d uid %d, want 0640, 4 and 1234", a.Mode, a.Size, a.UID)
		}
		if n := m.sess.Calls()["SETATTR"].N - calls; n != 1 {
			t.Fatalf("%d SETATTRs for the chown and the close, want 1 (the mode and owner with the data)", n)
		}

		// Another open of a file still private on the server sends its mode.
		g, err := os.OpenFile(filepath.Join(m.dir, "b"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o604)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		r, err := os.Open(filepath.Join(m.dir, "b"))
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		if a := m.serverAttr(t, "b"); a.Mode != 0o604 {
			t.Fatalf("mode on the server after another open: %04o, want 0604", a.Mode)
		}
	})
	t.Run("other server", func(t *testing.T) {
		m := newMountSpace(t, nil, func(m *testMount) {
			m.wrap = func(nc net.Conn) net.Conn { return unordered{nc} }
		})
		f, err := os.OpenFile(filepath.Join(m.dir, "a"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if a := m.serverAttr(t, "a"); a.Mode != 0o640 {
			t.Fatalf("mode on the server once open returned: %04o, want 0640", a.Mode)
		}
	})
}
