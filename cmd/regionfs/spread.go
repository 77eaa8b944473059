package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/regionfs/regionfs/internal/cluster"
	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/replconf"
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
//
// Replication runs on the node holding the region's lease too: its
// replication endpoint is the region's (peers reach it at
// replication.listen, which moves with the lease), so the domains of the
// file systems that replicate, sources and destinations, are pinned to
// that node (cluster.Options.Pinned): it takes them over when it takes the
// region over (before its replication starts), pulls a file system's
// domain over when a replication of it is set up, and the other nodes
// hand such domains over and take none of them. Shipping and apply thus
// run on the owner of each replicated file system's domain, and every
// commit they make is fenced by that domain's token.

// openSpread opens the shared store with per-domain fencing and the
// node's cluster manager (not running yet).
func (n *node) openSpread(ctx context.Context) error {
	cfg := n.cfg
	var m *cluster.Manager
	s, err := pgkv.Open(ctx, pgkv.Options{URL: cfg.Metadata, CreateDatabase: true, Logger: n.log, Stopping: n.giveUp,
		FenceKey: cluster.FenceKey(func() *engine.Engine { return m.Engine() }, cluster.RegionLeaseName(cfg.Region))})
	if err != nil {
		return fmt.Errorf("metadata store (PostgreSQL): %w", err)
	}
	cc := s.Pool().Config().ConnConfig
	n.log.Info("metadata in PostgreSQL; file systems spread over the region's nodes", "database", cc.Database, "host", cc.Host,
		"node", cfg.Cluster.Node, "lease", cfg.Cluster.Lease)
	// A node that finds the region's lease free takes it before its
	// engine opens: on a new region the engine writes the format record,
	// a key of the whole region. Nodes of a new region started together
	// wait until the one holding the lease wrote it (or until its lease is
	// free again: it died first).
	waited := false
	for {
		_, ok, err := s.Acquire(ctx, cluster.RegionLeaseName(cfg.Region), cfg.Cluster.Node, cfg.Cluster.Lease)
		if err != nil {
			s.Close()
			return err
		}
		if ok {
			break
		}
		done, err := engine.Formatted(s)
		if err != nil {
			s.Close()
			return err
		}
		if done {
			break
		}
		if !waited {
			n.log.Info("a new region: waiting for the node holding the region's lease to format it", "node", cfg.Cluster.Node)
			waited = true
		}
		select {
		case <-ctx.Done():
			s.Close()
			return fmt.Errorf("waiting for the region to be formatted: %w", ctx.Err())
		case <-time.After(min(200*time.Millisecond, cfg.Cluster.Lease/4)):
		}
	}
	host, _ := os.Hostname()
	n.resumeKick = make(chan struct{}, 1)
	m = cluster.New(cluster.Options{Store: s, Node: cfg.Cluster.Node, Addr: host, TTL: cfg.Cluster.Lease, Logger: n.log,
		OnChange: func([]uint64) {
			if err := n.ctargets.Follow(context.Background()); err != nil {
				n.log.Warn("mount targets do not follow their file systems", "err", err)
			}
			select {
			case n.resumeKick <- struct{}{}:
			default:
			}
		},
		Leader: n.spreadLeader.Load,
		Pinned: func(context.Context) (map[uint64]bool, error) {
			names, err := replconf.LocalFileSystems(s)
			if err != nil {
				return nil, err
			}
			out := map[uint64]bool{}
			if e := m.Engine(); e != nil {
				for _, name := range names {
					if d, ok := e.DomainOf(name); ok {
						out[d] = true
					}
				}
			}
			return out, nil
		}})
	n.store, n.spreadStore, n.spread = s, s, m
	return nil
}

// ownFS is replconf's Options.Own with cluster.spread: the file system
// called name, pulled over to this node (the region's leader) when
// another node serves it.
func (n *node) ownFS(ctx context.Context, name string) (*engine.FS, error) {
	fs, err := n.engine.FS(name)
	if !errors.Is(err, engine.ErrElsewhere) {
		return fs, err
	}
	dom, ok := n.engine.DomainOf(name)
	if !ok {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*n.cfg.Cluster.Lease+5*time.Second)
	defer cancel()
	if err := n.spread.Pull(ctx, dom); err != nil {
		return nil, fmt.Errorf("file system %s: %w", name, err)
	}
	return n.engine.FS(name)
}

// startResuming starts the replications whose file systems come to this
// node after the replication opened, after every change of the node's
// domains (a kick from the cluster manager's OnChange; asynchronous: the
// manager holds its lock while it tells).
func (n *node) startResuming() {
	if n.spread == nil || n.repl == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	n.resumeStop, n.resumeDone = cancel, done
	mgr := n.repl.mgr
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-n.resumeKick:
			}
			if _, err := mgr.Resume(); err != nil {
				n.log.Warn("replication not resumed", "err", err)
			}
		}
	}()
}

// stopResuming stops startResuming's goroutine.
func (n *node) stopResuming() {
	if n.resumeStop != nil {
		n.resumeStop()
		<-n.resumeDone
		n.resumeStop = nil
	}
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
	l, err := cluster.AcquireRegionLease(ctx, n.spreadStore, cfg.Region, cfg.Cluster.Node, host, cfg.Cluster.Lease, n.log, onFatal)
	if err != nil {
		return err
	}
	n.lease = l
	n.spreadLeader.Store(true)
	// The replicated file systems' domains come here before the
	// replication starts (a dead leader's once their leases ran out).
	sctx, scancel := context.WithTimeout(ctx, 3*cfg.Cluster.Lease)
	start := time.Now()
	if err := n.spread.Settle(sctx); err != nil {
		n.log.Warn("the replicated file systems are not all served here yet; their replication starts when they are", "err", err)
	} else {
		n.log.Info("the replicated file systems are served here", "took", time.Since(start).Round(time.Millisecond))
	}
	scancel()
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
