// Package blocks is the content-addressed block store seam. A block id is
// an algorithm byte (1 = keyed BLAKE3-256, github.com/zeebo/blake3) and the
// 32-byte keyed digest of the block's plaintext, under the lineage's id key
// (Hasher), so a file system and its replicas name equal data equally.
//
// Dir stores one file per block under a hex fan-out of the digest. A new
// store has the flat layout, <dir>/<d0>/<hex id>: its 256 directories and
// the marker directory <dir>/layout-flat are made and synced when the
// store is created, so a block adds an entry to a directory that already
// exists (one file fsync, then one directory fsync at Sync). A store
// without the marker (made before) keeps the two-level layout of the
// first two digest bytes, <dir>/<d0>/<d1>/<hex id>, its directories made
// as blocks need them. A file is an 8-byte header,
// "RFB" ‖ version 1 ‖ mode (0 plaintext, 1 sealed) ‖ three zero bytes, then
// the plaintext or the Sealer's output (12-byte nonce ‖ AES-256-GCM
// ciphertext ‖ tag; per-block key HKDF(data key, id); additional data =
// lineage ‖ id). Writes go to a "tmp-" file in the target directory, are
// synced and renamed; Sync fsyncs the touched directories (new fan-out
// directories first, then their parents) before the metadata that names
// the block commits. Every read checks the block: Get (scrub,
// verification) re-hashes the plaintext and proves it is id's; GetInto
// (the engine's read path) and GetForCopy (shipping) leave a sealed
// block's check to its AES-GCM tag, which binds it to id. A mismatch, a
// bad header or a failed tag is ErrCorrupt, counted in Stats.
//
// Memory is the in-memory implementation; blockstest holds the conformance
// suite both pass.
package blocks
