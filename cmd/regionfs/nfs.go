package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv/pebblekv"
	"github.com/regionfs/regionfs/internal/nfs"
	"github.com/regionfs/regionfs/internal/nfs/tlsca"
	"github.com/regionfs/regionfs/internal/serve"
)

// newNFSCmd is the developer command that serves one local file system
// over NFSv3 without the control plane.
func newNFSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nfs",
		Short: "Developer tools for the NFSv3 data plane",
	}
	var (
		dataDir, listen, fsName, exportPath, logLevel, tlsDir string
		readOnly, rootSquash, cacheWrites                     bool
		blockSize                                             int
		blockCache                                            int64
	)
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve a local file system over NFSv3 (creating it if missing)",
		Long: `Serve opens (or creates) a storage engine in --data-dir (Pebble metadata in
DIR/kv, block files in DIR/blocks), opens or creates the file system --fs and
serves it over NFSv3, MOUNT v3 and the portmapper's GETPORT, all on --listen:

  regionfs nfs serve --data-dir ./data --listen 127.0.0.1:2049
  nfs-ls 'nfs://127.0.0.1/?nfsport=2049&mountport=2049'

It runs until SIGINT, SIGTERM or SIGHUP, then makes every buffered write durable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl}))
			return runNFSServe(cmd.Context(), log, nfsServeConfig{
				dataDir: dataDir, listen: listen, fsName: fsName, exportPath: exportPath,
				readOnly: readOnly, rootSquash: rootSquash, blockSize: blockSize, tlsDir: tlsDir,
				blockCache: blockCache, cacheWrites: cacheWrites,
			}, cmd.OutOrStdout())
		},
	}
	f := serve.Flags()
	f.StringVar(&dataDir, "data-dir", "", "directory of the engine's data (required)")
	f.StringVar(&listen, "listen", "127.0.0.1:2049", "TCP address to serve NFS, MOUNT and GETPORT on")
	f.StringVar(&fsName, "fs", "fs", "name of the file system to serve (created if missing)")
	f.StringVar(&exportPath, "export", "/", "MOUNT path of the export")
	f.BoolVar(&readOnly, "read-only", false, "refuse every change with NFS3ERR_ROFS")
	f.BoolVar(&rootSquash, "root-squash", false, "map uid/gid 0 to 65534")
	f.IntVar(&blockSize, "block-size", 0, "block size of a new file system (default 1 MiB)")
	f.Int64Var(&blockCache, "block-cache-bytes", 0, "bytes of verified blocks kept in memory (default 64 MiB)")
	f.BoolVar(&cacheWrites, "cache-writes", false, "keep the blocks writes store in the block cache, so that reading them back soon costs no block read")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&tlsDir, "tls-dir", "", "offer NFS over TLS with a certificate for the --listen address from the CA kept in this directory (created when missing; clients trust DIR/ca.pem)")
	_ = serve.MarkFlagRequired("data-dir")
	cmd.AddCommand(serve)
	return cmd
}

type nfsServeConfig struct {
	dataDir, listen, fsName, exportPath, tlsDir string
	readOnly, rootSquash, cacheWrites           bool
	blockSize                                   int
	blockCache                                  int64
}

func runNFSServe(ctx context.Context, log *slog.Logger, c nfsServeConfig, out interface{ Write([]byte) (int, error) }) (err error) {
	if err := os.MkdirAll(filepath.Join(c.dataDir, "blocks"), 0o755); err != nil {
		return err
	}
	store, err := pebblekv.Open(filepath.Join(c.dataDir, "kv"), pebblekv.Options{Logger: log, OverwriteWAL: true})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := store.Close(); err == nil {
			err = cerr
		}
	}()
	d, err := disk.NewOS(filepath.Join(c.dataDir, "blocks"))
	if err != nil {
		return err
	}
	e, err := engine.Open(ctx, engine.Options{
		KV: store, Disk: d, Logger: log, BlockCacheBytes: c.blockCache, CacheWrites: c.cacheWrites,
		OnFatal: func(err error) {
			log.Error("fatal storage error, exiting", "err", err)
			os.Exit(2)
		},
	})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := e.Close(); err == nil {
			err = cerr
		}
	}()
	fs, err := e.FS(c.fsName)
	if errors.Is(err, engine.ErrFSNotFound) {
		fs, err = e.CreateFS(ctx, c.fsName, engine.FSOptions{BlockSize: c.blockSize})
	}
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	var tcfg *tls.Config
	if c.tlsDir != "" {
		ca, err := tlsca.Open(c.tlsDir, "regionfs nfs serve CA")
		if err != nil {
			ln.Close()
			return err
		}
		ap, _ := netip.ParseAddrPort(ln.Addr().String())
		cert, err := ca.Issue(tlsca.Request{CommonName: "regionfs nfs serve", IPs: []netip.Addr{ap.Addr()}, DNSNames: []string{"localhost"}})
		if err != nil {
			ln.Close()
			return err
		}
		tcfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv := nfs.NewServer(nfs.Options{Logger: log, TLS: tcfg})
	srv.SetExports([]nfs.Export{{Path: c.exportPath, FS: fs, ReadOnly: c.readOnly, RootSquash: c.rootSquash}})
	log.Info("nfs serving", "addr", ln.Addr().String(), "fs", c.fsName, "export", c.exportPath, "read_only", c.readOnly)
	fmt.Fprintf(out, "serving %s on %s\n", c.fsName, ln.Addr())
	err = serve.Run(ctx, srv, ln, 30*time.Second)
	if err != nil {
		log.Error("nfs shutdown", "err", err)
	}
	return err
}
