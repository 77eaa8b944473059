package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"

	"github.com/regionfs/regionfs/internal/api/efsrepl"
	"github.com/regionfs/regionfs/internal/control/replconf"
	"github.com/regionfs/regionfs/internal/replication"
	"github.com/regionfs/regionfs/internal/serve"
)

// replicationPlane is a region's replication: the node that ships and
// receives journals on the replication listener, and the manager of the
// replication configurations behind the EFS replication operations.
type replicationPlane struct {
	node   *replication.Node
	mgr    *replconf.Manager
	listen string

	mu  sync.Mutex     // guards run
	run *serve.Running // nil while not serving
}

// openReplication opens n's replication (after its control plane) and puts
// the replication operations in front of its EFS handler. The peers'
// secrets and TLS material come from files (read before anything was
// created); the listener was bound then too.
func openReplication(ctx context.Context, n *node, files *regionFiles) (*replicationPlane, error) {
	cfg := n.cfg
	if cfg.Replication.Listen == "" {
		return nil, nil // replication is not configured
	}
	peers := map[string]replication.Peer{}
	for name, p := range files.peers {
		peers[name] = p
	}
	// The region itself, for replication between its zones.
	self := files.selfSecret
	if self == nil {
		file := filepath.Join(cfg.DataDir, "replication-self.secret")
		if err := ensureSecretFile(file); err != nil {
			return nil, err
		}
		var err error
		if self, err = readSelfSecret(file); err != nil {
			return nil, err
		}
	}
	scheme := "http"
	if files.replServerTLS != nil {
		scheme = "https"
	}
	peers[cfg.Region] = replication.Peer{URL: scheme + "://" + cfg.Replication.Listen, Secret: self, TLS: files.replClientTLS}
	r := cfg.Replicate
	node := replication.New(replication.Options{
		Region: cfg.Region, Engine: n.engine, Peers: peers, Logger: n.log, Registerer: n.reg,
		Heartbeat: r.Heartbeat, PauseAfter: r.PauseAfter, RetainAge: r.RetainAge, ForkRetain: r.ForkRetain,
		MaxLagAge: r.MaxLagAge, MaxLagBytes: int64(r.MaxLagBytes), Lease: r.Lease, VerifyInterval: r.VerifyInterval, ServerTLS: files.replServerTLS,
		Progress: replication.KVProgress(n.store),
	})
	mgr := replconf.New(replconf.Options{Name: cfg.Region, Region: n.control.region, Node: node, Engine: n.engine, KV: n.store, Logger: n.log})
	node.SetHooks(mgr.Hooks())
	p := &replicationPlane{node: node, mgr: mgr, listen: cfg.Replication.Listen}
	ln := n.lns.replication
	n.lns.replication = nil
	if err := p.serve(ln); err != nil {
		node.Close()
		return nil, err
	}
	node.Start()
	if err := mgr.Open(ctx); err != nil {
		p.close(ctx)
		return nil, fmt.Errorf("replication configurations: %w", err)
	}
	node.Loaded() // unknown replications are Gone only from now on
	n.control.efs = efsrepl.Wrap(n.control.efs, mgr, n.log)
	return p, nil
}

// serve starts answering peers on the replication listener: ln when
// given (bound at start), else a new one.
func (p *replicationPlane) serve(ln net.Listener) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != nil {
		if ln != nil {
			ln.Close()
		}
		return nil
	}
	if ln == nil {
		var err error
		if ln, err = listenTCP("replication.listen", p.listen); err != nil {
			return err
		}
	}
	p.run = serve.Start(context.Background(), p.node, ln)
	return nil
}

// stopServing stops answering peers (open streams are closed).
func (p *replicationPlane) stopServing(ctx context.Context) error {
	p.mu.Lock()
	run := p.run
	p.run = nil
	p.mu.Unlock()
	if run == nil {
		return nil
	}
	return run.Stop(ctx)
}

// suspend takes replication off the network (a regional outage).
func (p *replicationPlane) suspend(ctx context.Context) error {
	err := p.stopServing(ctx)
	p.node.Suspend()
	return err
}

// resume brings it back.
func (p *replicationPlane) resume() error {
	if err := p.serve(nil); err != nil {
		return err
	}
	return p.node.Resume()
}

func (p *replicationPlane) close(ctx context.Context) error {
	return errors.Join(p.stopServing(ctx), p.node.Close())
}
