package fuse

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/nfs"
	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/testkit"
)

// needFUSE skips (or, under REGIONFS_REQUIRE_TOOLS=1, fails) a test that
// mounts: it needs /dev/fuse and root.
func needFUSE(t *testing.T) {
	t.Helper()
	_, err := os.Stat("/dev/fuse")
	if err == nil && os.Geteuid() == 0 {
		return
	}
	if os.Getenv("REGIONFS_REQUIRE_TOOLS") == "1" {
		t.Fatalf("FUSE is required (REGIONFS_REQUIRE_TOOLS=1): /dev/fuse %v, euid %d", err, os.Geteuid())
	}
	t.Skipf("mounting needs /dev/fuse and root (/dev/fuse: %v, euid %d); set REGIONFS_REQUIRE_TOOLS=1 to fail instead", err, os.Geteuid())
}

// testMount is an in-memory engine served by an NFS server on a loopback
// port, mounted through FUSE.
type testMount struct {
	t    *testing.T
	e    *engine.Engine
	fs   *engine.FS
	srv  *nfs.Server
	addr string
	ln   net.Listener
	done chan error
	sess *client.Session
	f    *FS
	fsrv *gofuse.Server
	dir  string
	wrap func(net.Conn) net.Conn // the client's connections pass through it (nil: none)
	// attrTimeout is the mount's attribute and entry cache time (0: the
	// default).
	attrTimeout time.Duration
	// noFUSE: the file system is not mounted (tests that call its nodes'
	// methods themselves).
	noFUSE bool
}

func logger(t *testing.T) *slog.Logger {
	if os.Getenv("REGIONFS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newMount(t *testing.T) *testMount {
	t.Helper()
	return newMountSpace(t, nil)
}

// newMountSpace is newMount with the engine's space guard (nil: none)
// and options applied before anything starts.
func newMountSpace(t *testing.T, space engine.SpaceGuard, mods ...func(*testMount)) *testMount {
	t.Helper()
	ctx := context.Background()
	m := &testMount{t: t}
	for _, mod := range mods {
		mod(m)
	}
	if !m.noFUSE {
		needFUSE(t)
	}
	e, err := engine.Open(ctx, engine.Options{KV: kv.NewMemory(), Disk: disk.NewMem(), Logger: logger(t), Space: space})
	if err != nil {
		t.Fatal(err)
	}
	m.e = e
	if m.fs, err = e.CreateFS(ctx, "fs", engine.FSOptions{}); err != nil {
		t.Fatal(err)
	}
	// A fixed address the server restarts on: a port no listener or
	// outgoing connection (the client's own, redialing) is given meanwhile.
	m.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(testkit.FreePort(t, "127.0.0.1")))
	m.startServer()
	m.sess = client.NewSession(client.SessionOptions{
		Logger: logger(t),
		Dial: func(ctx context.Context) (client.Dialed, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, "tcp", m.addr)
			if err != nil {
				return client.Dialed{}, err
			}
			if m.wrap != nil {
				nc = m.wrap(nc)
			}
			return client.Dialed{Conn: client.NewConn(nc), Addr: m.addr}, nil
		},
		OnSwitch: func(epoch uint64) { m.f.Switched(epoch) },
	})
	root, _, err := m.sess.Client(client.Unix("t", 0, 0)).Mount(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	m.f = New(Options{Session: m.sess, Root: root, Logger: logger(t), AttrTimeout: m.attrTimeout, EntryTimeout: m.attrTimeout})
	if m.noFUSE {
		t.Cleanup(m.close)
		return m
	}
	m.dir = t.TempDir()
	opts := m.f.MountOptions("fs-test:/")
	opts.Debug = os.Getenv("REGIONFS_FUSE_DEBUG") != ""
	if m.fsrv, err = m.f.Mount(m.dir, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.close)
	return m
}

func (m *testMount) startServer() {
	m.t.Helper()
	m.srv = nfs.NewServer(nfs.Options{Logger: logger(m.t)})
	m.srv.SetExports([]nfs.Export{{Path: "/", FS: m.fs}})
	// The address of a server just stopped may take a moment to be free.
	testkit.Eventually(m.t, 5*time.Second, func() (err error) {
		m.ln, err = net.Listen("tcp", m.addr)
		return err
	})
	m.done = make(chan error, 1)
	srv, ln := m.srv, m.ln
	go func() { m.done <- srv.Serve(context.Background(), ln) }()
}

func (m *testMount) stopServer() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.srv.Shutdown(ctx); err != nil {
		m.t.Errorf("shutdown: %v", err)
	}
	<-m.done
}

func (m *testMount) close() {
	if m.fsrv != nil {
		if err := m.fsrv.Unmount(); err != nil {
			m.t.Errorf("unmount: %v", err)
		}
	}
	m.sess.Close()
	m.stopServer()
	m.e.Close()
}
