package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv/pgkv"
)

// regionLease is a node's ownership of its region in a shared PostgreSQL
// metadata store: acquired before anything is written (a standby waits
// here), renewed every third of its duration, fenced into every commit,
// and released on a clean stop so a standby takes over at once. When it
// cannot be renewed before it runs out, onLost ends the process: another
// node may own the region by then, and this one could no longer commit.
type regionLease struct {
	store   *pgkv.Store
	name    string
	holder  string
	ttl     time.Duration
	log     *slog.Logger
	onLost  func(error)
	token   int64
	stop    chan struct{}
	stopped chan struct{}
}

func leaseName(region string) string { return "region/" + region }

// acquireRegionLease waits until this node owns the region (ctx ends the
// wait), then renews it in the background.
func acquireRegionLease(ctx context.Context, s *pgkv.Store, region, holder string, ttl time.Duration, log *slog.Logger, onLost func(error)) (*regionLease, error) {
	l := &regionLease{store: s, name: leaseName(region), holder: holder, ttl: ttl, log: log, onLost: onLost,
		stop: make(chan struct{}), stopped: make(chan struct{})}
	waiting := false
	for {
		sent := time.Now()
		got, ok, err := s.Acquire(ctx, l.name, holder, ttl)
		if err != nil {
			return nil, err
		}
		if ok {
			l.token = got.Token
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

// renew keeps the lease; valid is how long it surely runs from the send
// time of the last successful renewal.
func (l *regionLease) renew(last time.Time) {
	defer close(l.stopped)
	every := l.ttl / 3
	for {
		select {
		case <-l.stop:
			return
		case <-time.After(time.Until(last.Add(every))):
		}
		deadline := last.Add(l.ttl - l.ttl/10)
		for {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			sent := time.Now()
			_, err := l.store.Renew(ctx, l.name, l.ttl)
			cancel()
			if err == nil {
				last = sent
				break
			}
			if errors.Is(err, pgkv.ErrFenced) || time.Now().After(deadline) {
				l.log.Error("region lease lost: another node may own the region now; stopping", "lease", l.name, "err", err)
				l.onLost(fmt.Errorf("region lease %s lost: %w", l.name, err))
				return
			}
			l.log.Warn("region lease not renewed; retrying", "lease", l.name, "err", err, "runs_out_in", time.Until(deadline).Round(time.Millisecond))
			select {
			case <-l.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// release stops renewing and hands the region over.
func (l *regionLease) release(ctx context.Context) error {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.stopped
	return l.store.Release(ctx, l.name)
}
