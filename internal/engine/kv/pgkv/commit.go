package pgkv

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// fenceCode is the SQLSTATE the fence function raises.
const fenceCode = "RF001"

// commit applies ops in one transaction (see the package doc).
func (s *Store) commit(ops []kv.Op, sync bool) error {
	if s.closed.Load() {
		return kv.ErrClosed
	}
	if len(ops) == 0 {
		return nil
	}
	names, tokens, err := s.fences(ops)
	if err != nil {
		return err
	}
	ranges, points := kv.Squash(ops)
	var setK, setV, delK [][]byte
	for _, p := range points {
		if p.Kind == kv.OpSet {
			setK, setV = append(setK, p.Key), append(setV, p.Value)
		} else {
			delK = append(delK, p.Key)
		}
	}
	marker := make([]byte, 16)
	_, _ = rand.Read(marker) // crypto/rand never fails

	// A pgx.Batch is not reusable: every attempt builds its own.
	build := func() *pgx.Batch {
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		if !sync {
			b.Queue("SET LOCAL synchronous_commit TO OFF")
		}
		if len(names) > 0 {
			b.Queue(s.q.fence, names, tokens)
		}
		b.Queue(s.q.marker, marker)
		for _, r := range ranges {
			if r.Hi == nil {
				b.Queue("DELETE FROM "+s.schema+".kv WHERE k >= $1", r.Key)
			} else {
				b.Queue(s.q.delRange, r.Key, r.Hi)
			}
		}
		if len(delK) > 0 {
			b.Queue(s.q.del, delK)
		}
		if len(setK) > 0 {
			b.Queue(s.q.upsert, setK, setV)
		}
		b.Queue("COMMIT")
		return b
	}

	attempt := 0
	err = s.retry(s.ctx, "commit", func(ctx context.Context) error {
		attempt++
		if attempt > 1 {
			// A previous attempt may have committed without us hearing.
			done, err := s.settled(ctx, marker)
			if err != nil {
				return err
			}
			if done {
				return nil
			}
		}
		err := s.send(ctx, build())
		var pe *pgconn.PgError
		if attempt > 1 && errors.As(err, &pe) && pe.Code == "23505" && pe.TableName == "commits" {
			// An earlier attempt, still running when we looked, committed:
			// its marker row made this one wait, then conflict.
			return nil
		}
		return err
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == fenceCode {
		return fmt.Errorf("%w (leases %v)", ErrFenced, names)
	}
	if err != nil {
		return fmt.Errorf("pgkv: commit: %w", s.mapErr(err))
	}
	return nil
}

// send runs the batch on one connection and reads every result.
func (s *Store) send(ctx context.Context, b *pgx.Batch) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	br := conn.SendBatch(ctx, b)
	var first error
	for range b.Len() {
		if _, err := br.Exec(); err != nil && first == nil {
			first = err
		}
	}
	if err := br.Close(); err != nil && first == nil {
		first = err
	}
	if first != nil && conn.Conn().PgConn().TxStatus() == 'E' {
		// A failed statement left the transaction aborted: end it so the
		// connection goes back idle.
		_, _ = conn.Exec(ctx, "ROLLBACK")
	}
	return first
}

// settled reports whether the commit that wrote marker is durable.
func (s *Store) settled(ctx context.Context, marker []byte) (bool, error) {
	var n int
	if err := s.pool.QueryRow(ctx, s.q.settle, marker).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}

// fences lists the leases the ops' keys need and the tokens held.
func (s *Store) fences(ops []kv.Op) ([]string, []int64, error) {
	if s.opts.FenceKey == nil {
		return nil, nil, nil
	}
	var names []string
	for _, op := range ops {
		if n := s.opts.FenceKey(op.Key); n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil, nil, nil
	}
	slices.Sort(names)
	tokens := make([]int64, len(names))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, n := range names {
		t, ok := s.tokens[n]
		if !ok {
			return nil, nil, fmt.Errorf("%w: lease %q is not held by this node", ErrFenced, n)
		}
		tokens[i] = t
	}
	return names, tokens, nil
}
