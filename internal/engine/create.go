package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// FSOptions describe a new file system.
type FSOptions struct {
	// BlockSize is fixed at creation: a power of two in [64 KiB, 4 MiB];
	// 0 means 1 MiB.
	BlockSize int
	// KMSKeyID names the key-encryption key of this region's keyring that
	// wraps the file system's data key; empty means not encrypted.
	KMSKeyID string
	// RootMode, RootUID and RootGID describe the root directory (0755,
	// 0, 0 by default).
	RootMode uint32
	RootUID  uint32
	RootGID  uint32
}

// Info describes a file system.
type Info struct {
	Name      string
	ID        uint64
	Mode      Mode
	Epoch     uint64
	Encrypted bool
	KMSKeyID  string
	BlockSize int
	LastSeq   uint64
	Usage     Usage
}

// Usage is what a file system holds.
type Usage struct {
	Bytes uint64
	Files uint64
}

func validFSName(name string) error {
	if name == "" || len(name) > 128 || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("engine: file system name %q: %w", name, ErrInvalid)
	}
	return nil
}

// CreateFS creates and formats a new primary file system at epoch 1. Its
// first journal record (seq 1) holds the superblock and the root directory.
func (e *Engine) CreateFS(ctx context.Context, name string, o FSOptions) (*FS, error) {
	if err := validFSName(name); err != nil {
		return nil, err
	}
	bs := o.BlockSize
	if bs == 0 {
		bs = DefaultBlockSize
	}
	if bs < MinBlockSize || bs > MaxBlockSize || bs&(bs-1) != 0 {
		return nil, fmt.Errorf("engine: block size %d: %w", bs, ErrInvalid)
	}
	rootMode := o.RootMode
	if rootMode == 0 {
		rootMode = 0o755
	}
	if rootMode&^modeAllBits != 0 {
		return nil, fmt.Errorf("engine: root mode %o: %w", rootMode, ErrInvalid)
	}
	sb := &superblock{
		Version: superVersion, BlockSize: bs, HashAlg: 1, InlineMax: min(e.opts.InlineMax, bs),
		Lineage: randBytes(16), HashKey: randBytes(32), MACKey: randBytes(32),
		Created: e.clock().UnixNano(),
	}
	fs, err := e.register(ctx, name, o.KMSKeyID, sb.HashKey, modeRecord{Mode: ModePrimary, Epoch: 1}, func(tx *txn) error {
		return tx.mkfs(sb, rootMode, o.RootUID, o.RootGID)
	})
	if err != nil {
		return nil, err
	}
	return fs, nil
}

// CreateReplica creates an empty read-only file system that accepts journal
// records (and initial-sync data) from a source. It is encrypted under
// kmsKeyID of this region if given, whatever the source does.
func (e *Engine) CreateReplica(ctx context.Context, name string, kmsKeyID string) (*FS, error) {
	if err := validFSName(name); err != nil {
		return nil, err
	}
	return e.register(ctx, name, kmsKeyID, nil, modeRecord{Mode: ModeReplica}, nil)
}

// register allocates ids and a domain, writes the registry and, for a
// primary, formats the file system, all in one durable batch.
func (e *Engine) register(ctx context.Context, name, kmsKeyID string, hashKey []byte, m modeRecord, format func(*txn) error) (*FS, error) {
	e.regMu.Lock()
	defer e.regMu.Unlock()
	e.mu.Lock()
	_, exists := e.names[name]
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if exists {
		return nil, fmt.Errorf("engine: %q: %w", name, ErrFSExist)
	}
	if err := e.Err(); err != nil {
		return nil, err
	}
	if err := e.admit(metaBytes); err != nil {
		return nil, err
	}
	ids, err := e.allocIDs()
	if err != nil {
		return nil, err
	}
	// On a shared store the new domain's lease is taken first: its keys
	// are fenced by it from the first commit on.
	if err := e.claim(ctx, ids.dom); err != nil {
		return nil, fmt.Errorf("engine: create %q: %w", name, err)
	}
	d, err := e.newDomainLocked(ids.dom, kmsKeyID, hashKey)
	if err != nil {
		return nil, err
	}
	d.rec.Refs = 1
	fsid := ids.fs
	rec := &fsRecord{Name: name, Domain: d.id, State: fsReady, Created: e.clock().UnixNano()}
	e.setSealing(fsid, d.metaAEAD)
	e.mapFS(fsid, name, d.id)
	fs := e.newFS(fsid, name, d)
	fs.setModeLocked(m)
	registry := func(b writer) {
		b.Set(serverKey(srvNextFS), encodeU64(fsid+1))
		b.Set(serverKey(srvNextDm), encodeU64(d.id+1))
		b.Set(domainKey(d.id), d.rec.encode())
		b.Set(fsRecordKey(fsid), rec.encode())
		b.Set(fsNameKey(name), encodeU64(fsid))
		b.Set(localKey(fsid, locMode), m.encode())
	}
	fs.start()
	err = fs.do(ctx, opAdmin, "mkfs", func(tx *txn) error {
		if format != nil {
			if err := format(tx); err != nil {
				return err
			}
		} else {
			tx.noJournal = true
		}
		registry(tx.abs)
		return nil
	})
	if err != nil {
		fs.close()
		e.setSealing(fsid, nil)
		e.unmapName(name)
		e.unmapFS(fsid)
		return nil, fmt.Errorf("engine: create %q: %w", name, err)
	}
	e.mu.Lock()
	e.fss[fsid] = fs
	e.names[name] = fsid
	e.recs[fsid] = rec
	e.domains[d.id] = d
	e.mu.Unlock()
	fs.maint.start(fs)
	return fs, nil
}

type allocated struct{ fs, dom uint64 }

func (e *Engine) allocIDs() (allocated, error) {
	var a allocated
	for _, c := range []struct {
		key []byte
		dst *uint64
	}{{serverKey(srvNextFS), &a.fs}, {serverKey(srvNextDm), &a.dom}} {
		v, err := e.kv.Get(c.key)
		switch {
		case errors.Is(err, kv.ErrNotFound):
			*c.dst = 1
		case err != nil:
			return a, err
		default:
			if *c.dst, err = decodeU64(v); err != nil {
				return a, err
			}
		}
	}
	return a, nil
}

// mkfs writes the superblock, the epoch history, the counters and the root
// directory.
func (tx *txn) mkfs(sb *superblock, mode, uid, gid uint32) error {
	tx.set(metaKey(metaSuper), sb.encode())
	tx.set(metaKey(metaEpochs), encodeEpochs([]EpochStart{{Epoch: 1, StartSeq: tx.seq}}))
	tx.set(metaKey(metaNext), encodeU64(RootIno+1))
	gen, err := tx.newGen()
	if err != nil {
		return err
	}
	now := tx.now.UnixNano()
	root := &inode{
		typ: TypeDir, mode: mode, uid: uid, gid: gid, nlink: 2, gen: gen,
		atime: now, mtime: now, ctime: now, parent: RootIno, nextCookie: 1, heldOK: true,
	}
	tx.set(attrKey(RootIno), root.encode())
	tx.usage(0, 1)
	tx.note([]uint64{RootIno})
	tx.onCommit = append(tx.onCommit, func() { tx.fs.superPub.Store(sb) })
	return nil
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}
