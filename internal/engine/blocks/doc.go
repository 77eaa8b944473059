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
// as blocks need them. A file is a header, then the payload. A sealed
// block has the 8-byte header of version 1, "RFB" ‖ 1 ‖ mode 1 ‖ three
// zero bytes, then the Sealer's output (12-byte nonce ‖ AES-256-GCM
// ciphertext ‖ tag; per-block key HKDF(data key, id); additional data =
// lineage ‖ id). A plaintext block has the 12-byte header of version 2,
// "RFB" ‖ 2 ‖ mode 0 ‖ three zero bytes ‖ CRC-32C (Castagnoli,
// big-endian) of id ‖ plaintext, then the plaintext; plaintext blocks
// written before it have the version 1 header (mode 0) and no checksum,
// and are still read. Writes go to a "tmp-" file in the target directory, are
// synced and renamed; Sync fsyncs the touched directories (new fan-out
// directories first, then their parents) before the metadata that names
// the block commits. Every read checks the block. GetInto (the engine's
// read path) and GetForCopy (shipping) check what the stored form
// carries (DecodeStored): the AES-GCM tag of a sealed block, which binds
// it to the lineage and id; the CRC-32C of a version 2 plaintext block,
// which covers id too, so a file under another block's name fails; the
// keyed hash of a version 1 plaintext block. Get (scrub, verification,
// repair) checks the same and re-hashes the plaintext, proving it is id's
// (a CRC catches damage, not a forgery). A mismatch, a bad header, a
// failed tag or checksum is ErrCorrupt, counted in Stats.
//
// A Dir given a Descs (the engine's: one descriptor budget for all its
// domains) keeps the block files it wrote, and those GetInto opened, open
// in a bounded LRU, so GetInto reads a block again with one pread, no
// openat, fstat or close (checked as any read). A kept file is always the
// one under its block's name: it changes with a Put's rename, a Delete's
// removal (which closes it) and a read's open, under the block's stripe
// lock. Get and GetForCopy read the file under the name.
//
// Memory is the in-memory implementation; blockstest holds the conformance
// suite both pass.
package blocks
