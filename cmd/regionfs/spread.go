package main

import (
	"context"
	"fmt"
	"os"

	"github.com/regionfs/regionfs/internal/cluster"
	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/kv/pgkv"
)

// A region spread over its nodes (cluster.spread): every node opens the
// shared store, serves its share of the file systems (cluster.Manager:
// one lease per domain, fenced into every commit of its keys) and the
// mount targets of those (cluster.Targets), and waits for the region's
// lease; the node holding it also binds the region's addresses and runs
// the API and the control plane, whose mount targets go through
// cluster.Targets to the nodes serving their file systems.

// openSpread opens the shared store with per-domain fencing and the
// node's cluster manager (not running yet).
func (n *node) openSpread(ctx context.Context) error {
	cfg := n.cfg
	var m *cluster.Manager
	s, err := pgkv.Open(ctx, pgkv.Options{URL: cfg.Metadata, CreateDatabase: true, Logger: n.log,
		FenceKey: cluster.FenceKey(func() *engine.Engine { return m.Engine() }, leaseName(cfg.Region))})
	if err != nil {
		return fmt.Errorf("metadata store (PostgreSQL): %w", err)
	}
	cc := s.Pool().Config().ConnConfig
	n.log.Info("metadata in PostgreSQL; file systems spread over the region's nodes", "database", cc.Database, "host", cc.Host,
		"node", cfg.Cluster.Node, "lease", cfg.Cluster.Lease)
	// A node that finds the region's lease free takes it before its
	// engine opens: on a new region the engine writes the format record,
	// a key of the whole region.
	if _, _, err := s.Acquire(ctx, leaseName(cfg.Region), cfg.Cluster.Node, cfg.Cluster.Lease); err != nil {
		s.Close()
		return err
	}
	host, _ := os.Hostname()
	m = cluster.New(cluster.Options{Store: s, Node: cfg.Cluster.Node, Addr: host, TTL: cfg.Cluster.Lease, Logger: n.log,
		OnChange: func([]uint64) {
			if err := n.ctargets.Follow(context.Background()); err != nil {
				n.log.Warn("mount targets do not follow their file systems", "err", err)
			}
		}})
	n.store, n.spreadStore, n.spread = s, s, m
	return nil
}

// claim is the engine's Options.Claim: the cluster manager's with
// cluster.spread, none otherwise.
func (n *node) claim() func(context.Context, uint64) error {
	if n.spread == nil {
		return nil
	}
	return n.spread.Claim
}

// startSpread starts serving the node's share (the mount targets follow
// it), then waits for the region's lease and binds the region's addresses.
func (n *node) startSpread(ctx context.Context, onFatal func(error)) error {
	cfg := n.cfg
	n.ctargets = cluster.NewTargets(n.store, n.targets, n.spread.Engine, n.log)
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.spreadStop, n.spreadDone = cancel, make(chan struct{})
	go func() {
		defer close(n.spreadDone)
		if err := n.spread.Run(rctx); err != nil {
			onFatal(fmt.Errorf("cluster: %w", err))
		}
	}()
	host, _ := os.Hostname()
	l, err := acquireRegionLease(ctx, n.spreadStore, cfg.Region, cfg.Cluster.Node, host, cfg.Cluster.Lease, n.log, onFatal)
	if err != nil {
		return err
	}
	n.lease = l
	if n.lns, err = bindRegion(cfg); err != nil {
		return err
	}
	return nil
}

// mountTargets is what the control plane starts mount targets through:
// the cluster's, which follow their file systems, with cluster.spread.
func (n *node) mountTargets() control.MountTargetServer {
	if n.ctargets != nil {
		return n.ctargets
	}
	return n.targets
}
