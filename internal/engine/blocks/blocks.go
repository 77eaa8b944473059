package blocks

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/zeebo/blake3"
)

// Errors.
var (
	// ErrNotFound: no block with that id is stored.
	ErrNotFound = errors.New("blocks: not found")
	// ErrCorrupt: a stored block does not verify (hash mismatch, bad header,
	// failed authentication). It is counted in Stats and never retried.
	ErrCorrupt = errors.New("blocks: corrupt block")
)

// Alg is the algorithm tag in the first byte of an ID.
type Alg byte

// AlgBLAKE3 is keyed BLAKE3-256 (github.com/zeebo/blake3).
const AlgBLAKE3 Alg = 1

// IDSize is the size of an ID in bytes: one algorithm byte and a 32-byte digest.
const IDSize = 33

// KeySize is the size of a hash key (the per-lineage id key) in bytes.
const KeySize = 32

// ID names a block by its content: Alg ‖ keyed digest of the plaintext.
type ID [IDSize]byte

// Alg returns the algorithm tag.
func (id ID) Alg() Alg { return Alg(id[0]) }

// IsZero reports whether id is the zero value (no block).
func (id ID) IsZero() bool { return id == ID{} }

// String returns the lower-case hex form used in file names.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID parses the hex form of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("blocks: id %q: want %d hex digits", s, 2*IDSize)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("blocks: id %q: %w", s, err)
	}
	if id.Alg() != AlgBLAKE3 {
		return id, fmt.Errorf("blocks: id %q: unknown algorithm %d", s, id[0])
	}
	return id, nil
}

// IDFromBytes copies b into an ID, checking its size and algorithm.
func IDFromBytes(b []byte) (ID, error) {
	var id ID
	if len(b) != IDSize {
		return id, fmt.Errorf("blocks: id of %d bytes, want %d", len(b), IDSize)
	}
	copy(id[:], b)
	if id.Alg() != AlgBLAKE3 {
		return id, fmt.Errorf("blocks: id with unknown algorithm %d", id[0])
	}
	return id, nil
}

// Hasher computes block ids under one lineage's id key. It is safe for
// concurrent use.
type Hasher struct {
	pool sync.Pool
	sums atomic.Uint64
}

// NewHasher returns a Hasher keyed with key (KeySize bytes).
func NewHasher(key []byte) (*Hasher, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("blocks: hash key of %d bytes, want %d", len(key), KeySize)
	}
	k := append([]byte(nil), key...)
	if _, err := blake3.NewKeyed(k); err != nil {
		return nil, fmt.Errorf("blocks: hash key: %w", err)
	}
	h := &Hasher{}
	h.pool.New = func() any {
		d, _ := blake3.NewKeyed(k) // key length checked above
		return d
	}
	return h, nil
}

// Sum returns the id of data.
func (h *Hasher) Sum(data []byte) ID {
	d := h.pool.Get().(*blake3.Hasher)
	d.Reset()
	_, _ = d.Write(data)
	var id ID
	id[0] = byte(AlgBLAKE3)
	d.Sum(id[1:1])
	h.pool.Put(d)
	h.sums.Add(1)
	return id
}

// Sums reports how many times Sum has run: tests count the keyed hashes
// an operation costs (a cold read of a block whose stored form carries
// its own check costs none; a scrub costs one per block).
func (h *Hasher) Sums() uint64 { return h.sums.Load() }

// Stats are cumulative counters of a Store.
type Stats struct {
	Puts         uint64 // blocks written (not counting puts of present blocks)
	PutBytes     uint64 // plaintext bytes written
	Gets         uint64
	GetBytes     uint64
	Deletes      uint64
	DeletedBytes uint64 // bytes freed by deletes, as stored (0 where a store cannot tell)
	CorruptReads uint64 // reads that returned ErrCorrupt
	// RawReads: block reads whose data came whole from the page cache
	// with a raw read (WithRawReads, Dir on a disk.OS; the open, fstat
	// and close go through the runtime); UncachedReads: such reads whose
	// data the page cache lacked, read on through the Go runtime's path.
	// 0 where a store cannot tell.
	RawReads, UncachedReads uint64
	// FileOpens: block files opened by name to read them (a Dir; a read
	// from a file kept open, DirOptions.Descs, opens none).
	FileOpens uint64
}

// Store is the content-addressed block store seam.
//
// Contract:
//   - Put(id, data) stores data under id; the caller computed id with the
//     store's Hasher (Put does not re-hash). Put of an id that is already
//     stored is a no-op. When Put returns, the block's bytes are durable
//     (written to a temporary name, synced, renamed); its name becomes
//     durable at the next Sync, which callers run before committing
//     metadata that references the block.
//   - Get verifies what it reads (hash of the plaintext equals id, and the
//     authentication tag when sealed, the checksum of a block file that
//     carries one) and returns ErrCorrupt otherwise; the returned slice is
//     the caller's. (The read path of a Dir, BufGetter, checks less.)
//   - Delete of an absent id is not an error. Deletions need not be durable:
//     a block that reappears after a crash is an orphan for the sweep.
//   - All methods are safe for concurrent use.
type Store interface {
	Put(ctx context.Context, id ID, data []byte) error
	Sync(ctx context.Context) error
	Get(ctx context.Context, id ID) ([]byte, error)
	Has(ctx context.Context, id ID) (bool, error)
	Delete(ctx context.Context, id ID) error
	// Walk calls fn for every stored id, in no particular order.
	Walk(ctx context.Context, fn func(ID) error) error
	Stats() Stats
}
