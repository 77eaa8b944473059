package fuse

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/nfs"
	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/testkit"
)

// heldLog is an in-memory store whose log syncs (kv.LogSyncer: the
// engine's sync of early answered creates within a second when nothing
// else syncs) wait while it is held, so that what a test clones is what
// the source had made durable whatever the machine's load.
type heldLog struct {
	*kv.Memory
	mu   sync.Mutex // guards held
	held chan struct{}
}

func (h *heldLog) SyncLog() error {
	h.mu.Lock()
	held := h.held
	h.mu.Unlock()
	if held != nil {
		<-held
	}
	return h.Memory.SyncLog()
}

func (h *heldLog) hold() {
	h.mu.Lock()
	h.held = make(chan struct{})
	h.mu.Unlock()
}

func (h *heldLog) release() {
	h.mu.Lock()
	if h.held != nil {
		close(h.held)
		h.held = nil
	}
	h.mu.Unlock()
}

// servedEngine is an engine on in-memory storage with its file system
// "fs" exported by an NFS server on a loopback port.
type servedEngine struct {
	e    *engine.Engine
	fs   *engine.FS
	srv  *nfs.Server
	addr string
	done chan error
}

func serveEngine(t *testing.T, st kv.Store, d disk.FS, create bool) *servedEngine {
	t.Helper()
	ctx := context.Background()
	s := &servedEngine{done: make(chan error, 1)}
	var err error
	if s.e, err = engine.Open(ctx, engine.Options{KV: st, Disk: d, Logger: logger(t)}); err != nil {
		t.Fatal(err)
	}
	if create {
		s.fs, err = s.e.CreateFS(ctx, "fs", engine.FSOptions{})
	} else {
		s.fs, err = s.e.FS("fs")
	}
	if err != nil {
		t.Fatal(err)
	}
	s.srv = nfs.NewServer(nfs.Options{Logger: logger(t)})
	s.srv.SetExports([]nfs.Export{{Path: "/", FS: s.fs}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go func() { s.done <- s.srv.Serve(context.Background(), ln) }()
	return s
}

// stop shuts the server down (its connections close) and closes the
// engine.
func (s *servedEngine) stop(t *testing.T) {
	if s.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	<-s.done
	s.srv = nil
	s.e.Close()
}

// TestFailoverBeforeCreateDurable: a file made through the mount by
// open(O_CREAT|O_EXCL), answered before it was durable
// (REGIONFS_CREATE_VISIBLE), and still open when the mount fails over to
// the promoted replica: the replica never had it, so its close (or fsync)
// fails with EIO and the mount's log names its path, with data written to
// it or none. Files closed before the failover, and a file whose create a
// directory fsync made durable, are on the replica.
//
// The promoted replica is what the source had made durable when it
// failed over (a crash clone of its store and block files, opened by an
// engine of its own and served on another address): a replica holds at
// most that (only the durable mark ships), and a planned failover ships
// all of it. The source's log sync (its sync of early creates within a
// second, maxLazyDelay) is held from the lost files' creates to the
// failover, so the machine's load cannot make them durable first. The mount is served by
// this process; the files are opened by a child (this test's binary,
// failoverFiles), as in TestKill9BeforeCreateDurable.
func TestFailoverBeforeCreateDurable(t *testing.T) {
	if dir := os.Getenv("REGIONFS_FAILOVER_FILES"); dir != "" {
		failoverFiles(dir)
		return
	}
	needFUSE(t)
	st := &heldLog{Memory: kv.NewMemory()}
	d := disk.NewMem()
	src := serveEngine(t, st, d, true)
	t.Cleanup(func() { src.stop(t) })
	t.Cleanup(st.release) // before the source stops (cleanups run last first)

	var target atomic.Pointer[string]
	target.Store(&src.addr)
	var replicaAddr atomic.Pointer[string]
	var switchedOnce atomic.Bool
	logBuf := &lockedBuffer{}
	var f *FS
	sess := client.NewSession(client.SessionOptions{
		Logger: logger(t),
		Dial: func(ctx context.Context) (client.Dialed, error) {
			addr := *target.Load()
			var dl net.Dialer
			nc, err := dl.DialContext(ctx, "tcp", addr)
			if err != nil {
				return client.Dialed{}, err
			}
			// The first connection to the replica is the switch.
			r := replicaAddr.Load()
			switched := r != nil && *r == addr && !switchedOnce.Swap(true)
			return client.Dialed{Conn: client.NewConn(nc), Addr: addr, Switched: switched}, nil
		},
		OnSwitch: func(epoch uint64) { f.Switched(epoch) },
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root, _, err := sess.Client(client.Unix("t", 0, 0)).Mount(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	f = New(Options{Session: sess, Root: root, Logger: slog.New(slog.NewTextHandler(logBuf, nil))})
	dir := t.TempDir()
	fsrv, err := f.Mount(dir, f.MountOptions("failover:/"))
	if err != nil {
		t.Fatal(err)
	}
	unmount := unmounter(t, fsrv, dir)
	t.Cleanup(func() {
		unmount()
		sess.Close()
	})

	child := startFilesChild(t, "TestFailoverBeforeCreateDurable", "REGIONFS_FAILOVER_FILES", dir)
	defer child.stop()
	next, tell := child.next, child.tell
	if l := next(); l != "durable" {
		t.Fatalf("the child: %s", l)
	}
	st.hold()
	tell()
	if l := next(); l != "ready" {
		t.Fatalf("the child: %s", l)
	}

	// The failover: the replica is the source's durable state; the
	// source's server stops (its connections close) and the mount's
	// next dial reaches the replica.
	replica := serveEngine(t, st.CrashClone(), d.CrashClone(), false)
	t.Cleanup(func() { replica.stop(t) })
	replicaAddr.Store(&replica.addr)
	target.Store(&replica.addr)
	st.release()
	src.stop(t)

	tell()
	for _, want := range []string{"synced: <nil>", "lost: EIO", "lostsync: fsync EIO", "lostempty: EIO"} {
		if l := next(); l != want {
			t.Errorf("after the failover: %s, want %s", l, want)
		}
	}
	child.end()
	for _, p := range []string{"path=/lost ", "path=/lostsync ", "path=/lostempty "} {
		if l := logBuf.String(); !strings.Contains(l, p) {
			t.Errorf("the mount's log does not name %s:\n%s", strings.TrimSpace(p), l)
		}
	}
	if l := logBuf.String(); strings.Contains(l, "path=/kept") || strings.Contains(l, "path=/synced") {
		t.Errorf("the mount's log names a file that was not lost:\n%s", l)
	}

	// On the promoted replica: in its engine, and through the mount
	// (listed and read by child processes).
	files := map[string]string{"kept": "kept data", "empty": "", "synced": ""}
	for name, want := range files {
		ino, err := replica.fs.Lookup(ctx, engine.RootCred, engine.RootIno, name)
		if err != nil {
			t.Errorf("%s on the promoted replica: %v", name, err)
			continue
		}
		data, _, _, err := replica.fs.Read(ctx, engine.RootCred, ino.Ino, 0, 64)
		if err != nil {
			t.Errorf("read %s on the replica: %v", name, err)
		}
		if got := string(data); got != want {
			t.Errorf("%s on the promoted replica: %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"lost", "lostsync", "lostempty"} {
		if _, err := replica.fs.Lookup(ctx, engine.RootCred, engine.RootIno, name); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("%s on the promoted replica: %v, want it not found", name, err)
		}
	}
	lsCtx, lsCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer lsCancel()
	out, err := exec.CommandContext(lsCtx, "ls", "-A", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("ls of the mount after the failover: %v: %s", err, out)
	}
	if got := strings.Join(strings.Fields(string(out)), " "); got != "empty kept synced" {
		t.Errorf("the mount after the failover lists %q, want \"empty kept synced\"", got)
	}
	testkit.Eventually(t, 10*time.Second, func() error {
		out, err := exec.CommandContext(lsCtx, "cat", filepath.Join(dir, "kept")).CombinedOutput()
		if err != nil || string(out) != "kept data" {
			return fmt.Errorf("kept through the mount after the failover: %q, %v", out, err)
		}
		return nil
	})
}

// failoverFiles is TestFailoverBeforeCreateDurable's child, in dir (the
// mount). It closes two files and makes one whose create a directory
// fsync makes durable ("durable"); once told, makes three that nothing
// makes durable (one with data, one with data it will fsync, one empty)
// and leaves them open with the third ("ready"); once told again (the
// mount failed over), closes them or fsyncs, and says how each went.
func failoverFiles(dir string) {
	fail, create := childFiles(dir)
	in := bufio.NewReader(os.Stdin)
	synced := durableFiles(dir, fail, create, "")
	fmt.Println("durable")
	in.ReadString('\n')
	lost := create("lost", "lost data")
	lostSync := create("lostsync", "lost data, fsynced")
	lostEmpty := create("lostempty", "")
	fmt.Println("ready")
	in.ReadString('\n')
	fmt.Println("synced:", synced.Close())
	say := func(what string, err error) {
		if errors.Is(err, syscall.EIO) {
			fmt.Println(what, "EIO")
		} else {
			fmt.Println(what, err)
		}
	}
	say("lost:", lost.Close())
	say("lostsync: fsync", lostSync.Sync())
	lostSync.Close()
	say("lostempty:", lostEmpty.Close())
}
