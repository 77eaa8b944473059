// Package kv is the ordered transactional key-value seam under the engine:
// the contract (Store, Batch, Snapshot, Iterator), an in-memory
// implementation that can simulate a crash (Memory), and a wrapper that
// seals values with AES-256-GCM below the seam (Sealed). The Pebble v2
// implementation lives in kv/pebblekv and the conformance suite every
// implementation passes in kv/kvtest.
package kv
