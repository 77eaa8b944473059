package pgkv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Lease is an ownership lease: one holder at a time, a token that grows
// with every grant (the fencing token), an expiry on the database's clock,
// and the node it is to be handed to next (Want).
type Lease struct {
	Name    string
	Holder  string
	Token   int64
	Expires time.Time
	// Expired reports whether Expires had passed when the lease was read
	// (judged by the database's clock).
	Expired bool
	// Want names the node the lease is reserved for: only that node may
	// acquire it, and a holder that is not that node hands it over. ""
	// means anyone.
	Want string
}

// micros is ttl in the unit the statements take.
func micros(ttl time.Duration) int64 { return ttl.Microseconds() }

// Acquire grants the lease name to holder for ttl when it is free, expired
// or already held by holder (a restarted node takes its own leases back at
// once), and it is not reserved for another node. Every grant bumps the
// token and clears the reservation, so whatever held the lease before,
// including an earlier incarnation of holder, can no longer commit keys it
// guards. ok is false (and the lease is the current one) otherwise.
func (s *Store) Acquire(ctx context.Context, name, holder string, ttl time.Duration) (l Lease, ok bool, err error) {
	err = s.retry(ctx, "acquire lease", func(ctx context.Context) error {
		row := s.pool.QueryRow(ctx, `
INSERT INTO `+s.schema+`.leases AS l (name, holder, token, expires, want)
VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 microsecond', '')
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = l.token + 1, expires = excluded.expires, want = ''
WHERE (l.expires < clock_timestamp() OR l.holder = excluded.holder) AND (l.want = '' OR l.want = excluded.holder)
RETURNING token, expires`, name, holder, micros(ttl))
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
WHERE name = $1 AND token = $2 RETURNING expires`, name, token, micros(ttl)).Scan(&exp)
	if errors.Is(err, pgx.ErrNoRows) {
		s.forget(name, token)
		return time.Time{}, fmt.Errorf("%w: lease %q was taken over", ErrFenced, name)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("pgkv: renew lease %q: %w", name, err)
	}
	return exp, nil
}

// Renewal is the outcome of RenewAll.
type Renewal struct {
	// Held maps each lease still held (now renewed) to its reservation
	// (Lease.Want): a holder reserved away should hand the lease over.
	Held map[string]string
	// Lost lists the leases another node took over since the last
	// renewal; the store has forgotten their tokens.
	Lost []string
}

// RenewAll extends every lease this store holds by ttl from now, in one
// statement, and records heartbeat of node (Announce) in the same round
// trip when node is not "". A lease whose token changed is lost. An
// expired lease that nobody took over in the meantime is renewed: its
// token still fences everything it guards.
func (s *Store) RenewAll(ctx context.Context, node string, ttl time.Duration) (Renewal, error) {
	s.mu.Lock()
	names := make([]string, 0, len(s.tokens))
	tokens := make([]int64, 0, len(s.tokens))
	for n, t := range s.tokens {
		names, tokens = append(names, n), append(tokens, t)
	}
	s.mu.Unlock()
	r := Renewal{Held: map[string]string{}}
	b := &pgx.Batch{}
	if node != "" {
		b.Queue(`UPDATE `+s.schema+`.nodes SET seen = clock_timestamp() WHERE name = $1`, node)
	}
	b.Queue(`
UPDATE `+s.schema+`.leases AS l SET expires = clock_timestamp() + $3 * interval '1 microsecond'
FROM unnest($1::text[], $2::bigint[]) AS h(name, token)
WHERE l.name = h.name AND l.token = h.token RETURNING l.name, l.want`, names, tokens, micros(ttl))
	br := s.pool.SendBatch(ctx, b)
	if node != "" {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return Renewal{}, fmt.Errorf("pgkv: heartbeat of node %s: %w", node, err)
		}
	}
	rows, err := br.Query()
	if err == nil {
		for rows.Next() {
			var name, want string
			if err = rows.Scan(&name, &want); err != nil {
				break
			}
			r.Held[name] = want
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Renewal{}, fmt.Errorf("pgkv: renew leases: %w", err)
	}
	for i, n := range names {
		if _, ok := r.Held[n]; !ok {
			s.forget(n, tokens[i])
			r.Lost = append(r.Lost, n)
		}
	}
	return r, nil
}

// Release gives a held lease up: it expires now, so another node (the one
// it is reserved for, if any) can take it at once. The token stays, so
// this store's later commits are refused.
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

// Reserve sets whom the lease name is to be handed to (want; "" lifts the
// reservation), creating the lease unheld when it does not exist yet.
func (s *Store) Reserve(ctx context.Context, name, want string) error {
	err := s.retry(ctx, "reserve lease", func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `
INSERT INTO `+s.schema+`.leases (name, holder, token, expires, want) VALUES ($1, '', 0, 'epoch', $2)
ON CONFLICT (name) DO UPDATE SET want = excluded.want`, name, want)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgkv: reserve lease %q for %q: %w", name, want, err)
	}
	return nil
}

// DropLease deletes the lease name unless it is held (for leases of things
// that no longer exist).
func (s *Store) DropLease(ctx context.Context, name string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM `+s.schema+`.leases WHERE name = $1 AND (holder = '' OR expires < clock_timestamp())`, name)
	if err != nil {
		return fmt.Errorf("pgkv: drop lease %q: %w", name, err)
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

const leaseColumns = `name, holder, token, expires, expires < clock_timestamp(), want`

func scanLease(r pgx.Row, l *Lease) error {
	return r.Scan(&l.Name, &l.Holder, &l.Token, &l.Expires, &l.Expired, &l.Want)
}

func (s *Store) lease(ctx context.Context, name string) (Lease, error) {
	var l Lease
	err := scanLease(s.pool.QueryRow(ctx, `SELECT `+leaseColumns+` FROM `+s.schema+`.leases WHERE name = $1`, name), &l)
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
		rows, err := s.pool.Query(ctx, `SELECT `+leaseColumns+` FROM `+s.schema+
			`.leases WHERE starts_with(name, $1) ORDER BY name`, prefix)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var l Lease
			if err := scanLease(rows, &l); err != nil {
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

// Node is a node sharing the database, as it announced itself.
type Node struct {
	Name string
	// Addr is where the node runs (a host name or an address), as it
	// announced it.
	Addr string
	// Draining: the node is to give its leases up and take no new ones.
	Draining bool
	// Seen is its last heartbeat, Age how long ago that was and Started
	// when it announced itself (all on the database's clock).
	Seen, Started time.Time
	Age           time.Duration
}

// Announce records that node runs (and where: addr); a node
// that announced itself before keeps its drain flag.
func (s *Store) Announce(ctx context.Context, node, addr string) error {
	err := s.retry(ctx, "announce node", func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `
INSERT INTO `+s.schema+`.nodes (name, addr, seen, started) VALUES ($1, $2, clock_timestamp(), clock_timestamp())
ON CONFLICT (name) DO UPDATE SET addr = excluded.addr, seen = excluded.seen, started = excluded.started`, node, addr)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgkv: announce node %s: %w", node, err)
	}
	return nil
}

// Depart removes node from the list of nodes (a clean stop).
func (s *Store) Depart(ctx context.Context, node string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM `+s.schema+`.nodes WHERE name = $1`, node); err != nil {
		return fmt.Errorf("pgkv: node %s departs: %w", node, err)
	}
	return nil
}

// SetDraining sets or clears a node's drain flag; it reports whether the
// node is known.
func (s *Store) SetDraining(ctx context.Context, node string, on bool) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE `+s.schema+`.nodes SET draining = $2 WHERE name = $1`, node, on)
	if err != nil {
		return false, fmt.Errorf("pgkv: drain node %s: %w", node, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Heartbeat records that node is alive and reports its drain flag. known
// is false when the node has not announced itself (Announce).
func (s *Store) Heartbeat(ctx context.Context, node string) (draining, known bool, err error) {
	err = s.pool.QueryRow(ctx, `UPDATE `+s.schema+`.nodes SET seen = clock_timestamp() WHERE name = $1 RETURNING draining`, node).Scan(&draining)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("pgkv: heartbeat of node %s: %w", node, err)
	}
	return draining, true, nil
}

// Nodes lists the nodes that announced themselves, by name.
func (s *Store) Nodes(ctx context.Context) ([]Node, error) {
	var out []Node
	err := s.retry(ctx, "list nodes", func(ctx context.Context) error {
		out = out[:0]
		rows, err := s.pool.Query(ctx, `SELECT name, addr, draining, seen, started, extract(epoch FROM clock_timestamp() - seen)::float8 FROM `+s.schema+`.nodes ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n Node
			var age float64
			if err := rows.Scan(&n.Name, &n.Addr, &n.Draining, &n.Seen, &n.Started, &age); err != nil {
				return err
			}
			n.Age = time.Duration(age * float64(time.Second))
			out = append(out, n)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("pgkv: list nodes: %w", err)
	}
	return out, nil
}
