package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/regionfs/regionfs/internal/api/efsrepl"
	"github.com/regionfs/regionfs/internal/replication"
)

// replicationPlane is a region's replication: the node that ships and
// receives journals on the replication listener, and the manager of the
// replication configurations behind the EFS replication operations.
type replicationPlane struct {
	node   *replication.Node
	mgr    *replication.Manager
	listen string

	mu   sync.Mutex // guards done
	done chan error // of the running Serve; nil while not serving
}

// openReplication opens n's replication (after its control plane) and puts
// the replication operations in front of its EFS handler.
func openReplication(ctx context.Context, n *node) (*replicationPlane, error) {
	cfg := n.cfg
	if cfg.Replication.Listen == "" {
		return nil, nil // replication is not configured
	}
	peers := map[string]replication.Peer{}
	for _, p := range cfg.Peers {
		secret, err := p.PeerSecret()
		if err != nil {
			return nil, err
		}
		scheme := "http"
		var ctls *tls.Config
		if p.TLS != nil {
			scheme = "https"
			if ctls, err = clientTLS(p.TLS); err != nil {
				return nil, fmt.Errorf("peer %s tls: %w", p.Name, err)
			}
		}
		peers[p.Name] = replication.Peer{URL: scheme + "://" + p.Replication, Secret: secret, TLS: ctls}
	}
	// The region itself, for replication between its zones.
	self, err := selfSecret(cfg.Replicate.SelfSecretFile, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	var stls, ctls *tls.Config
	scheme := "http"
	if t := cfg.Replication.TLS; t != nil {
		if stls, err = serverTLS(t); err != nil {
			return nil, fmt.Errorf("replication tls: %w", err)
		}
		scheme = "https"
		if ctls, err = clientTLS(t); err != nil {
			return nil, fmt.Errorf("replication tls: %w", err)
		}
	}
	peers[cfg.Region] = replication.Peer{URL: scheme + "://" + cfg.Replication.Listen, Secret: self, TLS: ctls}
	r := cfg.Replicate
	node := replication.New(replication.Options{
		Region: cfg.Region, Engine: n.engine, Peers: peers, Logger: n.log, Registerer: n.reg,
		Heartbeat: r.Heartbeat, PauseAfter: r.PauseAfter, RetainAge: r.RetainAge, ForkRetain: r.ForkRetain,
		MaxLagAge: r.MaxLagAge, MaxLagBytes: int64(r.MaxLagBytes), Lease: r.Lease, ServerTLS: stls,
	})
	mgr := replication.NewManager(replication.ManagerOptions{
		Region: cfg.Region, Account: cfg.AccountID, Node: node, Engine: n.engine, KV: n.store,
		Catalog: n.control.region.ReplicationCatalog(), Logger: n.log, Flush: n.mts.flush,
	})
	node.SetHooks(mgr.Hooks())
	p := &replicationPlane{node: node, mgr: mgr, listen: cfg.Replication.Listen}
	if err := p.serve(); err != nil {
		node.Close()
		return nil, err
	}
	node.Start()
	if err := mgr.Open(ctx); err != nil {
		p.close(ctx)
		return nil, fmt.Errorf("replication configurations: %w", err)
	}
	n.control.efs = efsrepl.Wrap(n.control.efs, mgr, n.log)
	return p, nil
}

// selfSecret reads (or, at the first start, generates) the secret of the
// region's replication with itself.
func selfSecret(file, dataDir string) ([]byte, error) {
	if file == "" {
		file = filepath.Join(dataDir, "replication-self.secret")
		if err := ensureSecretFile(file); err != nil {
			return nil, err
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("replication self secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if len(s) < 16 {
		return nil, fmt.Errorf("replication self secret in %s: at least 16 characters", file)
	}
	return []byte(s), nil
}

// serve starts answering peers on the replication listener.
func (p *replicationPlane) serve() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		return nil
	}
	ln, err := net.Listen("tcp", p.listen)
	if err != nil {
		return fmt.Errorf("replication listen: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- p.node.Serve(ln) }()
	p.done = done
	return nil
}

// suspend takes replication off the network (a regional outage).
func (p *replicationPlane) suspend(ctx context.Context) error {
	p.mu.Lock()
	done := p.done
	p.done = nil
	p.mu.Unlock()
	err := p.node.Suspend(ctx)
	if done != nil {
		err = errors.Join(err, <-done)
	}
	return err
}

// resume brings it back.
func (p *replicationPlane) resume() error {
	if err := p.serve(); err != nil {
		return err
	}
	return p.node.Resume()
}

func (p *replicationPlane) close(ctx context.Context) error {
	p.mu.Lock()
	done := p.done
	p.done = nil
	p.mu.Unlock()
	err := p.node.Shutdown(ctx)
	if done != nil {
		err = errors.Join(err, <-done)
	}
	return errors.Join(err, p.node.Close())
}
