package engine

import (
	"cmp"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kms"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/engine/space"
)

// FormatVersion is the version of the stores this code writes (the server
// keyspace and the block files). An engine refuses to open a store written
// by a newer format, and stamps an older one with its own when it opens it.
//
//	1: the first.
//	2: plaintext block files of version 2 (their header carries a CRC-32C,
//	   see blocks). Stores of format 1 need no conversion: their block
//	   files of version 1 stay readable. The stamp keeps a release of
//	   format 1, which would take the new block files for corrupt ones,
//	   from opening the store.
//	3: release queue values carry a tag unique to each write (gc.go), so
//	   that the collector tells a later release of a block from the one it
//	   took. Values of format 2 (no tag) stay readable; the stamp keeps a
//	   release of format 2, which would take the new values for corrupt
//	   ones and stop collecting, from opening the store.
//	4: inode records of version 2 say what the file's data holds (held,
//	   held.go), and the usage counter sums what files use (a sparse
//	   file its stored data, not its size). Records of version 1 stay
//	   readable and are recounted in the background; the stamp keeps a
//	   release of format 3, which would take the new records for corrupt
//	   ones, from opening the store.
const FormatVersion = 4

// ReplicaFormat is the oldest store format whose release reads the
// replicated records this one writes (journal after-images, initial sync
// chunks): inode records of version 2 came with format 4. A source does
// not replicate to a destination of an older format, which would take
// them for corrupt ones and answer EIO once promoted.
const ReplicaFormat = 4

// Defaults.
const (
	DefaultBlockSize = 1 << 20
	// DefaultInlineMax: a file of up to 16 KiB keeps its data in its
	// metadata, so writing it is one journal commit; a block file costs
	// a file write and fsync, a rename and directory fsyncs before that
	// commit (cp -a of small files: the WRITE was 3-8 ms against 1-3 ms
	// for the SETATTR beside it).
	DefaultInlineMax      = 16 << 10
	DefaultMaxRecordBytes = 4 << 20
	DefaultMaxGroup       = 256
	DefaultQueueDepth     = 1024
	DefaultBatchEntries   = 1024
	// DefaultBlockCacheBytes bounds the cache of verified blocks of all
	// file systems together.
	DefaultBlockCacheBytes = 64 << 20
	DefaultGCInterval      = time.Second
	DefaultMergeDelay      = 2 * time.Second
	DefaultLazySyncDelay   = time.Second
	MinBlockSize           = 64 << 10
	MaxBlockSize           = 4 << 20
)

// Options configure an Engine.
type Options struct {
	// KV is the metadata store (one per server). Required. The engine seals
	// values of encrypted file systems below it.
	KV kv.Store
	// Disk holds the block files (directory "blocks/"). Required.
	Disk disk.FS
	// Blocks opens the block store of a domain (dir is its directory name,
	// unique per domain, e.g. "blocks/0000000000000001"); nil: a
	// blocks.Dir under Disk. An object store (s3blocks) plugs in here.
	Blocks func(dir string, keys blocks.Keys) (blocks.Store, error)
	// Keyring holds the key-encryption keys; required for encrypted file
	// systems.
	Keyring *kms.Keyring
	Logger  *slog.Logger
	// Clock returns the current time; time.Now when nil.
	Clock func() time.Time
	// InlineMax: files up to this size keep their data in the metadata value.
	InlineMax int
	// MaxRecordBytes bounds one journal record (and so one transaction).
	MaxRecordBytes int
	// MaxGroup bounds how many operations one group commit holds.
	MaxGroup int
	// QueueDepth bounds each committer's queue (backpressure).
	QueueDepth int
	// BatchEntries bounds background batches (huge removals, truncates,
	// clones, file-system deletion).
	BatchEntries int
	// BlockCacheBytes bounds the engine's cache of verified blocks (all
	// file systems together).
	BlockCacheBytes int64
	// CacheWrites keeps the blocks writes store in the block cache (their
	// id is the hash of those bytes), so that a file read back soon after
	// it was written is served from memory. Off, only a file system that
	// a replication ships keeps them. It costs the memory's first touch
	// while the cache fills: on the development VM, where that is
	// 3 ms per MiB, it halved nfs-cp writes to a fresh server
	// (bench/nfs/README.md).
	CacheWrites bool
	// GCInterval is how often released blocks are deleted; MergeDelay how
	// long pending extents of a block stay unmerged while idle.
	GCInterval time.Duration
	MergeDelay time.Duration
	// LazySyncDelay bounds how long a group of creates answered before
	// their sync (CreateVisible), committed without one, waits for a
	// later sync before the committer syncs the log for it, as a
	// journaling file system's commit interval bounds how long its
	// metadata stays in memory (DefaultLazySyncDelay when 0).
	LazySyncDelay time.Duration
	// ScrubInterval is how often every block is re-read and verified in
	// the background; 0 disables the background scrub (Scrub still works).
	ScrubInterval time.Duration
	// OnFatal is called once when a storage error (a failed fsync or commit)
	// stops the engine. cmd/ makes it end the process; fsync failures are
	// never retried.
	OnFatal func(error)
	// Space, when set, is asked before every write that grows what the
	// server stores: file data, new files, directories, links and symlinks,
	// replica apply and initial sync, block merges, new file systems and
	// clones. A refusal fails the operation with ErrNoSpace. Removals,
	// truncations, renames, attribute changes, file-system deletion and
	// the engine's own bookkeeping are never refused: they keep a full
	// disk usable (see package space).
	Space SpaceGuard
	// Registerer, when set, receives the engine's metrics
	// (regionfs_engine_*).
	Registerer prometheus.Registerer

	// Shared: KV (and the block store) are shared with the engines of
	// other nodes of the region; each domain is owned by one of them at a
	// time (shared.go). Open then opens no file system: Attach does.
	Shared bool
	// Claim makes this engine the owner of a domain it must write (a new
	// one, or one to clone, delete or take an operation over): it returns
	// once Attach(dom) ran here, or fails. Shared stores only.
	Claim func(ctx context.Context, dom uint64) error
	// Valid, when set, reports whether this engine still surely owns the
	// keys and blocks of domain dom (on a store shared by several nodes:
	// its ownership lease, of the region or of the domain, has not run
	// out). Commits are fenced by the store; block deletion is not, so the
	// collector and the orphan sweep delete a domain's blocks only while
	// Valid holds.
	Valid func(dom uint64) bool
}

// SpaceGuard admits writes by the free space of the data disk
// (space.Guard).
type SpaceGuard interface {
	// Admit reserves need bytes for a write, or refuses it.
	Admit(need int64) error
	// Check reports whether need more bytes would be admitted, reserving
	// nothing.
	Check(need int64) error
}

// metaBytes is what a metadata-only write is assumed to take (inode,
// names, journal record, write-ahead log).
const metaBytes = 4 << 10

func (o *Options) withDefaults() Options {
	r := *o
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	if r.Clock == nil {
		r.Clock = time.Now
	}
	r.InlineMax = cmp.Or(r.InlineMax, DefaultInlineMax)
	r.MaxRecordBytes = cmp.Or(r.MaxRecordBytes, DefaultMaxRecordBytes)
	r.MaxGroup = cmp.Or(r.MaxGroup, DefaultMaxGroup)
	r.QueueDepth = cmp.Or(r.QueueDepth, DefaultQueueDepth)
	r.BatchEntries = cmp.Or(r.BatchEntries, DefaultBatchEntries)
	r.BlockCacheBytes = cmp.Or(r.BlockCacheBytes, DefaultBlockCacheBytes)
	r.GCInterval = cmp.Or(r.GCInterval, DefaultGCInterval)
	r.MergeDelay = cmp.Or(r.MergeDelay, DefaultMergeDelay)
	r.LazySyncDelay = cmp.Or(r.LazySyncDelay, DefaultLazySyncDelay)
	if r.OnFatal == nil {
		r.OnFatal = func(error) {}
	}
	return r
}

// Engine holds every file system of one server.
type Engine struct {
	opts Options
	log  *slog.Logger
	kv   kv.Store // sealed view of opts.KV
	// changes: kv's count of changes, for the block maps (blockmap.go);
	// nil on a shared store (Options.Shared), written by other nodes too.
	changes *kv.Sealed
	disk    disk.FS
	clock   func() time.Time

	aeads atomic.Pointer[map[uint64]cipher.AEAD] // fsid → value sealing key

	regMu sync.Mutex // serialises registry changes (create, clone, delete)

	// ownMu serialises Attach and Detach (shared stores; after regMu).
	ownMu sync.Mutex

	mu      sync.Mutex // guards the fields below
	fss     map[uint64]*FS
	locked  map[uint64]*fsRecord // file systems whose KMS key was unusable at open
	names   map[string]uint64
	domains map[uint64]*domain
	recs    map[uint64]*fsRecord // every registered file system, open or not
	owned   map[uint64]bool      // attached domains (shared stores; nil otherwise)
	closed  bool

	fenceMu sync.RWMutex // guards the fields below (KeyDomain)
	fsDom   map[uint64]uint64
	nameFS  map[string]uint64

	fatalOnce sync.Once
	fatalErr  atomic.Pointer[error]

	// blocks is the cache of verified blocks all domains share.
	blocks *blockCache
	// descs keeps block files open for reads, for all domains (nil on a
	// shared store: other nodes delete its blocks).
	descs *blocks.Descs

	stop   chan struct{}
	wg     sync.WaitGroup
	gcKick chan struct{}
	// gcMu serialises collection passes: two passes reading the same
	// release queue would both retire, delete and count each entry.
	gcMu sync.Mutex

	m *metrics
}

// fsState is the lifecycle of a file system in the registry.
type fsState uint8

const (
	fsReady    fsState = 1
	fsDeleting fsState = 2
	fsCloning  fsState = 3
)

// fsRecord is the registry entry of a file system ('s' 'f' fsid), JSON.
type fsRecord struct {
	Name    string  `json:"name"`
	Domain  uint64  `json:"dom"`
	State   fsState `json:"state"`
	Origin  uint64  `json:"origin,omitempty"` // clone source
	Created int64   `json:"created"`
}

func (r *fsRecord) encode() []byte {
	b, _ := json.Marshal(r) // plain struct
	return b
}

func decodeFSRecord(b []byte) (*fsRecord, error) {
	var r fsRecord
	if err := json.Unmarshal(b, &r); err != nil || r.Name == "" {
		return nil, fmt.Errorf("%w: file system record", ErrCorrupt)
	}
	return &r, nil
}

// cleanKey marks a clean shutdown; absent at open means an orphan sweep.
var cleanKey = serverKey('c')

// Open attaches an engine to its stores, resuming interrupted work.
func Open(ctx context.Context, o Options) (*Engine, error) {
	if o.KV == nil || o.Disk == nil {
		return nil, errors.New("engine: Options.KV and Options.Disk are required")
	}
	opts := o.withDefaults()
	e := &Engine{
		opts: opts, log: opts.Logger, disk: opts.Disk, clock: opts.Clock,
		fss: map[uint64]*FS{}, locked: map[uint64]*fsRecord{}, names: map[string]uint64{}, domains: map[uint64]*domain{},
		recs: map[uint64]*fsRecord{}, fsDom: map[uint64]uint64{}, nameFS: map[string]uint64{},
		stop: make(chan struct{}), gcKick: make(chan struct{}, 1), m: newMetrics(),
		blocks: newBlockCache(opts.BlockCacheBytes),
	}
	if opts.Shared {
		e.owned = map[uint64]bool{}
	} else {
		e.descs = blocks.NewDescs(openBlockFiles())
	}
	empty := map[uint64]cipher.AEAD{}
	e.aeads.Store(&empty)
	sealed := kv.NewSealed(opts.KV, e.sealingKey)
	e.kv = sealed
	if !opts.Shared {
		e.changes = sealed
	}

	if err := e.checkFormat(); err != nil {
		return nil, err
	}
	if opts.Shared {
		// Every domain's keys, every file system registered; none opened
		// (Attach).
		if err := e.loadDomains(ctx); err != nil {
			return nil, err
		}
		if err := e.loadFileSystems(ctx); err != nil {
			e.shutdown()
			return nil, err
		}
		return e.start()
	}
	_, err := e.kv.Get(cleanKey)
	clean := err == nil
	if err != nil && !errors.Is(err, kv.ErrNotFound) {
		return nil, fmt.Errorf("engine: read clean marker: %w", err)
	}
	if err := e.loadDomains(ctx); err != nil {
		return nil, err
	}
	if !clean {
		if err := e.sweepOrphans(ctx); err != nil {
			return nil, err
		}
	}
	b := e.kv.NewBatch()
	b.Delete(cleanKey)
	err = b.Commit(true)
	b.Close()
	if err != nil {
		return nil, fmt.Errorf("engine: clear clean marker: %w", err)
	}
	if err := e.loadFileSystems(ctx); err != nil {
		e.shutdown()
		return nil, err
	}
	return e.start()
}

// start registers the metrics and starts the background loops.
func (e *Engine) start() (*Engine, error) {
	if e.opts.Registerer != nil {
		if err := registerAll(e.opts.Registerer, append(e.m.collectors(), newFSCollector(e))...); err != nil {
			e.Close()
			return nil, fmt.Errorf("engine: metrics: %w", err)
		}
	}
	e.wg.Add(1)
	go e.gcLoop()
	if e.opts.ScrubInterval > 0 {
		e.wg.Add(1)
		go e.scrubLoop()
	}
	return e, nil
}

// Formatted reports whether the store s holds an engine's format record
// (an engine opened it before): on a store shared by several nodes, only
// the first writes it, and the others wait for it (it is a key of the
// whole region, fenced by the region's lease).
func Formatted(s kv.Store) (bool, error) {
	_, err := s.Get(serverKey(srvFormat))
	switch {
	case errors.Is(err, kv.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("engine: read format version: %w", err)
	}
	return true, nil
}

func (e *Engine) checkFormat() error {
	v, err := e.kv.Get(serverKey(srvFormat))
	switch {
	case errors.Is(err, kv.ErrNotFound):
		b := e.kv.NewBatch()
		defer b.Close()
		b.Set(serverKey(srvFormat), encodeU64(FormatVersion))
		if err := b.Commit(true); err != nil {
			return fmt.Errorf("engine: write format version: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("engine: read format version: %w", err)
	}
	ver, err := decodeU64(v)
	if err != nil {
		return fmt.Errorf("engine: format version: %w", err)
	}
	if ver > FormatVersion {
		return fmt.Errorf("engine: store format %d is newer than this binary's %d", ver, FormatVersion)
	}
	if ver < FormatVersion {
		b := e.kv.NewBatch()
		defer b.Close()
		b.Set(serverKey(srvFormat), encodeU64(FormatVersion))
		if err := b.Commit(true); err != nil {
			return fmt.Errorf("engine: write format version: %w", err)
		}
		e.log.Info("store format upgraded", "from", ver, "to", FormatVersion)
	}
	return nil
}

// sealingKey returns the AEAD sealing values of key, or nil.
func (e *Engine) sealingKey(key []byte) cipher.AEAD {
	if len(key) < 9 || (key[0] != pfxFS && key[0] != pfxJournal && key[0] != pfxUndo) {
		return nil
	}
	return (*e.aeads.Load())[binary.BigEndian.Uint64(key[1:9])]
}

func (e *Engine) setSealing(fsid uint64, a cipher.AEAD) {
	e.mu.Lock() // serialises writers of the copy-on-write map
	defer e.mu.Unlock()
	e.setSealingLocked(fsid, a)
}

func (e *Engine) setSealingLocked(fsid uint64, a cipher.AEAD) {
	old := *e.aeads.Load()
	m := make(map[uint64]cipher.AEAD, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	if a == nil {
		delete(m, fsid)
	} else {
		m[fsid] = a
	}
	e.aeads.Store(&m)
}

func (e *Engine) loadDomains(ctx context.Context) error {
	it, err := e.kv.NewIter(domainKey(0), upper([]byte{pfxServer, srvDomain}))
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		id := binary.BigEndian.Uint64(it.Key()[2:])
		v, err := it.Value()
		if err != nil {
			return err
		}
		rec, err := decodeDomain(v)
		if err != nil {
			return fmt.Errorf("engine: domain %d: %w", id, err)
		}
		d, err := e.openDomain(ctx, id, rec)
		if err != nil {
			return fmt.Errorf("engine: domain %d: %w", id, err)
		}
		e.domains[id] = d
	}
	return it.Error()
}

// openDomain unwraps a domain's keys and opens its block store.
func (e *Engine) openDomain(_ context.Context, id uint64, rec *domainRecord) (*domain, error) {
	d := &domain{
		id: id, rec: *rec, inflight: map[blocks.ID]int{}, readers: map[uint64]int{},
		cache: e.blocks,
	}
	d.releaseTags.Store(mrand.Uint64())
	var dek []byte
	if rec.KMSKeyID != "" {
		if e.opts.Keyring == nil {
			return nil, fmt.Errorf("encrypted with KMS key %q but no keyring is configured", rec.KMSKeyID)
		}
		var err error
		dek, err = e.opts.Keyring.Unwrap(rec.KMSKeyID, rec.WrappedDEK)
		if keyUnusable(err) {
			// Opened locked: its file systems answer ErrKeyUnavailable
			// until KeysChanged finds the key usable again.
			d.lock(rec.KMSKeyID, err)
			d.metaAEAD = gate{d: d}
			e.log.Warn("file systems of a domain are locked: their KMS key is unavailable", "domain", id, "kms_key", rec.KMSKeyID, "err", err)
			return d, nil
		}
		if err != nil {
			return nil, fmt.Errorf("unwrap data key with KMS key %q: %w", rec.KMSKeyID, err)
		}
		mk, err := deriveKey(dek, "meta")
		if err != nil {
			return nil, err
		}
		inner, err := newGCM(mk)
		if err != nil {
			return nil, err
		}
		d.metaAEAD = gate{d: d, inner: inner}
		if d.sealer, err = blocks.NewSealer(dek, rec.Lineage); err != nil {
			return nil, err
		}
	}
	if rec.Pending {
		return d, nil
	}
	hk := rec.HashKey
	if dek != nil {
		var err error
		if hk, err = openHashKey(dek, rec.HashKey); err != nil {
			return nil, err
		}
	}
	if err := e.initDomainStore(d, hk); err != nil {
		return nil, err
	}
	return d, nil
}

func (e *Engine) initDomainStore(d *domain, hashKey []byte) error {
	h, err := blocks.NewHasher(hashKey)
	if err != nil {
		return err
	}
	keys := blocks.Keys{Hasher: h, Sealer: d.sealer}
	var st blocks.Store
	if e.opts.Blocks != nil {
		if st, err = e.opts.Blocks(d.rec.Dir, keys); err != nil {
			return fmt.Errorf("block store %s: %w", d.rec.Dir, err)
		}
	} else {
		if err := e.disk.MkdirAll(d.rec.Dir); err != nil {
			return fmt.Errorf("block dir %s: %w", d.rec.Dir, err)
		}
		if st, err = blocks.OpenDirWith(e.disk, d.rec.Dir, keys, blocks.DirOptions{Descs: e.descs}); err != nil {
			return err
		}
	}
	d.keys.Store(&domainKeys{hasher: h, store: st, idKey: sha256.Sum256(append([]byte("regionfs id key\x00"), hashKey...))})
	return nil
}

// newDomain creates (in memory) a domain for a new lineage. The caller
// writes d.rec durably.
func (e *Engine) newDomainLocked(id uint64, kmsKeyID string, hashKey []byte) (*domain, error) {
	lineage := make([]byte, 16)
	if _, err := rand.Read(lineage); err != nil {
		return nil, err
	}
	rec := &domainRecord{Version: domainVersion, Lineage: lineage, Dir: fmt.Sprintf("blocks/%016x", id)}
	var dek []byte
	if kmsKeyID != "" {
		if e.opts.Keyring == nil {
			return nil, fmt.Errorf("engine: encryption needs a keyring: %w", ErrInvalid)
		}
		key, err := e.opts.Keyring.Resolve(kmsKeyID)
		if err != nil {
			return nil, fmt.Errorf("engine: KMS key %q: %w", kmsKeyID, err)
		}
		if dek, err = kms.NewDataKey(); err != nil {
			return nil, err
		}
		rec.KMSKeyID = key.ID
		if rec.WrappedDEK, err = e.opts.Keyring.Wrap(key.ID, dek); err != nil {
			return nil, err
		}
	}
	if hashKey == nil {
		rec.Pending = true
	} else if dek != nil {
		var err error
		if rec.HashKey, err = sealHashKey(dek, hashKey); err != nil {
			return nil, err
		}
	} else {
		rec.HashKey = hashKey
	}
	return e.openDomain(context.Background(), id, rec)
}

func (e *Engine) loadFileSystems(ctx context.Context) error {
	it, err := e.kv.NewIter(fsRecordKey(0), upper([]byte{pfxServer, srvFS}))
	if err != nil {
		return err
	}
	type entry struct {
		id  uint64
		rec *fsRecord
	}
	var all []entry
	for ok := it.First(); ok; ok = it.Next() {
		id := binary.BigEndian.Uint64(it.Key()[2:])
		v, err := it.Value()
		if err != nil {
			it.Close()
			return err
		}
		rec, err := decodeFSRecord(v)
		if err != nil {
			it.Close()
			return fmt.Errorf("engine: file system %d: %w", id, err)
		}
		all = append(all, entry{id, rec})
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, en := range all {
		d := e.domains[en.rec.Domain]
		if d == nil {
			return fmt.Errorf("engine: file system %d: %w: domain %d missing", en.id, ErrCorrupt, en.rec.Domain)
		}
		e.setSealing(en.id, d.metaAEAD)
		e.recs[en.id] = en.rec
		if en.rec.State == fsReady {
			e.mapFS(en.id, en.rec.Name, en.rec.Domain)
		} else {
			e.mapFS(en.id, "", en.rec.Domain)
		}
		if e.opts.Shared {
			// Registered only: the owner of its domain opens it.
			if en.rec.State == fsReady {
				e.names[en.rec.Name] = en.id
			}
			continue
		}
		if d.keyError() != nil && en.rec.State == fsReady {
			e.locked[en.id] = en.rec
			e.names[en.rec.Name] = en.id
			continue
		}
		switch en.rec.State {
		case fsReady:
			fs, err := e.openFS(ctx, en.id, en.rec, d)
			if err != nil {
				return fmt.Errorf("engine: open file system %q: %w", en.rec.Name, err)
			}
			e.fss[en.id] = fs
			e.names[en.rec.Name] = en.id
		case fsDeleting, fsCloning:
			// An interrupted delete resumes; an interrupted clone is
			// dropped (it never became visible).
			e.wg.Add(1)
			go func(id uint64, rec *fsRecord) {
				defer e.wg.Done()
				if err := e.purgeFS(id, rec); err != nil && !errors.Is(err, ErrClosed) {
					e.log.Error("purge file system", "fs_id", id, "name", rec.Name, "err", err)
				}
			}(en.id, en.rec)
		default:
			return fmt.Errorf("engine: file system %d: %w: state %d", en.id, ErrCorrupt, en.rec.State)
		}
	}
	return nil
}

// FS returns the open file system called name.
func (e *Engine) FS(name string) (*FS, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	id, ok := e.names[name]
	if !ok {
		return nil, fmt.Errorf("engine: %q: %w", name, ErrFSNotFound)
	}
	if _, locked := e.locked[id]; locked {
		return nil, fmt.Errorf("engine: %q: %w", name, e.domains[e.locked[id].Domain].keyError())
	}
	fs := e.fss[id]
	if fs == nil {
		return nil, fmt.Errorf("engine: %q: %w", name, ErrElsewhere)
	}
	return fs, nil
}

// Names lists the file systems, sorted.
func (e *Engine) Names() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	names := make([]string, 0, len(e.names))
	for n := range e.names {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// fatal stops the engine after an unrecoverable storage error.
func (e *Engine) fatal(err error) {
	if errors.Is(err, kv.ErrFenced) {
		// Another node owns those keys now: not a storage failure.
		e.log.Warn("commit refused: another node took the file system over", "err", err)
		return
	}
	e.fatalOnce.Do(func() {
		wrapped := fmt.Errorf("%w: %w", ErrFatal, err)
		e.fatalErr.Store(&wrapped)
		e.log.Error("fatal storage error; the engine refuses further writes", "err", err)
		e.opts.OnFatal(err)
	})
}

// CheckSpace reports, with an error wrapping ErrNoSpace, whether writing
// need more bytes would be refused for lack of space; it reserves nothing.
func (e *Engine) CheckSpace(need int64) error {
	if err := space.Room(e.opts.Space, need, ErrNoSpace); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	return nil
}

// admit asks the space guard for need bytes.
func (e *Engine) admit(need int64) error {
	if e.opts.Space == nil {
		return nil
	}
	if err := e.opts.Space.Admit(need); err != nil {
		return fmt.Errorf("engine: %w: %w", ErrNoSpace, err)
	}
	return nil
}

// Err returns the fatal error that stopped the engine, if any.
func (e *Engine) Err() error {
	if p := e.fatalErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Close stops every file system and background task, and marks the
// shutdown clean (no orphan sweep at the next Open). It does not close the
// KV store, which belongs to the caller.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	fss := make([]*FS, 0, len(e.fss))
	for _, fs := range e.fss {
		fss = append(fss, fs)
	}
	var owned []uint64
	for d := range e.owned {
		owned = append(owned, d)
	}
	e.mu.Unlock()
	for _, fs := range fss {
		fs.close()
	}
	e.shutdown()
	if e.Err() != nil {
		return e.Err()
	}
	b := e.kv.NewBatch()
	defer b.Close()
	if e.opts.Shared {
		// Each attached domain is left clean (the caller still holds their
		// leases).
		for _, d := range owned {
			b.Set(domainCleanKey(d), nil)
		}
	} else {
		b.Set(cleanKey, nil)
	}
	if b.Empty() {
		return nil
	}
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("engine: write clean marker: %w", err)
	}
	return nil
}

func (e *Engine) shutdown() {
	select {
	case <-e.stop:
	default:
		close(e.stop)
	}
	e.wg.Wait()
	if e.descs != nil {
		e.descs.Close()
	}
}

// maxOpenBlockFiles bounds the block files the engine keeps open for
// reads (blocks.Descs): 4 GiB of 1 MiB blocks recently written or read.
const maxOpenBlockFiles = 4096

// openBlockFiles is how many block files the engine keeps open: at most
// maxOpenBlockFiles and a quarter of the process's descriptor limit (the
// rest for connections, Pebble's files, the reads' own opens).
func openBlockFiles() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return int(min(uint64(maxOpenBlockFiles), lim.Cur/4))
}
