package pgkv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Lease is an ownership lease: one holder at a time, a token that grows
// with every grant (the fencing token), and an expiry on the database's
// clock.
type Lease struct {
	Name    string
	Holder  string
	Token   int64
	Expires time.Time
	// Expired reports whether Expires had passed when the lease was read
	// (judged by the database's clock).
	Expired bool
}

// Acquire grants the lease name to holder for ttl when it is free, expired
// or already held by holder (a restarted node takes its own leases back at
// once). Every grant bumps the token, so whatever held the lease before,
// including an earlier incarnation of holder, can no longer commit keys it
// guards. ok is false (and the lease is the current one) when another
// holder's lease is still running.
func (s *Store) Acquire(ctx context.Context, name, holder string, ttl time.Duration) (l Lease, ok bool, err error) {
	err = s.retry(ctx, "acquire lease", func(ctx context.Context) error {
		row := s.pool.QueryRow(ctx, `
INSERT INTO `+s.schema+`.leases AS l (name, holder, token, expires)
VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 microsecond')
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = l.token + 1, expires = excluded.expires
WHERE l.expires < clock_timestamp() OR l.holder = excluded.holder
RETURNING token, expires`, name, holder, ttl.Microseconds())
		err := row.Scan(&l.Token, &l.Expires)
		if err == nil {
			l.Name, l.Holder, ok = name, holder, true
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		ok = false
		l, err = s.lease(ctx, name)
		return err
	})
	if err != nil {
		return Lease{}, false, fmt.Errorf("pgkv: acquire lease %q: %w", name, err)
	}
	if ok {
		s.mu.Lock()
		s.tokens[name] = l.Token
		s.mu.Unlock()
	}
	return l, ok, nil
}

// Renew extends a held lease by ttl from now. It fails with ErrFenced when
// the lease was taken over (the store then forgets its token).
func (s *Store) Renew(ctx context.Context, name string, ttl time.Duration) (time.Time, error) {
	s.mu.Lock()
	token, held := s.tokens[name]
	s.mu.Unlock()
	if !held {
		return time.Time{}, fmt.Errorf("%w: lease %q is not held by this node", ErrFenced, name)
	}
	var exp time.Time
	err := s.pool.QueryRow(ctx, `
UPDATE `+s.schema+`.leases SET expires = clock_timestamp() + $3 * interval '1 microsecond'
WHERE name = $1 AND token = $2 RETURNING expires`, name, token, ttl.Microseconds()).Scan(&exp)
	if errors.Is(err, pgx.ErrNoRows) {
		s.forget(name, token)
		return time.Time{}, fmt.Errorf("%w: lease %q was taken over", ErrFenced, name)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("pgkv: renew lease %q: %w", name, err)
	}
	return exp, nil
}

// Release gives a held lease up: it expires now, so another node can take
// it at once. The token stays, so this store's later commits are refused.
func (s *Store) Release(ctx context.Context, name string) error {
	s.mu.Lock()
	token, held := s.tokens[name]
	delete(s.tokens, name)
	s.mu.Unlock()
	if !held {
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE `+s.schema+`.leases SET expires = clock_timestamp() - interval '1 second', holder = ''
WHERE name = $1 AND token = $2`, name, token)
	if err != nil {
		return fmt.Errorf("pgkv: release lease %q: %w", name, err)
	}
	return nil
}

// Forget drops the local token of a lease without touching the database:
// later commits of keys it guards fail with ErrFenced.
func (s *Store) Forget(name string) {
	s.mu.Lock()
	delete(s.tokens, name)
	s.mu.Unlock()
}

func (s *Store) forget(name string, token int64) {
	s.mu.Lock()
	if s.tokens[name] == token {
		delete(s.tokens, name)
	}
	s.mu.Unlock()
}

// Held reports the token this store holds for name.
func (s *Store) Held(name string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[name]
	return t, ok
}

func (s *Store) lease(ctx context.Context, name string) (Lease, error) {
	l := Lease{Name: name}
	err := s.pool.QueryRow(ctx, `SELECT holder, token, expires, expires < clock_timestamp() FROM `+s.schema+`.leases WHERE name = $1`,
		name).Scan(&l.Holder, &l.Token, &l.Expires, &l.Expired)
	if errors.Is(err, pgx.ErrNoRows) {
		return Lease{Name: name, Expired: true}, nil
	}
	return l, err
}

// Leases lists the leases whose names start with prefix.
func (s *Store) Leases(ctx context.Context, prefix string) ([]Lease, error) {
	var out []Lease
	err := s.retry(ctx, "list leases", func(ctx context.Context) error {
		out = out[:0]
		rows, err := s.pool.Query(ctx, `SELECT name, holder, token, expires, expires < clock_timestamp() FROM `+s.schema+
			`.leases WHERE starts_with(name, $1) ORDER BY name`, prefix)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var l Lease
			if err := rows.Scan(&l.Name, &l.Holder, &l.Token, &l.Expires, &l.Expired); err != nil {
				return err
			}
			out = append(out, l)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("pgkv: list leases: %w", err)
	}
	return out, nil
}
