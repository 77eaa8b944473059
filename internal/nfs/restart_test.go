package nfs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// TestRestartKeepsHandles: a client keeps its handles across a clean
// server restart (engine closed and reopened) and continues; the write
// verifier changes.
func TestRestartKeepsHandles(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, envOpt{dir: dir})
	d := f.mkdir(t, f.root, "d", 0o755)
	fh := f.create(t, d, "f", "before restart")
	w, err := f.c.Write(f.ctx, fh, 0, []byte("BEFORE"), proto.Unstable)
	if err != nil {
		t.Fatal(err)
	}
	root := f.root
	f.close() // clean shutdown: flushes, closes the engine and its store

	v := newEnv(t, envOpt{dir: dir})
	c := v.dial()
	ctx := context.Background()
	// No MOUNT: the old handles work on the new server.
	g, err := c.GetAttr(ctx, fh)
	if err != nil || g.Attr.Size != 14 {
		t.Fatalf("getattr after restart: %+v %v", g, err)
	}
	rd, err := c.Read(ctx, fh, 0, 100)
	if err != nil || string(rd.Data) != "BEFORE restart" {
		t.Fatalf("read after restart %q %v", rd.Data, err)
	}
	if lk, err := c.Lookup(ctx, root, "d"); err != nil || !bytes.Equal(lk.FH, d) {
		t.Fatalf("lookup after restart %v", err)
	}
	cm, err := c.Commit(ctx, fh, 0, 0)
	if err != nil || cm.Verf == w.Verf {
		t.Fatalf("verifier did not change across the restart (%v)", err)
	}
	if _, err := c.Create(ctx, d, "after", proto.Guarded, proto.Sattr{}); err != nil {
		t.Fatal(err)
	}
}

// helper is a server child process on a data directory.
type helper struct {
	cmd  *exec.Cmd
	addr string
}

func startHelper(t *testing.T, dir string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd}
	t.Cleanup(func() { h.kill() })
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
	}()
	select {
	case l := <-line:
		port, ok := strings.CutPrefix(l, "PORT ")
		if !ok {
			t.Fatalf("helper said %q", l)
		}
		h.addr = "127.0.0.1:" + port
	case <-time.After(60 * time.Second):
		t.Fatal("helper server did not start")
	}
	return h
}

// kill sends SIGKILL and reaps the process.
func (h *helper) kill() {
	if h.cmd.ProcessState != nil {
		return
	}
	_ = h.cmd.Process.Signal(syscall.SIGKILL)
	_ = h.cmd.Wait()
}

func (h *helper) dial(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), h.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.WithAuth(client.Unix("crash", 0, 0))
}

// TestCommitSurvivesKill: data written UNSTABLE and COMMITted, and data
// written FILE_SYNC, survive kill -9 of the server; after the restart the
// client's handles work and it sees a new write verifier (so it knows to
// resend what it had not committed).
func TestCommitSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	h := startHelper(t, dir)
	c := h.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root, _, err := c.Mount(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	committed := make([]byte, 5<<20+12345)
	rand.Read(committed)
	cr, err := c.Create(ctx, root, "committed", proto.Guarded, proto.Sattr{})
	if err != nil {
		t.Fatal(err)
	}
	var verf [8]byte
	for off := 0; off < len(committed); off += 1 << 20 {
		end := min(off+1<<20, len(committed))
		w, err := c.Write(ctx, cr.FH, uint64(off), committed[off:end], proto.Unstable)
		if err != nil || w.Committed != proto.Unstable {
			t.Fatalf("unstable write: %v", err)
		}
		verf = w.Verf
	}
	cm, err := c.Commit(ctx, cr.FH, 0, 0)
	if err != nil || cm.Verf != verf {
		t.Fatalf("commit: %v", err)
	}
	sync, err := c.Create(ctx, root, "filesync", proto.Guarded, proto.Sattr{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := c.Write(ctx, sync.FH, uint64(i*100), bytes.Repeat([]byte{byte(i)}, 100), proto.FileSync); err != nil {
			t.Fatal(err)
		}
	}
	// Uncommitted data in flight at the kill: the client would resend it.
	if _, err := c.Write(ctx, cr.FH, uint64(len(committed)), []byte("uncommitted"), proto.Unstable); err != nil {
		t.Fatal(err)
	}
	h.kill()

	h2 := startHelper(t, dir)
	c2 := h2.dial(t)
	got := make([]byte, 0, len(committed))
	for off := 0; ; {
		rd, err := c2.Read(ctx, cr.FH, uint64(off), 1<<20)
		if err != nil {
			t.Fatalf("read after kill: %v", err)
		}
		got = append(got, rd.Data...)
		off += len(rd.Data)
		if rd.EOF || len(rd.Data) == 0 {
			break
		}
	}
	if len(got) < len(committed) || !bytes.Equal(got[:len(committed)], committed) {
		t.Fatalf("committed data lost: read %d bytes, want at least %d", len(got), len(committed))
	}
	rd, err := c2.Read(ctx, sync.FH, 0, 4096)
	if err != nil || len(rd.Data) != 2000 {
		t.Fatalf("FILE_SYNC data: %d bytes %v", len(rd.Data), err)
	}
	for i := range 20 {
		if rd.Data[i*100] != byte(i) {
			t.Fatalf("FILE_SYNC data differs at %d", i*100)
		}
	}
	cm2, err := c2.Commit(ctx, cr.FH, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if cm2.Verf == verf {
		t.Fatal("write verifier unchanged after kill -9 and restart")
	}
}
