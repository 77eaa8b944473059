package pgkv

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// Errors.
var (
	// ErrFenced: a commit wrote keys guarded by a lease this store does
	// not hold (any more): another node owns them.
	ErrFenced = fmt.Errorf("pgkv: the lease guarding these keys is held by another node: %w", kv.ErrFenced)
	// ErrUnavailable: the database could not be reached within RetryFor.
	ErrUnavailable = errors.New("pgkv: database unavailable")
)

// Defaults.
const (
	DefaultSchema   = "regionfs"
	DefaultMaxConns = 32
	DefaultRetryFor = time.Minute
)

// Options configure a Store.
type Options struct {
	// URL is a PostgreSQL connection string (postgres://user@host/db?…).
	URL string
	// Schema holds the tables; DefaultSchema when empty.
	Schema string
	// CreateDatabase creates the URL's database when it does not exist
	// (connecting to the "postgres" database of the same server).
	CreateDatabase bool
	// MaxConns bounds the connection pool (open snapshots and iterators
	// hold one each).
	MaxConns int32
	// RetryFor is how long reads and commits are retried across
	// connection failures before ErrUnavailable.
	RetryFor time.Duration
	// FenceKey returns the name of the lease guarding key, or "".
	FenceKey func(key []byte) string
	Logger   *slog.Logger
	// Stopping, when closed (a process shutting down that has waited
	// long enough), ends the retries: an operation that cannot reach the
	// database fails at once with ErrUnavailable instead of waiting
	// RetryFor for it.
	Stopping <-chan struct{}
}

// Store is a kv.Store on PostgreSQL.
type Store struct {
	opts   Options
	log    *slog.Logger
	pool   *pgxpool.Pool
	schema string
	q      queries

	closed atomic.Bool
	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards the fields below
	tokens map[string]int64
}

var _ kv.Store = (*Store)(nil)

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open connects to the database and creates the schema when absent.
func Open(ctx context.Context, o Options) (*Store, error) {
	o.Schema = cmp.Or(o.Schema, DefaultSchema)
	o.MaxConns = cmp.Or(o.MaxConns, DefaultMaxConns)
	o.RetryFor = cmp.Or(o.RetryFor, DefaultRetryFor)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if !identRE.MatchString(o.Schema) {
		return nil, fmt.Errorf("pgkv: schema name %q: want lower-case letters, digits and _", o.Schema)
	}
	cfg, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		return nil, fmt.Errorf("pgkv: metadata URL: %w", err)
	}
	cfg.MaxConns = o.MaxConns
	cfg.ConnConfig.RuntimeParams["application_name"] = "regionfs"
	if o.CreateDatabase {
		if err := createDatabase(ctx, cfg.ConnConfig); err != nil {
			return nil, err
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgkv: connect: %w", err)
	}
	s := &Store{opts: o, log: o.Logger, pool: pool, schema: o.Schema, q: newQueries(o.Schema), tokens: map[string]int64{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.sweepMarkers()
	return s, nil
}

// createDatabase creates cc's database when it does not exist.
func createDatabase(ctx context.Context, cc *pgx.ConnConfig) error {
	c, err := pgx.ConnectConfig(ctx, cc)
	if err == nil {
		return c.Close(ctx)
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "3D000" { // invalid_catalog_name
		return fmt.Errorf("pgkv: connect: %w", err)
	}
	admin := cc.Copy()
	admin.Database = "postgres"
	ac, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("pgkv: connect to create database %q: %w", cc.Database, err)
	}
	defer ac.Close(ctx)
	_, err = ac.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cc.Database}.Sanitize())
	// Created meanwhile by another node: 42P04 (duplicate_database), or
	// 23505 (unique_violation in pg_database) when both CREATE DATABASE
	// ran at the same time.
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && (pe.Code == "42P04" || pe.Code == "23505") {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("pgkv: create database %q: %w", cc.Database, err)
	}
	return nil
}

func (s *Store) migrate(ctx context.Context) error {
	sc := s.schema
	ddl := fmt.Sprintf(`
CREATE SCHEMA IF NOT EXISTS %[1]s;
CREATE TABLE IF NOT EXISTS %[1]s.kv (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE IF NOT EXISTS %[1]s.leases (name text PRIMARY KEY, holder text NOT NULL, token bigint NOT NULL, expires timestamptz NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS leases_token ON %[1]s.leases (name, token);
ALTER TABLE %[1]s.leases ADD COLUMN IF NOT EXISTS want text NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS %[1]s.nodes (name text PRIMARY KEY, addr text NOT NULL, draining bool NOT NULL DEFAULT false,
	seen timestamptz NOT NULL, started timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS %[1]s.commits (id bytea PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());
CREATE OR REPLACE FUNCTION %[1]s.fence(names text[], tokens bigint[]) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE n int;
BEGIN
	SELECT count(*) INTO n FROM (
		SELECT 1 FROM %[1]s.leases l JOIN unnest(names, tokens) AS f(name, token)
		ON l.name = f.name AND l.token = f.token FOR KEY SHARE OF l) held;
	IF n <> cardinality(names) THEN
		RAISE EXCEPTION 'regionfs: fenced: a lease guarding this commit was taken over' USING ERRCODE = 'RF001';
	END IF;
END $fn$;`, sc)
	// Concurrent first starts of several nodes race on CREATE … IF NOT
	// EXISTS (unique violations in the catalogs): serialise them.
	err := s.retry(ctx, "create schema", func(ctx context.Context) error {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(7270617)"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, ddl); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		return fmt.Errorf("pgkv: create schema %s: %w", sc, err)
	}
	return nil
}

// queries are the statements, with the schema filled in.
type queries struct {
	get, fwd, fwdTo, back, backFrom, upsert, del, delRange, marker, settle string
	sweep, fence                                                           string
}

func newQueries(sc string) queries {
	t := sc + ".kv"
	return queries{
		get:      "SELECT v FROM " + t + " WHERE k = $1",
		fwd:      "SELECT k, v FROM " + t + " WHERE k >= $1 ORDER BY k LIMIT $2",
		fwdTo:    "SELECT k, v FROM " + t + " WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3",
		back:     "SELECT k, v FROM " + t + " WHERE k >= $1 ORDER BY k DESC LIMIT $2",
		backFrom: "SELECT k, v FROM " + t + " WHERE k >= $1 AND k < $2 ORDER BY k DESC LIMIT $3",
		upsert:   "INSERT INTO " + t + " (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
		del:      "DELETE FROM " + t + " WHERE k = ANY($1::bytea[])",
		delRange: "DELETE FROM " + t + " WHERE k >= $1 AND k < $2",
		marker:   "INSERT INTO " + sc + ".commits (id) VALUES ($1)",
		settle:   "SELECT count(*) FROM " + sc + ".commits WHERE id = $1",
		sweep:    "DELETE FROM " + sc + ".commits WHERE at < now() - interval '15 minutes'",
		fence:    "SELECT " + sc + ".fence($1::text[], $2::bigint[])",
	}
}

// Get returns the latest committed value of key.
func (s *Store) Get(key []byte) ([]byte, error) {
	if s.closed.Load() {
		return nil, kv.ErrClosed
	}
	var v []byte
	err := s.retry(s.ctx, "get", func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, s.q.get, key).Scan(&v)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, kv.ErrNotFound
	}
	if err != nil {
		return nil, s.mapErr(err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// NewIter iterates [lo, hi) as of now, in a snapshot of its own.
func (s *Store) NewIter(lo, hi []byte) (kv.Iterator, error) {
	if s.closed.Load() {
		return nil, kv.ErrClosed
	}
	snap := s.newSnapshot()
	if snap.err != nil {
		return nil, snap.err
	}
	it, err := snap.NewIter(lo, hi)
	if err != nil {
		snap.Close()
		return nil, err
	}
	it.(*iter).owned = snap
	return it, nil
}

// NewSnapshot returns a point-in-time view; a failure to open it is
// reported by its methods.
func (s *Store) NewSnapshot() kv.Snapshot { return s.newSnapshot() }

// NewBatch returns an indexed batch committed as one transaction.
func (s *Store) NewBatch() kv.Batch {
	return kv.NewIndexedBatch(s, s.commit)
}

// Close closes the pool; it waits for open snapshots to be closed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.cancel()
	s.wg.Wait()
	s.pool.Close()
	return nil
}

// Pool exposes the connection pool (statistics).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

func (s *Store) mapErr(err error) error {
	if s.closed.Load() && errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %w", kv.ErrClosed, err)
	}
	return err
}

// sweepMarkers deletes old commit markers.
func (s *Store) sweepMarkers() {
	defer s.wg.Done()
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.pool.Exec(s.ctx, s.q.sweep); err != nil && s.ctx.Err() == nil {
			s.log.Warn("pgkv: sweep commit markers", "err", err)
		}
	}
}
