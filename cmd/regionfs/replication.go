package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/regionfs/regionfs/internal/api/efsrepl"
	"github.com/regionfs/regionfs/internal/control/replconf"
	"github.com/regionfs/regionfs/internal/monitor/notify"
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

	// notify tells of an automatic failover (set once monitoring is open).
	notify atomic.Pointer[func(context.Context, replconf.AutoFailover)]
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
	p := &replicationPlane{node: node, listen: cfg.Replication.Listen}
	ro := replconf.Options{Name: cfg.Region, Region: n.control.region, Node: node, Engine: n.engine, KV: n.store, Logger: n.log,
		Lease: r.Lease, OnAutoFailover: func(ctx context.Context, f replconf.AutoFailover) {
			if fn := p.notify.Load(); fn != nil {
				(*fn)(ctx, f)
			}
		}}
	if n.spread != nil {
		ro.Own = n.ownFS
	}
	mgr := replconf.New(ro)
	p.mgr = mgr
	node.SetHooks(mgr.Hooks())
	n.reg.MustRegister(mgr.Collector())
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
	p.mgr.Close()
	return errors.Join(p.stopServing(ctx), p.node.Close())
}

// startAutoFailover begins the automatic failover checks, notifying
// replicate.auto_failover_topic_arn (when set) through the region's SNS.
func (p *replicationPlane) startAutoFailover(n *node) {
	topic := n.cfg.Replicate.AutoFailoverTopicARN
	if topic != "" && n.mon != nil && n.mon.sns != nil {
		sns, log := n.mon.sns, n.log
		fn := func(ctx context.Context, f replconf.AutoFailover) {
			msg := fmt.Sprintf("regionfs %s: %s (replica of %s in %s) was promoted automatically at seq %d, epoch %d; at least %d transactions the source announced are missing.\n%s",
				f.Region, f.DestFileSystemID, f.SourceFileSystemID, f.SourceRegion, f.Promotion.Seq, f.Promotion.NewEpoch, f.Promotion.AtLeastLost(), f.Reason)
			_, err := sns.Publish(context.WithoutCancel(ctx), notify.PublishInput{TopicARN: topic,
				Subject: "regionfs automatic failover of " + f.DestFileSystemID, Message: msg})
			if err != nil {
				log.Warn("automatic failover notification", "topic", topic, "err", err)
			}
		}
		p.notify.Store(&fn)
	}
	p.mgr.StartAutoFailover()
}
