package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv/pgkv"
)

// RegionLease is a node's ownership of its region in a shared PostgreSQL
// metadata store: acquired before anything is written (a standby waits
// here), renewed every third of its duration, fenced into every commit,
// and released on a clean stop so a standby takes over at once.
//
// A lease that runs out unrenewed (the database was unreachable for
// longer than the lease) is not given up: the fencing token, not the
// expiry, guards every commit, so the node keeps trying and carries on
// where it was once the database answers and nobody took the region over
// meanwhile (a lone node survives a database restart). Block deletion,
// which no commit fences, waits while the lease is not surely running
// (valid). When another node did take the region over (the token
// changed), onLost ends the process: it could no longer commit.
//
// Nodes announce themselves in the database and send a heartbeat with
// every poll (standby) or renewal (owner). A node drained with `regionfs
// cluster drain` takes no region over; when it owns the region and
// another node that is not draining is alive, it closes Drained so that
// the node stops cleanly and hands the region over.
//
// The region's lease is the active/standby mode's unit of ownership (and,
// with cluster.spread, the leader's, which runs the region's API, control
// plane and replication endpoint); the domain leases of Manager fence the
// file systems.
type RegionLease struct {
	store   *pgkv.Store
	name    string
	holder  string
	ttl     time.Duration
	log     *slog.Logger
	onLost  func(error)
	token   int64
	stop    chan struct{}
	stopped chan struct{}
	// drained is closed when the node, drained, is to hand the region
	// over (it goes on renewing the lease until release).
	drained chan struct{}
	// drainWait: drained, but without a node to hand over to (logged
	// once; renewal goroutine only).
	drainWait bool
	// until is when the lease surely runs out (UnixNano, local clock):
	// the send time of the last successful grant or renewal plus ttl less
	// a margin for clock rate differences.
	until atomic.Int64
}

// Valid reports whether the lease surely has not run out.
func (l *RegionLease) Valid() bool { return time.Now().UnixNano() < l.until.Load() }

// granted records a grant or renewal whose request was sent at sent.
func (l *RegionLease) granted(sent time.Time) { l.until.Store(sent.Add(l.ttl - l.ttl/10).UnixNano()) }

// RegionLeaseName is the name of region's lease in pgkv's leases table.
func RegionLeaseName(region string) string { return "region/" + region }

// AcquireRegionLease waits until this node (holder, reachable at addr)
// owns the region (ctx ends the wait), then renews it in the background
// until Release; onLost is called when another node took it over.
func AcquireRegionLease(ctx context.Context, s *pgkv.Store, region, holder, addr string, ttl time.Duration, log *slog.Logger, onLost func(error)) (*RegionLease, error) {
	l := &RegionLease{store: s, name: RegionLeaseName(region), holder: holder, ttl: ttl, log: log, onLost: onLost,
		stop: make(chan struct{}), stopped: make(chan struct{}), drained: make(chan struct{})}
	if err := s.Announce(ctx, holder, addr); err != nil {
		return nil, err
	}
	waiting, draining := false, false
	for {
		// The heartbeat tells the owner this node could take over; a
		// drained node takes nothing over.
		d, _, err := s.Heartbeat(ctx, holder)
		if err != nil {
			log.Warn("node heartbeat failed", "node", holder, "err", err)
		} else if d != draining {
			draining = d
			if d {
				log.Warn("this node is drained: it takes no region over (regionfs cluster drain --undo lifts it)", "node", holder, "lease", l.name)
			} else {
				log.Info("drain lifted: this node may take the region over", "node", holder, "lease", l.name)
			}
		}
		if draining {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("waiting for the region's lease: %w", ctx.Err())
			case <-time.After(min(500*time.Millisecond, ttl/4)):
			}
			continue
		}
		sent := time.Now()
		got, ok, err := s.Acquire(ctx, l.name, holder, ttl)
		if err != nil {
			return nil, err
		}
		if ok {
			l.token = got.Token
			l.granted(sent)
			if waiting {
				log.Warn("took the region over", "lease", l.name, "node", holder, "token", got.Token, "waited", time.Since(sent).Round(time.Millisecond))
			} else {
				log.Info("region lease acquired", "lease", l.name, "node", holder, "token", got.Token)
			}
			go l.renew(sent)
			return l, nil
		}
		if !waiting {
			log.Info("standby: another node owns the region; waiting for its lease", "lease", l.name, "owner", got.Holder,
				"token", got.Token, "expires", got.Expires.Format(time.RFC3339Nano))
			waiting = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the region's lease: %w", ctx.Err())
		case <-time.After(min(500*time.Millisecond, ttl/4)):
		}
	}
}

// renew keeps the lease, from the send time of the last grant.
func (l *RegionLease) renew(last time.Time) {
	defer close(l.stopped)
	every := l.ttl / 3
	for {
		select {
		case <-l.stop:
			return
		case <-time.After(time.Until(last.Add(every))):
		}
		ranOut := false
		for {
			ctx, cancel := context.WithTimeout(context.Background(), every)
			sent := time.Now()
			_, err := l.store.Renew(ctx, l.name, l.ttl)
			cancel()
			if err == nil {
				l.granted(sent)
				if ranOut {
					l.log.Warn("region lease renewed after running out: nobody took the region over", "lease", l.name,
						"unrenewed_for", sent.Sub(last).Round(time.Millisecond))
				}
				last = sent
				l.checkDrain()
				break
			}
			if errors.Is(err, pgkv.ErrFenced) {
				l.log.Error("region lease taken over by another node; stopping", "lease", l.name, "err", err)
				l.onLost(fmt.Errorf("region lease %s lost: %w", l.name, err))
				return
			}
			switch {
			case !l.Valid() && !ranOut:
				ranOut = true
				l.log.Error("region lease ran out unrenewed: blocks are not deleted until it is renewed, and commits are refused if another node takes the region over; retrying",
					"lease", l.name, "err", err)
			case !ranOut:
				l.log.Warn("region lease not renewed; retrying", "lease", l.name, "err", err,
					"runs_out_in", time.Until(time.Unix(0, l.until.Load())).Round(time.Millisecond))
			}
			select {
			case <-l.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// checkDrain sends the node's heartbeat and, when the node is drained and
// another node that is not is alive to take the region over, closes
// l.drained (once).
func (l *RegionLease) checkDrain() {
	select {
	case <-l.drained:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.ttl/3)
	defer cancel()
	draining, _, err := l.store.Heartbeat(ctx, l.holder)
	if err != nil {
		l.log.Warn("node heartbeat failed", "node", l.holder, "err", err)
		return
	}
	if !draining {
		l.drainWait = false
		return
	}
	nodes, err := l.store.Nodes(ctx)
	if err != nil {
		l.log.Warn("draining: cannot list the nodes", "err", err)
		return
	}
	for _, n := range nodes {
		// Alive: a standby's heartbeat comes at least every ttl/4.
		if n.Name != l.holder && !n.Draining && n.Age < l.ttl {
			l.log.Warn("this node is drained: stopping, so that another node takes the region over", "node", l.holder,
				"lease", l.name, "standby", n.Name)
			close(l.drained)
			return
		}
	}
	if !l.drainWait {
		l.drainWait = true
		l.log.Warn("this node is drained, but no other live node that is not drained can take the region over: keeping it",
			"node", l.holder, "lease", l.name)
	}
}

// Drained is closed when this node, drained, is to stop and hand the
// region over to the live node found.
func (l *RegionLease) Drained() <-chan struct{} { return l.drained }

// Release stops renewing and hands the region over.
func (l *RegionLease) Release(ctx context.Context) error {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.stopped
	return l.store.Release(ctx, l.name)
}
