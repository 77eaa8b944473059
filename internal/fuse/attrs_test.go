package fuse

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
)

// serverAttr reads a file's attributes (name: a slash-separated path)
// with a client of its own (what another machine would see).
func (m *testMount) serverAttr(t *testing.T, name string) proto.Attr {
	t.Helper()
	ctx := context.Background()
	c, err := client.Dial(ctx, m.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl := c.WithAuth(client.Unix("t", 0, 0))
	root, _, err := cl.Mount(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	fh := root
	for _, part := range strings.Split(name, "/") {
		res, err := cl.Lookup(ctx, fh, part)
		if err != nil {
			t.Fatalf("lookup %s: %v", name, err)
		}
		fh = res.FH
	}
	ga, err := cl.GetAttr(ctx, fh)
	if err != nil {
		t.Fatal(err)
	}
	return ga.Attr
}

// TestCopyAttrsWithData: what `cp -a` does to each file (create, write,
// then set times, owner and mode through the open file, close) costs one
// SETATTR, sent at close after the data (within REGIONFS_CLOSE on a
// regionfs server: setattrsSent): the changes are seen at once
// locally, on the server after close, and the times set are the file's
// (the data landed before them).
func TestCopyAttrsWithData(t *testing.T) {
	m := newMount(t)
	p := filepath.Join(m.dir, "copied")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data of a copied file")); err != nil {
		t.Fatal(err)
	}
	before := m.sess.Calls()
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC)
	atime := time.Date(2021, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(p, atime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := f.Chown(1234, 5678); err != nil {
		t.Fatal(err)
	}
	if err := f.Chmod(0o640); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if !st.ModTime().Equal(mtime) || st.Mode().Perm() != 0o640 || st.Size() != 21 {
		t.Errorf("stat before close: mtime %v mode %v size %d, want %v 0640 21", st.ModTime(), st.Mode(), st.Size(), mtime)
	}
	mid := m.sess.Calls()
	if n := setattrsSent(mid) - setattrsSent(before); n != 0 {
		t.Errorf("%d SETATTR before close, want them sent with the data", n)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	after := m.sess.Calls()
	if n := setattrsSent(after) - setattrsSent(before); n != 1 {
		t.Errorf("%d SETATTR for times, owner and mode, want 1", n)
	}
	a := m.serverAttr(t, "copied")
	if got := a.Mtime.Go(); !got.Equal(mtime) {
		t.Errorf("server mtime %v, want %v (the data landed after the times?)", got, mtime)
	}
	if got := a.Atime.Go(); !got.Equal(atime) {
		t.Errorf("server atime %v, want %v", got, atime)
	}
	if a.UID != 1234 || a.GID != 5678 || a.Mode&0o7777 != 0o640 || a.Size != 21 {
		t.Errorf("server attrs uid %d gid %d mode %o size %d, want 1234 5678 0640 21", a.UID, a.GID, a.Mode, a.Size)
	}
}

// setattrsSent counts the SETATTRs among calls, those made within a
// REGIONFS_CLOSE (pipeline.go) included.
func setattrsSent(calls map[string]client.CallStat) uint64 {
	return calls["SETATTR"].N + calls["REGIONFS_CLOSE"].N
}

// TestWriteAfterTimesMovesMtime: a write after the times were set (with
// the change still waiting for the data) moves mtime past them, as on a
// local file: the change is sent before that write.
func TestWriteAfterTimesMovesMtime(t *testing.T) {
	m := newMount(t)
	p := filepath.Join(m.dir, "touched")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(" second")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	a := m.serverAttr(t, "touched")
	if got := a.Mtime.Go(); !got.After(old.Add(time.Hour)) {
		t.Errorf("server mtime %v after a write that followed setting it to %v: the write did not move it", got, old)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "first second" {
		t.Errorf("read back %q %v", b, err)
	}
}

// TestCopyCallsPerFile is the round-trip and commit guard of `cp -a`
// through the mount (counts, not timings): per small file copied, the
// mount makes one CREATE (REGIONFS_CREATE_VISIBLE, answered before its
// sync) and one REGIONFS_CLOSE (the WRITE, the SETATTR of times, owner
// and mode together, and the COMMIT in one call: pipeline.go), and the
// server one durable commit (the data and the change together,
// writeback.settleAttr, whose sync makes the create durable too; two
// when the CREATE waited for its own): no LOOKUP, GETATTR or
// ACCESS on the way. The directory's own calls are counted apart (a copy
// of the empty directory). Two round trips per file, CREATE's and the
// close's (client.Session.Turns; plus the one question whether the
// server orders a file's calls). Replies are held from a WRITE until the COMMIT
// after it is sent (heldToCommit), so that calls sent behind the WRITE
// without waiting for it are seen as such however slowly the test
// machine runs the client (a 5 ms delay was not enough under -race on a
// loaded machine: 42 round trips counted in 1 run of 5); the caches keep
// a minute, so that the slower copy meets no expired entry. It fails when
// a change adds a call, a round trip or a commit, and the copy must read
// back equal, times included.
func TestCopyCallsPerFile(t *testing.T) {
	cp, err := exec.LookPath("cp")
	if err != nil {
		t.Skipf("cp not found: %v", err)
	}
	m := newMountSpace(t, nil, func(m *testMount) {
		m.wrap = func(nc net.Conn) net.Conn { return &heldToCommit{Conn: nc, most: time.Second} }
		m.attrTimeout = time.Minute
	})
	src := t.TempDir()
	if err := os.Mkdir(filepath.Join(src, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(src, "tree")
	if err := os.Mkdir(tree, 0o750); err != nil {
		t.Fatal(err)
	}
	const files = 20
	mtime := time.Date(2019, 3, 4, 5, 6, 7, 8000, time.UTC)
	for i := range files {
		p := filepath.Join(tree, fmt.Sprintf("f%02d", i))
		if err := os.WriteFile(p, bytes.Repeat([]byte{byte('a' + i)}, 100+i*400), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	var turns, writes uint64
	copyCounts := func(name string) (map[string]uint64, uint64) {
		t.Helper()
		calls, commits, turns0, writes0 := m.sess.Calls(), m.fs.Stats().Commits, m.sess.Turns(), m.sess.Writes()
		defer func() { turns, writes = m.sess.Turns()-turns0, m.sess.Writes()-writes0 }()
		if out, err := exec.Command(cp, "-a", filepath.Join(src, name), m.dir).CombinedOutput(); err != nil {
			t.Fatalf("cp -a %s: %v %s", name, err, out)
		}
		d := map[string]uint64{}
		for proc, c := range m.sess.Calls() {
			if n := c.N - calls[proc].N; n > 0 {
				d[proc] = n
			}
		}
		return d, m.fs.Stats().Commits - commits
	}
	dirCalls, dirCommits := copyCounts("empty")
	dirTurns, dirWrites := turns, writes
	treeCalls, treeCommits := copyCounts("tree")
	if got := turns - dirTurns; got > 2*files+1 {
		t.Errorf("%d files copied by cp -a took %d round trips beyond an empty directory's %d, want at most %d (two per file, one to ask whether the server orders a file's calls)", files, got, dirTurns, 2*files+1)
	}
	// The close's WRITE, SETATTR and COMMIT leave in one write, as one
	// call (pipeline.go): with the CREATE, two writes to the connection
	// per file (four when each call was written by itself).
	if got := writes - dirWrites; got > 2*files+1 {
		t.Errorf("%d files copied by cp -a took %d writes to the connection beyond an empty directory's %d, want at most %d (two per file, one to ask whether the server orders a file's calls)", files, got, dirWrites, 2*files+1)
	}
	perFile := map[string]uint64{}
	for proc, n := range treeCalls {
		if n -= dirCalls[proc]; n != 0 {
			perFile[proc] = n
		}
	}
	want := map[string]uint64{"CREATE": files, "REGIONFS_CLOSE": files}
	if diff := cmp.Diff(want, perFile); diff != "" {
		t.Errorf("NFS calls for %d files copied by cp -a (tree %v, minus an empty directory's %v) (-want +got):\n%s", files, treeCalls, dirCalls, diff)
	}
	// The tree's directory is made first (MKDIR, durable), so every
	// file's create may be answered before its sync.
	if got := treeCommits - dirCommits; got != files {
		t.Errorf("%d files copied by cp -a took %d durable commits beyond an empty directory's %d, want %d (one per file)", files, got, dirCommits, files)
	}
	for i := range files {
		name := fmt.Sprintf("f%02d", i)
		b, err := os.ReadFile(filepath.Join(m.dir, "tree", name))
		if err != nil || !bytes.Equal(b, bytes.Repeat([]byte{byte('a' + i)}, 100+i*400)) {
			t.Fatalf("%s reads back %d bytes, %v", name, len(b), err)
		}
		a := m.serverAttr(t, "tree/"+name)
		if got, w := a.Mtime.Go(), mtime.Add(time.Duration(i)*time.Second); !got.Equal(w) || a.Mode&0o7777 != 0o640 {
			t.Errorf("%s on the server: mtime %v mode %o, want %v 0640", name, got, a.Mode&0o7777, w)
		}
	}
}

// heldToCommit holds what the connection reads from the moment it sends
// a WRITE until it sends a COMMIT (or for most, if none comes): a call
// sent behind the WRITE without waiting for its reply finds the WRITE
// still waiting, however late it is sent, and a client that waits for the
// WRITE's reply before its next call waits most.
type heldToCommit struct {
	net.Conn
	most time.Duration
	mu   sync.Mutex
	held chan struct{} // closed at the COMMIT; nil while nothing is held
}

func (c *heldToCommit) Write(b []byte) (int, error) {
	if len(b) > rpc.RecordHeaderSize {
		if h, _, err := rpc.ParseCall(b[rpc.RecordHeaderSize:]); err == nil && h.Prog == proto.ProgNFS {
			c.mu.Lock()
			switch {
			case h.Proc == proto.ProcWrite && c.held == nil:
				c.held = make(chan struct{})
			case h.Proc == proto.ProcCommit && c.held != nil:
				close(c.held)
				c.held = nil
			}
			c.mu.Unlock()
		}
	}
	return c.Conn.Write(b)
}

func (c *heldToCommit) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	held := c.held
	c.mu.Unlock()
	if held != nil {
		select {
		case <-held:
		case <-time.After(c.most):
		}
	}
	return n, err
}

// TestCopyAttrsAfterRestart: the server restarts during a small file's
// close. On a regionfs server the close is one REGIONFS_CLOSE (its
// UNSTABLE data, the SETATTR that carries its times and mode, the
// COMMIT), restarted while on its way: it gets no reply, is sent again to
// the restarted server, and the server ends with the data and the times
// and mode set. On one without that procedure (noRegionFSClose) the three
// go as a batch, and the restart comes after the UNSTABLE data and before
// the SETATTR (the restart writes the data but changes the write
// verifier): the COMMIT after the SETATTR finds the verifier changed, the
// data is written again (moving mtime on), and the change is sent again
// after it, so the server ends with the data and the times set.
func TestCopyAttrsAfterRestart(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(map[bool]string{false: "REGIONFS_CLOSE", true: "batch"}[batch], func(t *testing.T) {
			copyAcrossRestart(t, batch)
		})
	}
}

func copyAcrossRestart(t *testing.T, batch bool) {
	setattr := make(chan struct{}, 1)
	var asked atomic.Int32
	m := newMountSpace(t, nil, func(m *testMount) {
		m.wrap = func(nc net.Conn) net.Conn {
			if batch {
				return slowCalls{noRegionFSClose{nc, &asked}, proto.ProcSetAttr, 500 * time.Millisecond, setattr}
			}
			return slowClose{nc, 500 * time.Millisecond, setattr}
		}
	})
	p := filepath.Join(m.dir, "copied")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("data of a file copied while the server restarts")
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2018, 1, 2, 3, 4, 5, 6000, time.UTC)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := f.Chmod(0o640); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- f.Close() }()
	select {
	case <-setattr:
	case err := <-closed:
		t.Fatalf("close returned (%v) before sending the change", err)
	case <-time.After(time.Minute):
		t.Fatal("no change sent within a minute of close")
	}
	m.stopServer()
	m.startServer()
	if err := <-closed; err != nil {
		t.Fatalf("close across a server restart: %v", err)
	}
	if got := m.serverContent(t, "copied"); !bytes.Equal(got, data) {
		t.Errorf("the server holds %q, want %q", got, data)
	}
	a := m.serverAttr(t, "copied")
	if got := a.Mtime.Go(); !got.Equal(mtime) || a.Mode&0o7777 != 0o640 {
		t.Errorf("server mtime %v mode %o, want %v 0640 (the data written again after the times?)", got, a.Mode&0o7777, mtime)
	}
	if batch && asked.Load() == 0 {
		t.Error("the mount did not ask for REGIONFS_CLOSE")
	}
}

// noRegionFSClose sends the client's REGIONFS_CLOSE calls to a procedure
// the server does not have (as noRegionFSCreate does REGIONFS_CREATE):
// the mount sees a regionfs server older than it (asked counts them).
type noRegionFSClose struct {
	net.Conn
	asked *atomic.Int32
}

func (c noRegionFSClose) Write(b []byte) (int, error) {
	if len(b) > rpc.RecordHeaderSize {
		if h, _, err := rpc.ParseCall(b[rpc.RecordHeaderSize:]); err == nil && h.Prog == proto.ProgRegionFS && h.Proc == proto.ProcRegionFSClose {
			c.asked.Add(1)
			b = append([]byte(nil), b...)
			// record mark, xid, message type, RPC version, program, version, procedure
			binary.BigEndian.PutUint32(b[rpc.RecordHeaderSize+20:], 0x7fff)
		}
	}
	return c.Conn.Write(b)
}

// TestCloseWithoutRegionFSClose: against a regionfs server without
// REGIONFS_CLOSE, the close of a small file with its times set through the
// open file sends the WRITE, the SETATTR and the COMMIT as before, and asks
// for the procedure once per connection.
func TestCloseWithoutRegionFSClose(t *testing.T) {
	var asked atomic.Int32
	m := newMountSpace(t, nil, func(m *testMount) {
		m.wrap = func(nc net.Conn) net.Conn { return noRegionFSClose{nc, &asked} }
	})
	before := m.sess.Calls()
	mtime := time.Date(2017, 6, 5, 4, 3, 2, 1000, time.UTC)
	const files = 3
	for i := range files {
		name := fmt.Sprintf("f%d", i)
		f, err := os.OpenFile(filepath.Join(m.dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("data of " + name); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f.Name(), mtime, mtime); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if a := m.serverAttr(t, name); !a.Mtime.Go().Equal(mtime) || a.Size != uint64(len("data of "+name)) {
			t.Fatalf("%s on the server: mtime %v size %d, want %v %d", name, a.Mtime.Go(), a.Size, mtime, len("data of "+name))
		}
	}
	after := m.sess.Calls()
	for _, p := range []string{"WRITE", "SETATTR", "COMMIT"} {
		if n := after[p].N - before[p].N; n != files {
			t.Errorf("%d %s calls for %d files closed, want one each", n, p, files)
		}
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("REGIONFS_CLOSE asked %d times of a server without it, want once per connection", n)
	}
}

// slowClose delays the writes of REGIONFS_CLOSE calls (as slowCalls
// does an NFS procedure's), saying so on seen first.
type slowClose struct {
	net.Conn
	delay time.Duration
	seen  chan<- struct{}
}

func (c slowClose) Write(b []byte) (int, error) {
	if len(b) > rpc.RecordHeaderSize {
		if h, _, err := rpc.ParseCall(b[rpc.RecordHeaderSize:]); err == nil && h.Prog == proto.ProgRegionFS && h.Proc == proto.ProcRegionFSClose {
			select {
			case c.seen <- struct{}{}:
			default:
			}
			time.Sleep(c.delay) // the delay this wrapper exists to add
		}
	}
	return c.Conn.Write(b)
}

// TestChmodDuringAttrsSend: a change made while the deferred one is on
// its way (a close sending it) is not lost when that send ends: the send
// cleared the deferred change it had taken, with the chmod merged into it
// meanwhile, and the chmod never reached the server.
func TestChmodDuringAttrsSend(t *testing.T) {
	sending := make(chan struct{}, 1)
	m := newMountSpace(t, nil, func(m *testMount) {
		m.wrap = func(nc net.Conn) net.Conn {
			return slowCalls{nc, proto.ProcSetAttr, 300 * time.Millisecond, sending}
		}
	})
	p := filepath.Join(m.dir, "f")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	other, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// More than one WRITE's worth: the close commits, then sends the
	// change (not the small file's pipelined WRITE+SETATTR+COMMIT).
	if _, err := f.Write(make([]byte, 3<<20)); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- f.Close() }()
	select {
	case <-sending:
	case err := <-closed:
		t.Fatalf("close ended before its SETATTR went out: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no SETATTR within 30 s of the close")
	}
	if err := other.Chmod(0o640); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	a := m.serverAttr(t, "f")
	if a.Mode&0o7777 != 0o640 || !a.Mtime.Go().Equal(mtime) {
		t.Errorf("server mode %o mtime %v, want 0640 %v (the chmod made during the send was lost)", a.Mode&0o7777, a.Mtime.Go(), mtime)
	}
}
