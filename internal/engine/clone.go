package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// Clone creates name as a writable copy of src at src's current durable
// seq, sharing blocks by reference count (copy-on-write at block
// granularity). The copy proceeds in bounded journaled batches in the
// clone's own journal while src keeps serving; an interrupted clone is
// discarded at the next Open.
func (e *Engine) Clone(ctx context.Context, src, name string) (*FS, error) {
	if err := e.admit(metaBytes); err != nil {
		return nil, err
	}
	if err := validFSName(name); err != nil {
		return nil, err
	}
	// A clone shares its source's blocks: it lives in its domain, owned
	// here.
	sfs, err := e.Own(ctx, src)
	if err != nil {
		return nil, err
	}
	if sfs.superPub.Load() == nil {
		return nil, fmt.Errorf("engine: clone %s: no consistent state yet: %w", src, ErrInvalid)
	}
	e.regMu.Lock()
	defer e.regMu.Unlock()
	e.mu.Lock()
	_, exists := e.names[name]
	e.mu.Unlock()
	if exists {
		return nil, fmt.Errorf("engine: %q: %w", name, ErrFSExist)
	}
	snap, err := sfs.Replica().Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	defer snap.Close()
	ids, err := e.allocIDs()
	if err != nil {
		return nil, err
	}
	d := sfs.dom
	fsid := ids.fs
	rec := &fsRecord{Name: name, Domain: d.id, State: fsCloning, Origin: sfs.id, Created: e.clock().UnixNano()}
	e.setSealing(fsid, d.metaAEAD)
	e.mapFS(fsid, name, d.id)
	cloning := *rec
	e.mu.Lock()
	e.recs[fsid] = &cloning
	e.mu.Unlock()
	fs := e.newFS(fsid, name, d)
	mode := modeRecord{Mode: ModePrimary, Epoch: 1}
	fs.setModeLocked(mode)
	fs.start()
	fail := func(err error) (*FS, error) {
		fs.close()
		if perr := e.purgeFS(fsid, rec); perr != nil {
			e.log.Error("discard failed clone", "name", name, "err", perr)
		}
		return nil, fmt.Errorf("engine: clone %s as %s: %w", src, name, err)
	}
	// First batch: registry (state cloning) and the new identity.
	err = fs.do(ctx, opAdmin, "clone", func(tx *txn) error {
		tx.abs.Set(serverKey(srvNextFS), encodeU64(fsid+1))
		tx.abs.Set(fsRecordKey(fsid), rec.encode())
		tx.abs.Set(localKey(fsid, locMode), mode.encode())
		return nil
	})
	if err != nil {
		return fail(err)
	}
	var sb *superblock
	it, err := snap.Iter(nil, nil)
	if err != nil {
		return fail(err)
	}
	defer it.Close()
	ok := it.First()
	for ok {
		type kvp struct{ k, v []byte }
		var chunk []kvp
		size := 0
		for ; ok && len(chunk) < e.opts.BatchEntries && size < e.opts.MaxRecordBytes/2; ok = it.Next() {
			v, err := it.Value()
			if err != nil {
				return fail(sfs.corrupt(err))
			}
			k := append([]byte(nil), it.Key()...)
			v = append([]byte(nil), v...)
			switch string(k) {
			case string(metaKey(metaSuper)):
				s, err := decodeSuper(v)
				if err != nil {
					return fail(err)
				}
				s.Lineage, s.MACKey, s.Created = randBytes(16), randBytes(32), e.clock().UnixNano()
				sb = s
				v = s.encode()
			case string(metaKey(metaEpochs)):
				continue // the clone starts its own history
			}
			chunk = append(chunk, kvp{k, v})
			size += len(k) + len(v)
		}
		if err := it.Error(); err != nil {
			return fail(err)
		}
		err := fs.do(ctx, opAdmin, "clone", func(tx *txn) error {
			fs.meta.invalidate()
			for _, p := range chunk {
				tx.set(p.k, p.v)
				if len(p.k) == 1+blocks.IDSize && p.k[0] == relRef {
					id, err := blocks.IDFromBytes(p.k[1:])
					if err != nil {
						return fmt.Errorf("%w: reference key", ErrCorrupt)
					}
					// Added, not counted: the copied count is the truth.
					tx.addRef(id)
				}
			}
			return nil
		})
		if err != nil {
			return fail(err)
		}
	}
	if sb == nil {
		return fail(fmt.Errorf("%w: source without superblock", ErrCorrupt))
	}
	// Last batch: epoch history, and the clone becomes visible.
	err = fs.do(ctx, opAdmin, "clone", func(tx *txn) error {
		tx.set(metaKey(metaEpochs), encodeEpochs([]EpochStart{{Epoch: 1, StartSeq: 1}}))
		rec.State = fsReady
		tx.abs.Set(fsRecordKey(fsid), rec.encode())
		tx.abs.Set(fsNameKey(name), encodeU64(fsid))
		d.mu.Lock()
		drec := d.rec
		d.mu.Unlock()
		drec.Refs++
		tx.abs.Set(domainKey(d.id), drec.encode())
		tx.onCommit = append(tx.onCommit, func() {
			d.mu.Lock()
			d.rec.Refs++
			d.mu.Unlock()
		})
		return nil
	})
	if err != nil {
		return fail(err)
	}
	fs.superPub.Store(sb)
	ready := *rec
	e.mu.Lock()
	e.fss[fsid] = fs
	e.names[name] = fsid
	e.recs[fsid] = &ready
	e.mu.Unlock()
	fs.maint.start(fs)
	return fs, nil
}

// addRef lists id as referenced by this record without changing its count
// (the count was written as an after-image).
func (tx *txn) addRef(id blocks.ID) {
	if tx.copied == nil {
		tx.copied = map[blocks.ID]bool{}
	}
	tx.copied[id] = true
}

// DeleteFS removes a file system: it stops serving at once and its keys and
// block references are released in bounded batches.
func (e *Engine) DeleteFS(ctx context.Context, name string) error {
	if dom, ok := e.DomainOf(name); ok {
		if err := e.claim(ctx, dom); err != nil {
			return fmt.Errorf("engine: delete %q: %w", name, err)
		}
	}
	e.regMu.Lock()
	defer e.regMu.Unlock()
	e.mu.Lock()
	id, ok := e.names[name]
	fs := e.fss[id]
	var keyErr error
	if rec := e.locked[id]; rec != nil {
		keyErr = e.domains[rec.Domain].keyError()
	}
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("engine: %q: %w", name, ErrFSNotFound)
	}
	if fs == nil {
		// Releasing its blocks needs its block maps, sealed under the
		// unavailable key.
		return fmt.Errorf("engine: delete %q: %w", name, keyErr)
	}
	fs.close()
	b := e.kv.NewBatch()
	v, err := b.Get(fsRecordKey(id))
	if err != nil {
		b.Close()
		return err
	}
	rec, err := decodeFSRecord(v)
	if err != nil {
		b.Close()
		return err
	}
	rec.State = fsDeleting
	b.Set(fsRecordKey(id), rec.encode())
	b.Delete(fsNameKey(name))
	err = b.Commit(true)
	b.Close()
	if err != nil {
		return e.failed(err)
	}
	e.mu.Lock()
	delete(e.fss, id)
	delete(e.names, name)
	e.recs[id] = rec
	e.mu.Unlock()
	e.unmapName(name)
	return e.purgeFS(id, rec)
}

// purgeFS releases everything of a file system that is being deleted (or a
// clone that never finished): its block references in bounded batches,
// then its key ranges and its registry entry.
func (e *Engine) purgeFS(id uint64, rec *fsRecord) error {
	e.mu.Lock()
	d := e.domains[rec.Domain]
	e.mu.Unlock()
	refPrefix := absKey(id, []byte{relRef})
	for {
		select {
		case <-e.stop:
			return ErrClosed
		default:
		}
		it, err := e.kv.NewIter(refPrefix, upper(refPrefix))
		if err != nil {
			return err
		}
		b := e.kv.NewBatch()
		n := 0
		for ok := it.First(); ok && n < e.opts.BatchEntries; ok = it.Next() {
			idb := it.Key()[len(refPrefix):]
			bid, err := blocks.IDFromBytes(idb)
			if err != nil {
				it.Close()
				b.Close()
				return fmt.Errorf("%w: reference key of fs %d", ErrCorrupt, id)
			}
			b.Delete(append([]byte(nil), it.Key()...))
			if d != nil {
				b.Delete(holderKey(d.id, bid, id))
				b.Set(gcKey(d.id, bid), d.releaseValue(id, 0))
			}
			n++
		}
		if err := it.Close(); err != nil {
			b.Close()
			return err
		}
		if n == 0 {
			b.Close()
			break
		}
		err = b.Commit(true)
		b.Close()
		if err != nil {
			return e.failed(err)
		}
	}
	b := e.kv.NewBatch()
	defer b.Close()
	if d != nil {
		// The blocks a resync's undo keeps (undo.go).
		up := undoKey(id, []byte{relRef})
		err := kv.Scan(e.kv, up, upper(up), func(k, v []byte) error {
			if bid, ok := refID(k[len(undoPrefix(id)):]); ok && len(v) > 0 && v[0] == undoPresent {
				b.Delete(holderKey(d.id, bid, id))
				b.Set(gcKey(d.id, bid), d.releaseValue(id, 0))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, p := range [][]byte{fsPrefix(id), journalPrefix(id), localPrefix(id), undoPrefix(id)} {
		b.DeleteRange(p, upper(p))
	}
	b.Delete(fsRecordKey(id))
	if d != nil && rec.State != fsCloning {
		d.mu.Lock()
		d.rec.Refs--
		drec := d.rec
		d.mu.Unlock()
		b.Set(domainKey(d.id), drec.encode())
	}
	if err := b.Commit(true); err != nil {
		return e.failed(err)
	}
	e.setSealing(id, nil)
	e.mu.Lock()
	delete(e.recs, id)
	e.mu.Unlock()
	e.unmapFS(id)
	e.kickGC()
	return nil
}

var _ = errors.Is
var _ kv.Store
