package pgkv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// transient reports whether err is a failure to reach the database (or
// one it reported while going down) after which the operation can be
// tried again on another connection.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"): // connection exception
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // shutdown, crash, cannot connect now
			return true
		case pe.Code == "40001", pe.Code == "40P01": // serialization failure, deadlock
			return true
		case pe.Code == "25006": // read only transaction: a standby during failover
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.SafeToRetry(err) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "conn closed") ||
		strings.Contains(err.Error(), "unexpected EOF")
}

// retry runs f until it succeeds, fails for a non-transient reason, ctx
// ends, RetryFor has passed since the first failure or Options.Stopping
// is closed.
func (s *Store) retry(ctx context.Context, what string, f func(ctx context.Context) error) error {
	var first time.Time
	delay := 20 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := f(ctx)
		if err == nil || !transient(err) {
			if err == nil && attempt > 0 {
				s.log.Info("pgkv: database reachable again", "op", what, "attempts", attempt+1, "after", time.Since(first).Round(time.Millisecond))
			}
			return err
		}
		if first.IsZero() {
			first = time.Now()
			s.log.Warn("pgkv: database unreachable; retrying", "op", what, "err", err)
		}
		if time.Since(first) > s.opts.RetryFor {
			return fmt.Errorf("%w: %s: gave up after %v: %w", ErrUnavailable, what, s.opts.RetryFor, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: %w (last error: %w)", ErrUnavailable, what, ctx.Err(), err)
		case <-s.opts.Stopping:
			return fmt.Errorf("%w: %s: not retried while stopping: %w", ErrUnavailable, what, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
}
