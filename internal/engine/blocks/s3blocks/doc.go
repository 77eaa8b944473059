// Package s3blocks is a blocks.Store on S3-compatible object storage
// (aws-sdk-go-v2), for regions whose nodes share one bucket.
//
// # Objects
//
// One object per block: <prefix><hex digest[0]>/<hex id>, holding the same
// bytes as a block file of blocks.Dir (blocks.Encode: header, then the
// plaintext or the AES-256-GCM sealed block), so block ids stay keyed
// hashes of the plaintext and encryption happens before anything leaves the
// node. The one-byte hex fan-out spreads request load over key prefixes.
// A successful PUT is durable, so Sync has nothing to do.
//
// Put asks HEAD first (a present block is not written again) and uploads
// objects above MultipartThreshold as a multipart upload whose parts go up
// in parallel (Concurrency), aborting the upload on failure. Get reads
// through the local Cache and verifies every block (hash and tag); a
// corrupt cached copy is dropped and fetched again, a corrupt object is
// ErrCorrupt. Has always asks the object store (a cached copy may outlive
// a deletion by another node). RemoveTemps aborts the unfinished multipart
// uploads of the store's blocks (the engine's orphan sweep calls it after
// an unclean stop).
//
// # Failures
//
// Network errors, timeouts, 5xx and throttling answers are retried with
// exponential backoff (100 ms doubling to 5 s) for RetryFor: while the
// object store is down, writes and reads wait; past RetryFor they fail
// with ErrUnavailable, which names the operation, the block and the last
// error (at once once Options.Stopping is closed: a process shutting down
// does not wait for an object store that is gone). Nothing is acknowledged before the object store acknowledged it.
//
// # Cache
//
// Cache is a directory of verified objects (the stored, possibly sealed
// form) bounded in bytes, least recently used first out, shared by every
// store of a node. Files are written to a temporary name and renamed, not
// synced: after a crash a damaged copy fails verification and is fetched
// again.
package s3blocks
