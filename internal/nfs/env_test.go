package nfs

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/engine/kv/pebblekv"
	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// testEnv is an engine with one file system served by a Server on a
// loopback port.
type testEnv struct {
	t      testing.TB
	e      *engine.Engine
	fs     *engine.FS
	srv    *Server
	addr   string
	port   int
	cancel context.CancelFunc
	done   chan error
	store  interface{ Close() error } // pebble store, when on disk
	mem    *kv.Memory                 // the store, when in memory
}

type envOpt struct {
	dir     string // on-disk engine (Pebble + OS disk) in dir; memory when ""
	opts    Options
	exports func(fs *engine.FS) []Export
	fsOpts  engine.FSOptions
	// wrapDisk, when set, wraps the engine's disk (fault injection).
	wrapDisk func(disk.FS) disk.FS
	// space is the engine's free-space guard (nil: none).
	space engine.SpaceGuard
	// overwriteWAL: Pebble's WAL files are zero-filled when created, as
	// the server's (with dir only).
	overwriteWAL bool
	// blockCacheBytes bounds the engine's block cache (0: its default).
	blockCacheBytes int64
	// wrapKVFS, when set, wraps the file system Pebble runs on (with dir
	// only).
	wrapKVFS func(vfs.FS) vfs.FS
	// wrapListener, when set, wraps the server's listener.
	wrapListener func(net.Listener) net.Listener
	// log, when set, is the server's logger (else testLogger).
	log *slog.Logger
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("REGIONFS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newEnv(t testing.TB, o envOpt) *testEnv {
	t.Helper()
	v := &testEnv{t: t}
	eo := engine.Options{Logger: testLogger(t), OnFatal: func(err error) { t.Errorf("engine fatal: %v", err) }, Space: o.space, BlockCacheBytes: o.blockCacheBytes}
	if o.dir == "" {
		v.mem = kv.NewMemory()
		eo.KV, eo.Disk = v.mem, disk.NewMem()
	} else {
		po := pebblekv.Options{OverwriteWAL: o.overwriteWAL}
		if o.wrapKVFS != nil {
			po.FS = o.wrapKVFS(vfs.Default)
		}
		st, err := pebblekv.Open(filepath.Join(o.dir, "kv"), po)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(o.dir, "blocks"), 0o755); err != nil {
			t.Fatal(err)
		}
		d, err := disk.NewOS(filepath.Join(o.dir, "blocks"))
		if err != nil {
			t.Fatal(err)
		}
		eo.KV, eo.Disk, v.store = st, d, st
	}
	if o.wrapDisk != nil {
		eo.Disk = o.wrapDisk(eo.Disk)
	}
	e, err := engine.Open(context.Background(), eo)
	if err != nil {
		t.Fatal(err)
	}
	v.e = e
	fs, err := e.FS("fs")
	if err != nil {
		fs, err = e.CreateFS(context.Background(), "fs", o.fsOpts)
		if err != nil {
			t.Fatal(err)
		}
	}
	v.fs = fs
	so := o.opts
	so.Logger = testLogger(t)
	if o.log != nil {
		so.Logger = o.log
	}
	v.srv = NewServer(so)
	exps := []Export{{Path: "/", FS: fs}}
	if o.exports != nil {
		exps = o.exports(fs)
	}
	v.srv.SetExports(exps)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	v.addr = ln.Addr().String()
	if o.wrapListener != nil {
		ln = o.wrapListener(ln)
	}
	_, p, _ := net.SplitHostPort(v.addr)
	v.port, _ = strconv.Atoi(p)
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	v.done = make(chan error, 1)
	go func() { v.done <- v.srv.Serve(ctx, ln) }()
	t.Cleanup(v.close)
	return v
}

func (v *testEnv) close() {
	if v.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := v.srv.Shutdown(ctx); err != nil {
		v.t.Errorf("shutdown: %v", err)
	}
	<-v.done
	v.cancel()
	v.srv = nil
	if err := v.e.Close(); err != nil {
		v.t.Errorf("engine close: %v", err)
	}
	if v.store != nil {
		v.store.Close()
	}
}

// dial connects a client with AUTH_UNIX root.
func (v *testEnv) dial() *client.Client {
	return v.dialAs(0, 0)
}

func (v *testEnv) dialAs(uid, gid uint32, groups ...uint32) *client.Client {
	v.t.Helper()
	c, err := client.Dial(context.Background(), v.addr)
	if err != nil {
		v.t.Fatal(err)
	}
	v.t.Cleanup(func() { c.Close() })
	return c.WithAuth(client.Unix("test", uid, gid, groups...))
}

// mount returns the root handle of path.
func (v *testEnv) mount(c *client.Client, path string) proto.FH {
	v.t.Helper()
	fh, _, err := c.Mount(context.Background(), path)
	if err != nil {
		v.t.Fatalf("mount %q: %v", path, err)
	}
	return fh
}

// file mounts "/" through c and creates name in it (UNCHECKED).
func (v *testEnv) file(c *client.Client, name string) proto.FH {
	v.t.Helper()
	res, err := c.Create(context.Background(), v.mount(c, "/"), name, proto.Unchecked, proto.Sattr{})
	if err != nil {
		v.t.Fatalf("create %q: %v", name, err)
	}
	return res.FH
}

func engineFSOptions() engine.FSOptions { return engine.FSOptions{} }

// secondServer serves v's file system from a Server of its own, as a
// second mount target of the file system does (its own write-back and
// read-ahead), and returns it with a root client of it.
func (v *testEnv) secondServer() (*Server, *client.Client) {
	v.t.Helper()
	srv := NewServer(Options{Logger: testLogger(v.t)})
	srv.SetExports([]Export{{Path: "/", FS: v.fs}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		v.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	v.t.Cleanup(func() {
		sctx, stop := context.WithTimeout(context.Background(), 30*time.Second)
		defer stop()
		if err := srv.Shutdown(sctx); err != nil {
			v.t.Errorf("second server shutdown: %v", err)
		}
		<-done
		cancel()
	})
	c, err := client.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		v.t.Fatal(err)
	}
	v.t.Cleanup(func() { c.Close() })
	return srv, c.WithAuth(client.Unix("test", 0, 0))
}
