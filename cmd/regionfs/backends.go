package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cockroachdb/pebble/v2"

	"github.com/regionfs/regionfs/internal/cluster"
	"github.com/regionfs/regionfs/internal/config"
	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/blocks/s3blocks"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/engine/kv/pebblekv"
	"github.com/regionfs/regionfs/internal/engine/kv/pgkv"
	"github.com/regionfs/regionfs/internal/engine/space"
)

// openMetadata opens the region's metadata store: Pebble under
// DataDir/kv, or PostgreSQL when cfg.Metadata names a database. On
// PostgreSQL the node first becomes the region's owner (it waits as a
// standby while another node is), and every commit is fenced by the
// ownership lease; onLost ends the process when the lease is lost. Once
// giveUp is closed, PostgreSQL is no longer waited for (node.giveUpAfter).
func openMetadata(ctx context.Context, cfg *config.Config, log *slog.Logger, cache *pebble.Cache, onLost func(error), guard *space.Guard, giveUp <-chan struct{}) (kv.Store, *cluster.RegionLease, error) {
	if cfg.Metadata != "" {
		name := cluster.RegionLeaseName(cfg.Region)
		s, err := pgkv.Open(ctx, pgkv.Options{URL: cfg.Metadata, CreateDatabase: true, Logger: log,
			FenceKey: func([]byte) string { return name }, Stopping: giveUp})
		if err != nil {
			return nil, nil, fmt.Errorf("metadata store (PostgreSQL): %w", err)
		}
		cc := s.Pool().Config().ConnConfig
		log.Info("metadata in PostgreSQL", "database", cc.Database, "host", cc.Host, "node", cfg.Cluster.Node)
		host, _ := os.Hostname()
		l, err := cluster.AcquireRegionLease(ctx, s, cfg.Region, cfg.Cluster.Node, host, cfg.Cluster.Lease, log, onLost)
		if err != nil {
			s.Close()
			return nil, nil, err
		}
		return s, l, nil
	}
	popts := pebblekv.Options{Cache: cache, Logger: log, MemTableSizeBytes: uint64(cfg.Engine.MemTableSize), OverwriteWAL: true}
	if cache == nil {
		popts.CacheSizeBytes = int64(cfg.Engine.CacheSize)
	}
	s, err := openPebble(filepath.Join(cfg.DataDir, "kv"), popts, guard)
	if err != nil {
		return nil, nil, fmt.Errorf("metadata store: %w", err)
	}
	return s, nil, nil
}

// openPebble opens a Pebble store of the data directory (the metadata
// store, the monitoring store). With a space guard it first checks that
// the disk has room to replay the store's log: without it Pebble retries
// the failing flush forever and never opens (issue 9 §2); a clear error is
// better (the guard has given its reserve back by then). Background errors
// for lack of space make the guard look at the disk again.
func openPebble(dir string, popts pebblekv.Options, guard *space.Guard) (*pebblekv.Store, error) {
	if guard != nil {
		if err := guard.CheckReplayRoom(dir, 1<<20); err != nil {
			return nil, fmt.Errorf("data disk full: %w", err)
		}
		popts.OnBackgroundError = func(err error) {
			if errors.Is(err, syscall.ENOSPC) {
				guard.Refresh()
			}
		}
	}
	return pebblekv.Open(dir, popts)
}

// openBlocks returns the engine's block store opener: nil (block files
// under DataDir/blocks) or one store per domain in the S3 bucket of
// cfg.Blocks, sharing a local read cache under DataDir/cache, that stop
// waiting for the object store once giveUp is closed.
func openBlocks(ctx context.Context, cfg *config.Config, log *slog.Logger, giveUp <-chan struct{}) (func(string, blocks.Keys) (blocks.Store, error), error) {
	if cfg.Blocks == "" {
		return nil, nil
	}
	c, err := s3blocks.ParseURL(cfg.Blocks)
	if err != nil {
		return nil, err
	}
	cl, err := s3blocks.NewClient(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := s3blocks.EnsureBucket(ctx, cl, c); err != nil {
		return nil, fmt.Errorf("block store (S3): %w", err)
	}
	cache, err := s3blocks.OpenCache(filepath.Join(cfg.DataDir, "cache"), int64(cfg.ObjectCacheSize))
	if err != nil {
		return nil, fmt.Errorf("block cache: %w", err)
	}
	log.Info("blocks in S3", "bucket", c.Bucket, "prefix", c.Prefix, "endpoint", c.Endpoint,
		"cache", filepath.Join(cfg.DataDir, "cache"), "cache_bytes", int64(cfg.ObjectCacheSize))
	return func(dir string, keys blocks.Keys) (blocks.Store, error) {
		return s3blocks.New(s3blocks.Options{Client: cl, Config: c, Prefix: dir + "/", Keys: keys, Cache: cache, Logger: log, Stopping: giveUp})
	}, nil
}
