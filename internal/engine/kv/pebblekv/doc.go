// Package pebblekv implements kv.Store on Pebble v2
// (github.com/cockroachdb/pebble/v2), the default metadata store: one DB per
// server, created at the newest format major version, with a block cache
// that several stores may share. Batches are indexed (read-your-writes);
// Commit(sync) is a Pebble sync commit, whose group commit makes many
// concurrent synced batches share one WAL fsync. Ingest (kv.Ingester)
// writes sorted pairs into an sstable, regionfs-ingest-N.sst in the
// store's directory, synced, and has Pebble link it in (a replica's
// initial sync); one a crash left there is removed at Open. The on-disk
// format is Pebble's; the keys and values are the engine's (see package
// engine).
package pebblekv
