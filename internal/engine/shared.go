package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// Shared stores. Several engines (the nodes of one region) may open one
// kv.Store (PostgreSQL) and one object store. Each domain — a file system
// and its clones, which share blocks — is then owned by one engine at a
// time: Open registers every file system but opens none, Attach(dom) opens
// a domain's file systems here (committers, merges, collection of its
// blocks), Detach(dom) closes them. Ownership itself (leases, fencing
// tokens) is the caller's: the store refuses commits of keys the engine
// no longer owns with kv.ErrFenced, which the engine reports as ErrFenced
// instead of stopping (KeyDomain tells the store which domain a key
// belongs to).
//
// A domain's clean-detach marker ('s' 'C' dom) replaces the server-wide
// clean-shutdown marker: an owner that attaches a domain without it (its
// previous owner crashed) sweeps the domain's orphan blocks in the
// background.

// srvDomClean is the sub-key of a domain's clean-detach marker.
const srvDomClean = 'C'

func domainCleanKey(dom uint64) []byte { return be64([]byte{pfxServer, srvDomClean}, dom) }

// ErrElsewhere: the file system is registered but served by another node
// of the region (shared stores).
var ErrElsewhere = errors.New("file system is served by another node")

// ErrFenced: another node took the file system over; this node's commit
// was refused and nothing of it was applied (shared stores). NFS answers
// NFS3ERR_JUKEBOX, so that clients retry, and reach the new owner once
// they reconnect.
var ErrFenced = errors.New("file system was taken over by another node")

// Shared reports whether the engine runs on a store shared with other
// engines (Options.Shared).
func (e *Engine) Shared() bool { return e.opts.Shared }

// owns reports whether this engine owns (has attached) domain dom; always
// true on a store of its own. Callers hold e.mu.
func (e *Engine) ownsLocked(dom uint64) bool {
	return e.owned == nil || e.owned[dom]
}

func (e *Engine) owns(dom uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ownsLocked(dom)
}

// Domains returns the domains of the registered file systems, sorted, with
// the names of their file systems.
func (e *Engine) Domains() map[uint64][]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[uint64][]string{}
	for _, rec := range e.recs {
		out[rec.Domain] = append(out[rec.Domain], rec.Name)
	}
	for _, names := range out {
		slices.Sort(names)
	}
	return out
}

// Attached lists the domains this engine owns (shared stores).
func (e *Engine) Attached() []uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []uint64
	for d := range e.owned {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// DomainOf returns the domain of the file system called name.
func (e *Engine) DomainOf(name string) (uint64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	id, ok := e.names[name]
	if !ok {
		return 0, false
	}
	rec := e.recs[id]
	if rec == nil {
		return 0, false
	}
	return rec.Domain, true
}

// KeyDomain returns the domain a key of the store belongs to: the keys of
// a file system ('f', 'j', 'l', 'u' and its registry entries) belong to its
// domain, holder and release keys to theirs. ok is false for keys of the
// whole region (id counters, the format version).
func (e *Engine) KeyDomain(key []byte) (dom uint64, ok bool) {
	if len(key) < 2 {
		return 0, false
	}
	e.fenceMu.RLock()
	defer e.fenceMu.RUnlock()
	u64 := func(b []byte) (uint64, bool) {
		if len(b) < 8 {
			return 0, false
		}
		return binary.BigEndian.Uint64(b), true
	}
	fsDom := func(b []byte) (uint64, bool) {
		id, ok := u64(b)
		if !ok {
			return 0, false
		}
		d, ok := e.fsDom[id]
		return d, ok
	}
	switch key[0] {
	case pfxFS, pfxJournal, pfxLocal, pfxUndo:
		return fsDom(key[1:])
	case pfxHolder, pfxGC:
		return u64(key[1:])
	case pfxServer:
		switch key[1] {
		case srvFS:
			return fsDom(key[2:])
		case srvName:
			id, ok := e.nameFS[string(key[2:])]
			if !ok {
				return 0, false
			}
			d, ok := e.fsDom[id]
			return d, ok
		case srvDomain, srvDomClean:
			return u64(key[2:])
		}
	}
	return 0, false
}

// mapFS records that fsid (called name) is in domain dom, for KeyDomain,
// before its first commit.
func (e *Engine) mapFS(fsid uint64, name string, dom uint64) {
	e.fenceMu.Lock()
	e.fsDom[fsid] = dom
	if name != "" {
		e.nameFS[name] = fsid
	}
	e.fenceMu.Unlock()
}

func (e *Engine) unmapName(name string) {
	e.fenceMu.Lock()
	delete(e.nameFS, name)
	e.fenceMu.Unlock()
}

func (e *Engine) unmapFS(fsid uint64) {
	e.fenceMu.Lock()
	delete(e.fsDom, fsid)
	e.fenceMu.Unlock()
}

// failed turns the error of a commit into the error to report: a fenced
// commit (another node owns the keys now) fails only the operation, any
// other failure stops the engine (fatal).
func (e *Engine) failed(err error) error {
	if errors.Is(err, kv.ErrFenced) {
		if !errors.Is(err, ErrFenced) {
			err = fmt.Errorf("engine: %w: %w", ErrFenced, err)
		}
		return err
	}
	e.fatal(err)
	if ferr := e.Err(); ferr != nil {
		return ferr
	}
	return err
}

// Attach opens here the file systems of domain dom, read afresh from the
// store (the node must own the domain: commits of its keys are fenced).
// A domain that is not registered yet (being created by this engine, see
// Options.Claim) is marked owned. A domain whose previous owner did not
// detach it cleanly gets an orphan sweep in the background.
func (e *Engine) Attach(ctx context.Context, dom uint64) error {
	if !e.opts.Shared {
		return nil
	}
	e.ownMu.Lock()
	defer e.ownMu.Unlock()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	if e.owned[dom] {
		e.mu.Unlock()
		return nil
	}
	e.mu.Unlock()
	v, err := e.kv.Get(domainKey(dom))
	if errors.Is(err, kv.ErrNotFound) {
		e.mu.Lock()
		e.owned[dom] = true
		e.mu.Unlock()
		e.log.Info("domain attached (new)", "domain", dom)
		return nil
	}
	if err != nil {
		return fmt.Errorf("engine: attach domain %d: %w", dom, err)
	}
	drec, err := decodeDomain(v)
	if err != nil {
		return fmt.Errorf("engine: attach domain %d: %w", dom, err)
	}
	d, err := e.openDomain(ctx, dom, drec)
	if err != nil {
		return fmt.Errorf("engine: attach domain %d: %w", dom, err)
	}
	all, err := e.readFSRecords()
	if err != nil {
		return fmt.Errorf("engine: attach domain %d: %w", dom, err)
	}
	_, cerr := e.kv.Get(domainCleanKey(dom))
	clean := cerr == nil
	if cerr != nil && !errors.Is(cerr, kv.ErrNotFound) {
		return fmt.Errorf("engine: attach domain %d: %w", dom, cerr)
	}
	var mine []fsEntry
	for _, en := range all {
		if en.rec.Domain == dom {
			mine = append(mine, en)
		}
	}
	e.mu.Lock()
	e.domains[dom] = d
	for _, en := range mine {
		e.recs[en.id] = en.rec
		if en.rec.State == fsReady {
			e.names[en.rec.Name] = en.id
		}
	}
	e.mu.Unlock()
	for _, en := range mine {
		e.mapFS(en.id, en.rec.Name, dom)
		e.setSealing(en.id, d.metaAEAD)
	}
	if clean {
		b := e.kv.NewBatch()
		b.Delete(domainCleanKey(dom))
		err := b.Commit(true)
		b.Close()
		if err != nil {
			return fmt.Errorf("engine: attach domain %d: %w", dom, err)
		}
	}
	var opened []*FS
	fail := func(err error) error {
		for _, fs := range opened {
			fs.close()
		}
		return fmt.Errorf("engine: attach domain %d: %w", dom, err)
	}
	var purge []fsEntry
	locked := map[uint64]*fsRecord{}
	for _, en := range mine {
		switch {
		case en.rec.State != fsReady:
			purge = append(purge, en)
		case d.keyError() != nil:
			locked[en.id] = en.rec
		default:
			fs, err := e.openFS(ctx, en.id, en.rec, d)
			if err != nil {
				return fail(fmt.Errorf("open file system %q: %w", en.rec.Name, err))
			}
			opened = append(opened, fs)
		}
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return fail(ErrClosed)
	}
	for _, fs := range opened {
		e.fss[fs.id] = fs
	}
	for id, rec := range locked {
		e.locked[id] = rec
	}
	// Owned only now: collection of the domain's blocks needs every file
	// system of it open (their pins).
	e.owned[dom] = true
	e.mu.Unlock()
	for _, en := range purge {
		e.wg.Add(1)
		go func(id uint64, rec *fsRecord) {
			defer e.wg.Done()
			if err := e.purgeFS(id, rec); err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrFenced) {
				e.log.Error("purge file system", "fs_id", id, "name", rec.Name, "err", err)
			}
		}(en.id, en.rec)
	}
	if !clean && len(mine) > 0 {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			n, err := e.sweepDomain(context.Background(), d)
			switch {
			case err != nil && !errors.Is(err, ErrClosed):
				e.log.Warn("orphan sweep", "domain", dom, "err", err)
			case n > 0:
				e.log.Info("orphan blocks handed to the collector after an unclean detach", "domain", dom, "count", n)
			}
		}()
	}
	e.log.Info("domain attached", "domain", dom, "file_systems", len(opened), "clean", clean)
	e.kickGC()
	return nil
}

// Detach closes the file systems of domain dom (their queued operations
// finish first) and stops collecting its blocks, then marks the domain
// cleanly detached. Whatever fails, the domain is no longer attached when
// it returns.
func (e *Engine) Detach(ctx context.Context, dom uint64) error {
	if !e.opts.Shared {
		return nil
	}
	e.regMu.Lock()
	defer e.regMu.Unlock()
	e.ownMu.Lock()
	defer e.ownMu.Unlock()
	e.mu.Lock()
	if !e.owned[dom] {
		e.mu.Unlock()
		return nil
	}
	delete(e.owned, dom)
	var fss []*FS
	for id, fs := range e.fss {
		if fs.dom.id == dom {
			fss = append(fss, fs)
			delete(e.fss, id)
		}
	}
	for id, rec := range e.locked {
		if rec.Domain == dom {
			delete(e.locked, id)
		}
	}
	d := e.domains[dom]
	e.mu.Unlock()
	for _, fs := range fss {
		fs.close()
	}
	if d != nil {
		// A collection pass of the domain in progress ends first.
		d.gcMu.Lock()
		//lint:ignore SA2001 waiting for the holder is the point
		d.gcMu.Unlock()
	}
	if e.Err() != nil {
		return e.Err()
	}
	b := e.kv.NewBatch()
	defer b.Close()
	b.Set(domainCleanKey(dom), nil)
	if err := b.Commit(true); err != nil {
		// Not clean then: the next owner sweeps.
		return fmt.Errorf("engine: detach domain %d: %w", dom, err)
	}
	e.log.Info("domain detached", "domain", dom, "file_systems", len(fss))
	return nil
}

// Own returns the file system called name, making this engine its owner
// first when another node serves it (Options.Claim).
func (e *Engine) Own(ctx context.Context, name string) (*FS, error) {
	fs, err := e.FS(name)
	if !errors.Is(err, ErrElsewhere) || e.opts.Claim == nil {
		return fs, err
	}
	dom, ok := e.DomainOf(name)
	if !ok {
		return nil, fmt.Errorf("engine: %q: %w", name, ErrFSNotFound)
	}
	if err := e.opts.Claim(ctx, dom); err != nil {
		return nil, fmt.Errorf("engine: take %q over: %w", name, err)
	}
	return e.FS(name)
}

// claim makes this engine the owner of dom when it is not (Options.Claim).
func (e *Engine) claim(ctx context.Context, dom uint64) error {
	if !e.opts.Shared || e.owns(dom) {
		return nil
	}
	if e.opts.Claim == nil {
		return fmt.Errorf("engine: domain %d: %w", dom, ErrElsewhere)
	}
	if err := e.opts.Claim(ctx, dom); err != nil {
		return fmt.Errorf("engine: take domain %d over: %w", dom, err)
	}
	if !e.owns(dom) {
		return fmt.Errorf("engine: domain %d: %w", dom, ErrElsewhere)
	}
	return nil
}

// Usage returns what the file system called name holds, wherever it is
// served (read from the store for another node's).
func (e *Engine) Usage(name string) (Usage, error) {
	fs, err := e.FS(name)
	if err == nil {
		return fs.Usage()
	}
	if !errors.Is(err, ErrElsewhere) {
		return Usage{}, err
	}
	e.mu.Lock()
	id := e.names[name]
	e.mu.Unlock()
	v, err := e.kv.Get(absKey(id, metaKey(metaUsage)))
	if errors.Is(err, kv.ErrNotFound) {
		return Usage{}, nil
	}
	if err != nil {
		return Usage{}, err
	}
	if len(v) != 16 {
		return Usage{}, fmt.Errorf("%w: usage record", ErrCorrupt)
	}
	return Usage{Bytes: binary.BigEndian.Uint64(v), Files: binary.BigEndian.Uint64(v[8:])}, nil
}

// Ready reports whether the file system called name is registered and
// complete (not a clone still being copied), wherever it is served.
func (e *Engine) Ready(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	id, ok := e.names[name]
	if !ok {
		return false
	}
	rec := e.recs[id]
	return rec != nil && rec.State == fsReady
}

// Refresh reads the registry again (file systems and domains created or
// deleted by other nodes) without touching the attached domains: a node
// that becomes its region's leader calls it before serving the API.
func (e *Engine) Refresh(ctx context.Context) error {
	if !e.opts.Shared {
		return nil
	}
	e.regMu.Lock()
	defer e.regMu.Unlock()
	all, err := e.readFSRecords()
	if err != nil {
		return fmt.Errorf("engine: refresh: %w", err)
	}
	doms := map[uint64]*domainRecord{}
	it, err := e.kv.NewIter(domainKey(0), upper([]byte{pfxServer, srvDomain}))
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			it.Close()
			return err
		}
		rec, err := decodeDomain(v)
		if err != nil {
			it.Close()
			return fmt.Errorf("engine: domain %d: %w", binary.BigEndian.Uint64(it.Key()[2:]), err)
		}
		doms[binary.BigEndian.Uint64(it.Key()[2:])] = rec
	}
	if err := it.Close(); err != nil {
		return err
	}
	seen := map[uint64]bool{}
	for _, en := range all {
		seen[en.id] = true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, rec := range doms {
		if e.ownsLocked(id) && e.domains[id] != nil {
			continue
		}
		if d := e.domains[id]; d != nil && !d.rec.Pending && !rec.Pending {
			continue // keys known; nothing of it is used here
		}
		d, err := e.openDomain(ctx, id, rec)
		if err != nil {
			e.log.Warn("refresh: domain not opened", "domain", id, "err", err)
			continue
		}
		e.domains[id] = d
	}
	for id, rec := range e.recs {
		if !seen[id] && !e.ownsLocked(rec.Domain) {
			delete(e.recs, id)
			if e.names[rec.Name] == id {
				delete(e.names, rec.Name)
			}
		}
	}
	for _, en := range all {
		if e.ownsLocked(en.rec.Domain) {
			continue
		}
		d := e.domains[en.rec.Domain]
		if d == nil {
			continue
		}
		e.recs[en.id] = en.rec
		if en.rec.State == fsReady {
			e.names[en.rec.Name] = en.id
		} else if e.names[en.rec.Name] == en.id {
			delete(e.names, en.rec.Name)
		}
		e.setSealingLocked(en.id, d.metaAEAD)
		e.fenceMu.Lock()
		e.fsDom[en.id] = en.rec.Domain
		if en.rec.State == fsReady {
			e.nameFS[en.rec.Name] = en.id
		}
		e.fenceMu.Unlock()
	}
	return nil
}

type fsEntry struct {
	id  uint64
	rec *fsRecord
}

// readFSRecords reads every file-system record of the registry.
func (e *Engine) readFSRecords() ([]fsEntry, error) {
	it, err := e.kv.NewIter(fsRecordKey(0), upper([]byte{pfxServer, srvFS}))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var all []fsEntry
	for ok := it.First(); ok; ok = it.Next() {
		id := binary.BigEndian.Uint64(it.Key()[2:])
		v, err := it.Value()
		if err != nil {
			return nil, err
		}
		rec, err := decodeFSRecord(v)
		if err != nil {
			return nil, fmt.Errorf("engine: file system %d: %w", id, err)
		}
		all = append(all, fsEntry{id, rec})
	}
	return all, it.Error()
}

// sweepDomain hands every stored block of d that no file system holds and
// no release entry waits for to the collector, which deletes it unless a
// writer has it in flight (blocks uploaded by a previous owner that
// crashed before committing the metadata naming them). It returns how many
// it handed over.
func (e *Engine) sweepDomain(ctx context.Context, d *domain) (int, error) {
	st := d.blockStore()
	if st == nil {
		return 0, nil
	}
	if t, ok := st.(interface {
		RemoveTemps(context.Context) (int, error)
	}); ok {
		if _, err := t.RemoveTemps(ctx); err != nil {
			return 0, fmt.Errorf("engine: sweep domain %d: %w", d.id, err)
		}
	}
	var batch []blocks.ID
	total := 0
	flush := func() error {
		for _, id := range batch {
			held, err := e.held(d, id)
			if err != nil {
				return err
			}
			if held {
				continue
			}
			// A queued release may be pinned by a destination: leave it.
			if _, err := e.kv.Get(gcKey(d.id, id)); err == nil {
				continue
			} else if !errors.Is(err, kv.ErrNotFound) {
				return err
			}
			e.queueCandidate(d, id)
			total++
		}
		batch = batch[:0]
		// Let the collector catch up before handing over more.
		for d.retiredLen() > 4*e.opts.BatchEntries {
			e.kickGC()
			select {
			case <-e.stop:
				return ErrClosed
			case <-time.After(50 * time.Millisecond):
			}
		}
		return nil
	}
	err := st.Walk(ctx, func(id blocks.ID) error {
		select {
		case <-e.stop:
			return ErrClosed
		default:
		}
		if !e.owns(d.id) {
			return ErrElsewhere
		}
		batch = append(batch, id)
		if len(batch) >= e.opts.BatchEntries {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return total, fmt.Errorf("engine: sweep domain %d: %w", d.id, err)
	}
	return total, nil
}

func (d *domain) retiredLen() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.retired)
}
