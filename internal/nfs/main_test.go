package nfs

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv/pebblekv"
	"github.com/regionfs/regionfs/internal/testkit"
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
	testkit.Main(m, testkit.OnlyStacks("github.com/regionfs/regionfs/internal/"),
		// go-nfs-client's cache cleaner, which that library never stops.
		testkit.IgnoreStacks("go-nfs-client"))
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
