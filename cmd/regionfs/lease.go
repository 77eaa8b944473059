package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv/pgkv"
)

// regionLease is a node's ownership of its region in a shared PostgreSQL
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
	// until is when the lease surely runs out (UnixNano, local clock):
	// the send time of the last successful grant or renewal plus ttl less
	// a margin for clock rate differences.
	until atomic.Int64
}

// valid reports whether the lease surely has not run out.
func (l *regionLease) valid() bool { return time.Now().UnixNano() < l.until.Load() }

// granted records a grant or renewal whose request was sent at sent.
func (l *regionLease) granted(sent time.Time) { l.until.Store(sent.Add(l.ttl - l.ttl/10).UnixNano()) }

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
func (l *regionLease) renew(last time.Time) {
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
				break
			}
			if errors.Is(err, pgkv.ErrFenced) {
				l.log.Error("region lease taken over by another node; stopping", "lease", l.name, "err", err)
				l.onLost(fmt.Errorf("region lease %s lost: %w", l.name, err))
				return
			}
			switch {
			case !l.valid() && !ranOut:
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
