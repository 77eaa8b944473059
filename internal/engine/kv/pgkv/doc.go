// Package pgkv is a kv.Store on PostgreSQL (pgx v5): the metadata store of
// a region whose nodes share one database.
//
// # Tables (in Options.Schema, created when absent)
//
//	kv(k bytea PRIMARY KEY, v bytea NOT NULL)     the ordered keyspace (bytea orders bytewise)
//	leases(name text PRIMARY KEY, holder text,    ownership leases with fencing tokens;
//	       token bigint, expires timestamptz,     want names the node a lease is to be
//	       want text)                             handed to ('' = anyone)
//	nodes(name text PRIMARY KEY, addr text,       the nodes sharing the database: address,
//	      draining bool, seen, started)           drain flag, last heartbeat (database clock)
//	commits(id bytea PRIMARY KEY, at timestamptz) one row per commit, to settle commits whose
//	                                              outcome a lost connection hid (kept 15 min)
//	fence(names text[], tokens bigint[])          function: raises SQLSTATE RF001 unless every
//	                                              named lease still carries the given token
//
// The engine's change journal ('j' keys) lives in kv like every other key,
// so a commit and its journal record are one PostgreSQL transaction.
//
// # Isolation and durability
//
//   - A Batch keeps its writes in memory (kv.NewIndexedBatch) and commits
//     them as one transaction sent in one round trip (pipelined): BEGIN,
//     the fence check, the commit marker, range deletions, point deletions
//     (DELETE … = ANY), sets (one INSERT … SELECT FROM unnest … ON CONFLICT
//     DO UPDATE), COMMIT. With sync the commit returns once PostgreSQL
//     reports it durable (synchronous_commit as configured on the server,
//     so synchronous standbys count when configured); without sync it runs
//     with synchronous_commit off, and the next synced commit flushes it
//     too (the WAL is flushed in order).
//   - A Snapshot is a REPEATABLE READ READ ONLY transaction on its own
//     connection, its snapshot taken when NewSnapshot returns. Store.NewIter
//     opens one for the iterator's life; Store.Get reads the latest
//     committed state in one statement.
//   - Iterators fetch pages by keyset (k > last ORDER BY k LIMIT n, and the
//     reverse for Prev/Last/SeekLT); page sizes adapt to value sizes.
//
// # Fencing
//
// Options.FenceKey names the lease that guards a key ("" = none). A commit
// writing guarded keys checks, inside its transaction and under FOR KEY
// SHARE row locks, that this store still holds each lease with the token it
// was granted (Store.Acquire). The token is a key column (unique index on
// name, token), so a takeover, which bumps it, waits for commits in flight
// and makes later ones fail with ErrFenced, while renewals (which change
// only the expiry) do not wait for commits. A stale owner can therefore never
// commit after another node took its lease over. Lease times use the
// database's clock, so the nodes' clocks need not agree.
//
// # Failures
//
// Connection failures (a database restart, a failover to a standby) are
// retried with backoff for Options.RetryFor: reads and commits block rather
// than fail. A commit whose outcome a broken connection hid is settled by
// looking up its marker in commits, so it is neither lost nor applied
// twice. Past RetryFor the error is returned (ErrUnavailable), and at once
// once Options.Stopping is closed (a process shutting down does not wait
// for a database that is gone).
package pgkv
