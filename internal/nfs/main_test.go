package nfs

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv/pebblekv"
)

// helperEnv names the data directory of a server run as a child process
// of the test binary (crash tests kill it with SIGKILL).
const helperEnv = "REGIONFS_NFS_TEST_SERVER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		if err := runHelperServer(dir); err != nil {
			fmt.Fprintln(os.Stderr, "helper server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines left running after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines returns the stacks of goroutines of this module still
// running (waiting up to 10 s for them to end), except go-nfs-client's
// cache cleaner, which that library never stops.
func leakedGoroutines() string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "github.com/regionfs/regionfs/internal/") &&
				!strings.Contains(g, "leakedGoroutines") && !strings.Contains(g, "go-nfs-client") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runHelperServer serves the file system "fs" of an on-disk engine in dir
// on a loopback port, prints "PORT <n>" and serves until killed.
func runHelperServer(dir string) error {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := os.MkdirAll(filepath.Join(dir, "blocks"), 0o755); err != nil {
		return err
	}
	st, err := pebblekv.Open(filepath.Join(dir, "kv"), pebblekv.Options{})
	if err != nil {
		return err
	}
	d, err := disk.NewOS(filepath.Join(dir, "blocks"))
	if err != nil {
		return err
	}
	e, err := engine.Open(ctx, engine.Options{KV: st, Disk: d, Logger: log, OnFatal: func(err error) {
		fmt.Fprintln(os.Stderr, "fatal:", err)
		os.Exit(2)
	}})
	if err != nil {
		return err
	}
	fs, err := e.FS("fs")
	if err != nil {
		if fs, err = e.CreateFS(ctx, "fs", engine.FSOptions{}); err != nil {
			return err
		}
	}
	srv := NewServer(Options{Logger: log})
	srv.SetExports([]Export{{Path: "/", FS: fs}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("PORT %d\n", ln.Addr().(*net.TCPAddr).Port)
	return srv.Serve(ctx, ln)
}
