package engine

import (
	"bytes"
	"container/list"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/regionfs/regionfs/internal/engine/blocks"
)

// A domain is a set of block files shared by file systems that share a
// lineage hash key and an encryption key in this region: a file system and
// its clones. Blocks live under blocks/<domain id>/ in the disk seam; the
// server-local holder keys 'h' dom id fsid say which file systems reference
// a block, so a block is deleted only when no holder is left.
type domain struct {
	id  uint64
	rec domainRecord

	// keys holds the hasher and block store; a replica's domain gets them
	// when its superblock arrives, while the GC and readers may look.
	keys     atomic.Pointer[domainKeys]
	metaAEAD cipher.AEAD // seals kv values of the domain's file systems; nil when plain
	sealer   *blocks.Sealer
	// keyErr, when set, says why the domain's KMS key cannot be used now:
	// every read and write of its file systems fails with it.
	keyErr atomic.Pointer[error]
	// gcBacklog: released blocks the last collection pass left waiting
	// (regionfs_engine_gc_backlog_blocks).
	gcBacklog atomic.Int64
	// recMu serializes changes of rec by the committer (a replica's first
	// superblock) and by key rotation.
	recMu sync.Mutex
	// gcMu is held by a collection pass of the domain (Detach waits for
	// it).
	gcMu sync.Mutex
	// releaseTags: the last tag of a release queue value (releaseValue).
	releaseTags atomic.Uint64

	mu       sync.Mutex // guards the fields below
	inflight map[blocks.ID]int
	readers  map[uint64]int // read epoch → active readers
	epoch    uint64         // current read epoch
	retired  []retired      // ids waiting for older readers to leave
	cache    *blockCache    // the engine's (e.blocks), keyed by id too
}

type domainKeys struct {
	hasher *blocks.Hasher
	store  blocks.Store
	// idKey identifies the id key (a hash of it): domains with equal idKey
	// name equal plaintext equally, so they can lend each other blocks.
	idKey [32]byte
}

// blockStore returns the domain's block store, nil until it is known.
func (d *domain) blockStore() blocks.Store {
	if k := d.keys.Load(); k != nil {
		return k.store
	}
	return nil
}

// blockHasher returns the domain's block hasher, nil until it is known.
func (d *domain) blockHasher() *blocks.Hasher {
	if k := d.keys.Load(); k != nil {
		return k.hasher
	}
	return nil
}

type retired struct {
	epoch uint64
	id    blocks.ID
}

// domainRecord is the stored form of a domain ('s' 'd' dom), JSON encoded.
type domainRecord struct {
	Version    int    `json:"v"`
	Lineage    []byte `json:"lineage"`           // 16 random bytes, bound into sealed blocks
	KMSKeyID   string `json:"kms,omitempty"`     // key-encryption key id; empty = plaintext
	WrappedDEK []byte `json:"wdek,omitempty"`    // data key wrapped by KMSKeyID
	HashKey    []byte `json:"hkey,omitempty"`    // id key, sealed under the DEK when encrypted
	Refs       int    `json:"refs"`              // file systems using the domain
	Dir        string `json:"dir"`               // block directory in the disk seam
	Pending    bool   `json:"pending,omitempty"` // hash key not yet known (empty replica)
}

const domainVersion = 1

func (r *domainRecord) encode() []byte {
	b, _ := json.Marshal(r) // plain struct: cannot fail
	return b
}

func decodeDomain(b []byte) (*domainRecord, error) {
	var r domainRecord
	if err := json.Unmarshal(b, &r); err != nil || r.Version != domainVersion {
		return nil, fmt.Errorf("%w: domain record", ErrCorrupt)
	}
	return &r, nil
}

func deriveKey(dek []byte, label string) ([]byte, error) {
	return hkdf.Key(sha256.New, dek, nil, "regionfs "+label+" v1", 32)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}

// hashKeyGCM is the cipher that seals a domain's hash key under its data
// key.
func hashKeyGCM(dek []byte) (cipher.AEAD, error) {
	k, err := deriveKey(dek, "hashkey")
	if err != nil {
		return nil, err
	}
	return newGCM(k)
}

// sealHashKey protects the hash key of an encrypted domain in its record.
func sealHashKey(dek, hashKey []byte) ([]byte, error) {
	g, err := hashKeyGCM(dek)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return g.Seal(nonce, nonce, hashKey, []byte("hashkey")), nil
}

func openHashKey(dek, sealed []byte) ([]byte, error) {
	g, err := hashKeyGCM(dek)
	if err != nil {
		return nil, err
	}
	if len(sealed) < g.NonceSize() {
		return nil, fmt.Errorf("%w: sealed hash key", ErrCorrupt)
	}
	key, err := g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], []byte("hashkey"))
	if err != nil {
		return nil, fmt.Errorf("%w: sealed hash key: %v", ErrCorrupt, err)
	}
	return key, nil
}

// enterRead registers a reader; blocks retired after this call are not
// deleted until exitRead. A reader enters before it reads block map entries.
func (d *domain) enterRead() uint64 {
	d.mu.Lock()
	e := d.epoch
	d.readers[e]++
	d.mu.Unlock()
	return e
}

func (d *domain) exitRead(e uint64) {
	d.mu.Lock()
	if d.readers[e]--; d.readers[e] <= 0 {
		delete(d.readers, e)
	}
	d.mu.Unlock()
}

// addInflight marks ids as being written: they are not deleted while
// marked, whatever the holder keys say.
func (d *domain) addInflight(ids ...blocks.ID) {
	d.mu.Lock()
	for _, id := range ids {
		d.inflight[id]++
	}
	d.mu.Unlock()
}

func (d *domain) doneInflight(ids ...blocks.ID) {
	d.mu.Lock()
	for _, id := range ids {
		if d.inflight[id]--; d.inflight[id] <= 0 {
			delete(d.inflight, id)
		}
	}
	d.mu.Unlock()
}

// getBlock reads a block through the cache, for a caller that may keep
// the result: a buffer of the cache handed out this way is never reused
// (the garbage collector frees it).
func (d *domain) getBlock(ctx context.Context, id blocks.ID) ([]byte, error) {
	b, h, err := d.getBlockHeld(ctx, id)
	h.pin()
	return b, err
}

// getBlockHeld reads a block through the cache. A block read from the
// store is checked there before it is cached (by a BufGetter as its
// stored form allows: the authentication tag of a sealed block, the
// CRC-32C of a plaintext one, without the keyed hash; by any other store
// in full), so the cache holds checked plaintext only and each block is
// checked once while it stays cached; a block is cached on its second
// read (blockCache.putRead). Scrub and verification read the store
// directly (Store.Get: the keyed hash too). The block is read into a
// buffer of the cache's pool when the store can (a recycled buffer: no
// fresh memory per block read); the result stays valid until the caller
// releases h.
func (d *domain) getBlockHeld(ctx context.Context, id blocks.ID) ([]byte, Hold, error) {
	if b, h, ok := d.cache.getHeld(d.id, id); ok {
		return b, h, nil
	}
	store := d.blockStore()
	if store == nil {
		return nil, Hold{}, fmt.Errorf("%w: block store of domain %d not initialised", ErrCorrupt, d.id)
	}
	bg, ok := store.(blocks.BufGetter)
	if !ok {
		b, err := store.Get(ctx, id)
		if err != nil {
			return nil, Hold{}, err
		}
		return b, d.cache.putRead(d.id, id, b, nil), nil
	}
	mem := d.cache.pool.Get()
	b, inBuf, err := bg.GetInto(ctx, id, mem)
	if err != nil || !inBuf {
		d.cache.pool.Put(mem)
		if err != nil {
			return nil, Hold{}, err
		}
		return b, d.cache.putRead(d.id, id, b, nil), nil
	}
	return b, d.cache.putRead(d.id, id, b, &blockBuf{mem: mem}), nil
}

// blockCache is the engine's LRU of verified plaintext blocks, shared by
// all its domains (one memory bound for the server). Blocks are immutable
// (content-addressed), so entries never go stale; an entry is put only
// by a read that verified the block or by the writer that computed the
// block's id from the very bytes it caches, and dropped when the
// collector deletes the block.
//
// Blocks read from a store are read into buffers of the cache's pool: an
// evicted block's buffer goes back to the pool once no reader holds it
// (Hold), and the next block read reuses it, so a scan of more than the
// cache touches no fresh memory per block (on the development VM the
// first touch of fresh memory costs ~3 ms per MiB, and a fresh buffer per
// block was also zeroed and later returned to the kernel by the runtime).
//
// A block read from a store is cached on its second read only (putRead):
// the first read leaves its key among the ghosts (keys of blocks read
// once lately, as many bytes' worth as the cache holds), and a read that
// finds its key there caches the block. A scan of data read once (a copy,
// a backup, a sequential reader of more than the cache) thus neither
// evicts what other readers use nor fills the cache with blocks nobody
// reads again: its blocks' buffers go back to the pool once their reply
// is written, so a scan cycles through a few buffers. Before, the first
// scan of a fresh server touched the whole cache's memory for the first
// time (80 MiB with the pool: ~240 ms per GiB read, a third of the
// server's CPU). Blocks a writer caches (put) are cached at once.
type blockCache struct {
	pool *blocks.Pool

	mu    sync.Mutex
	max   int64
	size  int64
	ll    *list.List
	items map[cacheKey]*list.Element
	// ghosts: keys of blocks read once and not cached, most recent
	// first, with their sizes (ghostSize in all, at most max).
	ghosts    map[cacheKey]*list.Element
	ghostLL   *list.List // of *ghost
	ghostSize int64
}

// ghost is the key and size of a block read once and not cached.
type ghost struct {
	key  cacheKey
	size int64
}

// blockBuf is a buffer of the cache's pool holding a block: the cache's
// entry and each Hold on it are references; it returns to the pool when
// the last goes, unless it was handed out for good (pinned).
type blockBuf struct {
	mem    []byte
	refs   int  // guarded by blockCache.mu
	pinned bool // guarded by blockCache.mu
}

// Hold keeps a block buffer from being reused while a caller uses the
// bytes it was given (a READ reply until it is written). Release lets
// go, once; the zero Hold holds nothing.
type Hold struct {
	c *blockCache
	b *blockBuf
}

// Release ends the hold: the bytes it kept must not be used afterwards.
func (h Hold) Release() {
	if h.b == nil {
		return
	}
	h.c.mu.Lock()
	h.c.unrefLocked(h.b)
	h.c.mu.Unlock()
}

// hold returns the only hold on mem, a buffer of c's pool that is not
// cached: mem goes back to the pool when it is released.
func (c *blockCache) hold(mem []byte) Hold {
	return Hold{c, &blockBuf{mem: mem, refs: 1}}
}

// pin ends the hold and keeps the buffer out of the pool for good: for
// callers that keep the bytes without saying when they are done.
func (h Hold) pin() {
	if h.b == nil {
		return
	}
	h.c.mu.Lock()
	h.b.pinned = true
	h.c.unrefLocked(h.b)
	h.c.mu.Unlock()
}

func (c *blockCache) unrefLocked(b *blockBuf) {
	if b.refs--; b.refs == 0 && !b.pinned {
		c.pool.Put(b.mem)
	}
}

type cacheKey struct {
	dom uint64
	id  blocks.ID
}

type cacheEntry struct {
	key  cacheKey
	data []byte
	buf  *blockBuf // nil: data is not the pool's
}

// Pool buffers hold a block file of the default block size: the header
// and the sealed form's nonce and tag (36 bytes) fit in the slack. At
// most poolKeep free buffers stay beside the cache's own.
const (
	poolBufBytes = DefaultBlockSize + 64
	poolKeep     = 16
)

func newBlockCache(maxBytes int64) *blockCache {
	return &blockCache{pool: blocks.NewPool(poolBufBytes, poolKeep), max: maxBytes, ll: list.New(), items: map[cacheKey]*list.Element{},
		ghosts: map[cacheKey]*list.Element{}, ghostLL: list.New()}
}

// get returns a cached block for a caller that may keep it (it is never
// reused); the caller must not modify it.
func (c *blockCache) get(dom uint64, id blocks.ID) ([]byte, bool) {
	b, h, ok := c.getHeld(dom, id)
	h.pin()
	return b, ok
}

// getHeld returns a cached block, held until h is released; the caller
// must not modify it.
func (c *blockCache) getHeld(dom uint64, id blocks.ID) (data []byte, h Hold, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[cacheKey{dom, id}]; ok {
		c.ll.MoveToFront(e)
		ce := e.Value.(*cacheEntry)
		if ce.buf != nil {
			ce.buf.refs++
			h = Hold{c, ce.buf}
		}
		return ce.data, h, true
	}
	return nil, Hold{}, false
}

// put caches a block's verified plaintext; data must not be modified
// afterwards.
func (c *blockCache) put(dom uint64, id blocks.ID, data []byte) {
	c.putHeld(dom, id, data, nil)
}

// putCopy caches a copy of a block's verified plaintext, in a buffer of
// the pool when it fits: a write whose blocks are cached for a shipper
// (or with Options.CacheWrites) then copies each into memory an evicted
// block gave back, not into fresh memory (a copy into a new 1 MiB buffer
// cost more than the block's own write on the development VM).
func (c *blockCache) putCopy(dom uint64, id blocks.ID, data []byte) {
	if c.small(data) || len(data) > c.pool.Size() {
		c.put(dom, id, bytes.Clone(data))
		return
	}
	mem := c.pool.Get()
	n := copy(mem, data)
	c.putHeld(dom, id, mem[:n], &blockBuf{mem: mem}).Release()
}

// putHeld caches a block's verified plaintext, data, which lies in buf
// when buf is not nil, and returns the caller's hold on it (buf's first
// reference). data must not be modified afterwards.
func (c *blockCache) putHeld(dom uint64, id blocks.ID, data []byte, buf *blockBuf) Hold {
	var h Hold
	if buf != nil {
		buf.refs = 1
		h = Hold{c, buf}
	}
	if int64(len(data)) > c.max/8 {
		return h
	}
	k := cacheKey{dom, id}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[k]; ok {
		return h
	}
	if buf != nil {
		buf.refs++
	}
	c.items[k] = c.ll.PushFront(&cacheEntry{key: k, data: data, buf: buf})
	c.size += int64(len(data))
	for c.size > c.max && c.ll.Len() > 0 {
		c.removeLocked(c.ll.Back())
	}
	return h
}

// putRead is putHeld for a block a read from the store has just checked:
// it is cached when its key is among the ghosts (its second read), else
// its key becomes a ghost and the block is not cached (the returned hold
// is then the only reference to buf, which goes back to the pool when it
// is released).
func (c *blockCache) putRead(dom uint64, id blocks.ID, data []byte, buf *blockBuf) Hold {
	k, n := cacheKey{dom, id}, int64(len(data))
	if n > c.max/8 {
		return c.putHeld(dom, id, data, buf) // never cached
	}
	c.mu.Lock()
	e, again := c.ghosts[k]
	if again {
		c.removeGhostLocked(e)
	} else {
		c.ghosts[k] = c.ghostLL.PushFront(&ghost{key: k, size: n})
		c.ghostSize += n
		for c.ghostSize > c.max && c.ghostLL.Len() > 0 {
			c.removeGhostLocked(c.ghostLL.Back())
		}
	}
	c.mu.Unlock()
	if again && buf != nil && c.small(data) {
		// Cached in memory of its own size: the caller's hold keeps
		// the pool buffer until it is released.
		c.put(dom, id, bytes.Clone(data))
		buf.refs = 1
		return Hold{c, buf}
	}
	if again {
		return c.putHeld(dom, id, data, buf)
	}
	if buf == nil {
		return Hold{}
	}
	buf.refs = 1
	return Hold{c, buf}
}

// small says whether a block of data's length would waste most of a pool
// buffer: the cache counts an entry by its length, so it keeps such a
// block (the last block of a file, a file system of small blocks) in
// memory of its own size, not in a pool buffer, lest its memory exceed
// its bound many times over.
func (c *blockCache) small(data []byte) bool { return len(data) < c.pool.Size()/2 }

func (c *blockCache) removeGhostLocked(e *list.Element) {
	g := e.Value.(*ghost)
	c.ghostLL.Remove(e)
	delete(c.ghosts, g.key)
	c.ghostSize -= g.size
}

// removeLocked removes an entry, its buffer back to the pool unless held.
func (c *blockCache) removeLocked(e *list.Element) {
	ce := e.Value.(*cacheEntry)
	c.ll.Remove(e)
	delete(c.items, ce.key)
	c.size -= int64(len(ce.data))
	if ce.buf != nil {
		c.unrefLocked(ce.buf)
	}
}

func (c *blockCache) drop(dom uint64, id blocks.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[cacheKey{dom, id}]; ok {
		c.removeLocked(e)
	}
	if e, ok := c.ghosts[cacheKey{dom, id}]; ok {
		c.removeGhostLocked(e)
	}
}

// reset empties the cache (tests: the next read of every block verifies
// its stored copy).
func (c *blockCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.ll.Len() > 0 {
		c.removeLocked(c.ll.Back())
	}
	for c.ghostLL.Len() > 0 {
		c.removeGhostLocked(c.ghostLL.Back())
	}
}
