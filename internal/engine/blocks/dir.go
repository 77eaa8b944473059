package blocks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/regionfs/regionfs/internal/engine/disk"
)

const (
	tempPrefix = "tmp-"
	// flatMarker is the directory whose presence in a store's directory
	// says it has the flat layout (see Dir).
	flatMarker = "layout-flat"
)

// Dir is the local block store: one file per block under a hex fan-out of
// the digest. A store made by this version has the flat layout,
// dir/<digest[0]>/<hex id>, whose 256 directories are made (and synced)
// when the store is created, so a new block only adds an entry to an
// existing directory: one file sync and one directory sync. A store made
// before (no flatMarker) keeps its two-level layout,
// dir/<digest[0]>/<digest[1]>/<hex id>, whose directories are made as
// blocks need them.
type Dir struct {
	fs   disk.FS
	dir  string
	keys Keys
	flat bool // the flat layout (else the two-level one)

	bufs bufPool // sealing buffers

	// descs keeps block files open for GetInto (nil: none kept).
	descs *Descs

	// syncMu makes Syncs one at a time: a Sync takes the dirty
	// directories, and one running beside it must not return before
	// those it took are synced (see Sync).
	syncMu sync.Mutex

	mu    sync.Mutex // guards the fields below
	dirty map[string]bool
	made  map[string]bool // fan-out directories known to exist
	// putting counts the Puts writing into each fan-out directory that
	// have not marked it dirty yet (see Put)
	putting map[string]int
	// synced: the directories a Sync of this Dir has synced (see Put)
	synced map[string]bool

	puts, putBytes, gets, getBytes, deletes, deletedBytes, corrupt, opens atomic.Uint64
}

// DirOptions are OpenDirWith's.
type DirOptions struct {
	// Descs, when set, keeps the block files the Dir writes (Put) and
	// reads (GetInto) open for the next GetInto of their block.
	Descs *Descs
}

var (
	_ Store      = (*Dir)(nil)
	_ ColdPutter = (*Dir)(nil)
)

// OpenDir opens (creating if needed) a block directory.
func OpenDir(fsys disk.FS, dir string, keys Keys) (*Dir, error) {
	return OpenDirWith(fsys, dir, keys, DirOptions{})
}

// OpenDirWith is OpenDir with options.
func OpenDirWith(fsys disk.FS, dir string, keys Keys, o DirOptions) (*Dir, error) {
	if keys.Hasher == nil {
		return nil, errors.New("blocks: a Hasher is required")
	}
	if err := fsys.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("blocks: %w", err)
	}
	// Make the directory itself durable: sync every ancestor, top down.
	parts := strings.Split(path.Clean(dir), "/")
	for i := range parts {
		parent := "."
		if i > 0 {
			parent = path.Join(parts[:i]...)
		}
		if err := fsys.SyncDir(parent); err != nil {
			return nil, fmt.Errorf("blocks: sync %s: %w", parent, err)
		}
	}
	d := &Dir{fs: fsys, dir: dir, keys: keys, descs: o.Descs, dirty: map[string]bool{}, made: map[string]bool{}, putting: map[string]int{}, synced: map[string]bool{}}
	if err := d.openLayout(); err != nil {
		return nil, fmt.Errorf("blocks: %s: %w", dir, err)
	}
	return d, nil
}

// openLayout finds the store's layout. An empty directory (a new store)
// gets the flat one: the marker first, durable before any block, so a
// store is never taken for the other layout; then the 256 fan-out
// directories, made again if a crash interrupted this.
func (d *Dir) openLayout() error {
	ents, err := d.fs.ReadDir(d.dir)
	if err != nil {
		return err
	}
	have := make(map[string]bool, len(ents))
	for _, e := range ents {
		have[e.Name()] = e.IsDir()
	}
	if !have[flatMarker] {
		if len(ents) > 0 {
			return nil // a store of the two-level layout
		}
		if err := d.fs.MkdirAll(path.Join(d.dir, flatMarker)); err != nil {
			return err
		}
		if err := d.fs.SyncDir(d.dir); err != nil {
			return err
		}
	}
	d.flat = true
	made := false
	for i := range 256 {
		name := hex.EncodeToString([]byte{byte(i)})
		if have[name] {
			continue
		}
		if err := d.fs.MkdirAll(path.Join(d.dir, name)); err != nil {
			return err
		}
		made = true
	}
	if made {
		return d.fs.SyncDir(d.dir)
	}
	return nil
}

// bufPool keeps the buffers blocks are sealed into for later puts.
type bufPool struct{ p sync.Pool }

func (bp *bufPool) get() *[]byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return b
	}
	return new([]byte)
}

func (bp *bufPool) put(b *[]byte) {
	if cap(*b) <= 8<<20 {
		bp.p.Put(b)
	}
}

// fanout returns the directories of id's file: its parent's parent and its
// parent (the same in the flat layout).
func (d *Dir) fanout(id ID) (string, string) {
	h := hex.EncodeToString(id[1:3])
	l1 := path.Join(d.dir, h[:2])
	if d.flat {
		return l1, l1
	}
	return l1, path.Join(l1, h[2:4])
}

func (d *Dir) name(id ID) string {
	_, l2 := d.fanout(id)
	return path.Join(l2, id.String())
}

// ensureDir creates the fan-out directories of id, marking the parents
// whose entries must be synced (the flat layout's exist from the start).
func (d *Dir) ensureDir(id ID) (string, error) {
	l1, l2 := d.fanout(id)
	if d.flat {
		return l2, nil
	}
	d.mu.Lock()
	ok := d.made[l2]
	d.mu.Unlock()
	if ok {
		return l2, nil
	}
	if _, err := d.fs.Stat(l2); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if err := d.fs.MkdirAll(l2); err != nil {
			return "", err
		}
		d.mu.Lock()
		d.dirty[d.dir] = true
		d.dirty[l1] = true
		d.mu.Unlock()
	}
	d.mu.Lock()
	d.made[l2] = true
	d.mu.Unlock()
	return l2, nil
}

func randSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Put stores data under id (see Store).
func (d *Dir) Put(_ context.Context, id ID, data []byte) error { return d.put(id, data, false) }

// PutCold is Put, except that the block file's pages leave the OS page
// cache once written (see ColdPutter), when the file system can say so.
func (d *Dir) PutCold(_ context.Context, id ID, data []byte) error { return d.put(id, data, true) }

func (d *Dir) put(id ID, data []byte, cold bool) error {
	name := d.name(id)
	if _, err := d.fs.Stat(name); err == nil {
		// Stored: the Sync before the caller's commit covers its name
		// if it may not be durable yet (markFound).
		d.markFound(name)
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blocks: stat %s: %w", id, err)
	}
	l2, err := d.ensureDir(id)
	if err != nil {
		return fmt.Errorf("blocks: put %s: %w", id, err)
	}
	d.mu.Lock()
	d.putting[l2]++
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if d.putting[l2]--; d.putting[l2] <= 0 {
			delete(d.putting, l2)
		}
		d.mu.Unlock()
	}()
	var (
		hdr, payload []byte
		sealed       *[]byte
	)
	if d.keys.Sealer == nil {
		// Header and payload are written apart: no copy of the block.
		if hdr, payload, err = Encode(d.keys, id, data); err != nil {
			return err
		}
	} else {
		// Sealed into a buffer of an earlier put (a new one is zeroed).
		sealed = d.bufs.get()
		defer d.bufs.put(sealed)
		if *sealed, err = encodeTo((*sealed)[:0], d.keys, id, data); err != nil {
			return err
		}
		payload = *sealed
	}
	tmp := path.Join(l2, tempPrefix+randSuffix())
	f, err := d.fs.Create(tmp)
	if err != nil {
		if !errors.Is(err, fs.ErrExist) {
			// The file may exist, unopened (disk.Fault.Done): not left
			// behind. An existing name is another put's.
			_ = d.fs.Remove(tmp)
		}
		return fmt.Errorf("blocks: put %s: %w", id, err)
	}
	werr := func() error {
		if len(hdr) > 0 {
			if _, err := f.Write(hdr); err != nil {
				return err
			}
		}
		if _, err := f.Write(payload); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		if dc, ok := f.(interface{ DropCache() error }); ok && cold {
			_ = dc.DropCache() // advice: the data is durable either way
		}
		return nil
	}()
	// The file stays open for reads of the block (Descs), but for a
	// cold put's (nobody reads those soon).
	holder, keep := f.(fileHolder)
	keep = keep && werr == nil && !cold && d.descs != nil
	if !keep {
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
	}
	if werr == nil {
		if keep {
			// The rename and the file kept for the block change together
			// (Descs).
			mu := d.descs.lock(id)
			if werr = d.fs.Rename(tmp, name); werr == nil {
				h := holder.Hold(name, int64(len(hdr)+len(payload)))
				if _, ok := d.descs.add(d, id, h, false); !ok {
					_ = h.Close()
				}
			}
			mu.Unlock()
		} else {
			werr = d.fs.Rename(tmp, name)
		}
	}
	if werr != nil {
		if keep {
			_ = f.Close()
		}
		_ = d.fs.Remove(tmp)
		return fmt.Errorf("blocks: put %s: %w", id, werr)
	}
	d.mu.Lock()
	d.dirty[l2] = true
	d.mu.Unlock()
	d.puts.Add(1)
	d.putBytes.Add(uint64(len(data)))
	return nil
}

// syncDirParallel bounds the directory syncs of one Sync that run at
// once: a sync after many puts (an initial sync's commit) finds most of
// the 256 fan-out directories dirty, and one after the other each waited
// for its own journal commit; at once they share a few.
const syncDirParallel = 16

// Sync makes the names of blocks put so far durable. Syncs run one at a
// time: one that found nothing dirty because another had just taken the
// directories returned at once, before those were synced, and its caller
// (the committer of another file system of the domain: a clone, a drill)
// committed metadata naming a block whose name a crash could still lose.
func (d *Dir) Sync(context.Context) error {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	d.mu.Lock()
	if len(d.dirty) == 0 {
		d.mu.Unlock()
		return nil
	}
	dirs := make([]string, 0, len(d.dirty))
	for k := range d.dirty {
		dirs = append(dirs, k)
	}
	d.dirty = map[string]bool{}
	d.mu.Unlock()
	// Deepest first: a new fan-out directory's entries before its parent's.
	for depth := 2; depth >= 0; depth-- {
		var level []string
		for _, p := range dirs {
			if strings.Count(strings.TrimPrefix(p, d.dir), "/") == depth {
				level = append(level, p)
			}
		}
		if err := d.syncDirs(level); err != nil {
			// Keep them dirty: the caller stops the process anyway, but a
			// later Sync must not claim success.
			d.mu.Lock()
			for _, q := range dirs {
				d.dirty[q] = true
			}
			d.mu.Unlock()
			return err
		}
	}
	d.mu.Lock()
	for _, q := range dirs {
		d.synced[q] = true
	}
	d.mu.Unlock()
	return nil
}

// syncDirs syncs dirs, up to syncDirParallel at once, and returns the
// first error.
func (d *Dir) syncDirs(dirs []string) error {
	switch len(dirs) {
	case 0:
		return nil
	case 1:
		if err := d.fs.SyncDir(dirs[0]); err != nil {
			return fmt.Errorf("blocks: sync %s: %w", dirs[0], err)
		}
		return nil
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, syncDirParallel)
	for _, p := range dirs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := d.fs.SyncDir(p); err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("blocks: sync %s: %w", p, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// Get reads and verifies a block.
func (d *Dir) Get(_ context.Context, id ID) ([]byte, error) {
	data, _, err := d.get(id, nil, decodeInPlace, false)
	return data, err
}

var _ BufGetter = (*Dir)(nil)

// GetInto reads a block in buf when it fits and checks it as its stored
// form allows (BufGetter, DecodeStored), from its file kept open when
// the Dir has one (DirOptions.Descs), and keeps the file it opened.
func (d *Dir) GetInto(ctx context.Context, id ID, buf []byte) ([]byte, bool, error) {
	if d.descs == nil {
		return d.get(id, buf, DecodeStored, rawReads(ctx))
	}
	raw := rawReads(ctx)
	if e := d.descs.get(d, id); e != nil {
		b, inBuf, err := e.h.ReadWhole(buf, raw)
		d.descs.release(e)
		if err == nil {
			if data, err := DecodeStored(d.keys, id, b); err == nil {
				d.gets.Add(1)
				d.getBytes.Add(uint64(len(data)))
				return data, inBuf, nil
			}
		}
		// A kept file that does not read or check: the file under the
		// block's name decides (it may have been replaced: a repair).
		d.descs.forget(d, id)
	}
	ho, ok := d.fs.(heldOpener)
	if !ok {
		return d.get(id, buf, DecodeStored, raw)
	}
	e, h, err := d.openKept(ho, id)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, false, fmt.Errorf("blocks: read %s: %w", id, err)
	}
	if e != nil {
		h = e.h
	}
	b, inBuf, err := h.ReadWhole(buf, raw)
	var data []byte
	if err == nil {
		data, err = DecodeStored(d.keys, id, b)
		if err != nil {
			d.corrupt.Add(1)
		}
	}
	if e != nil {
		d.descs.release(e)
		if err != nil {
			d.descs.forget(d, id)
		}
	} else {
		_ = h.Close()
	}
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("blocks: read %s: %w", id, err)
		}
		return nil, false, err
	}
	d.gets.Add(1)
	d.getBytes.Add(uint64(len(data)))
	return data, inBuf, nil
}

// openKept returns the kept file of block id held for a read (release),
// opening the file under its name and keeping it if none is; or, when
// the set keeps nothing, the file it opened (the caller closes it).
func (d *Dir) openKept(ho heldOpener, id ID) (*desc, *disk.Held, error) {
	mu := d.descs.lock(id)
	defer mu.Unlock()
	if e := d.descs.get(d, id); e != nil {
		return e, nil, nil // kept by another read meanwhile
	}
	d.opens.Add(1)
	h, err := ho.OpenHeld(d.name(id))
	if err != nil {
		return nil, nil, err
	}
	if e, ok := d.descs.add(d, id, h, true); ok {
		return e, nil, nil
	}
	return nil, h, nil
}

// fileHolder is a disk.File its writer can keep open to read (disk.OS's).
type fileHolder interface {
	Hold(name string, size int64) *disk.Held
}

// heldOpener is an FS that opens files to keep them open (disk.OS).
type heldOpener interface {
	OpenHeld(name string) (*disk.Held, error)
}

// GetForCopy reads a block to hand it to one who verifies it against id
// anyway (replication's destination hashes every pushed block), checked
// as its stored form allows (DecodeStored).
func (d *Dir) GetForCopy(_ context.Context, id ID) ([]byte, error) {
	data, _, err := d.get(id, nil, DecodeStored, false)
	return data, err
}

// get reads block id into buf when its file fits, else into a new buffer
// (the raw form is decoded in place: the buffer is get's).
func (d *Dir) get(id ID, buf []byte, decode func(Keys, ID, []byte) ([]byte, error), rawCalls bool) ([]byte, bool, error) {
	raw, inBuf, err := d.read(id, buf, rawCalls)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, false, fmt.Errorf("blocks: read %s: %w", id, err)
	}
	data, err := decode(d.keys, id, raw)
	if err != nil {
		d.corrupt.Add(1)
		return nil, false, err
	}
	d.gets.Add(1)
	d.getBytes.Add(uint64(len(data)))
	return data, inBuf, nil
}

// read reads the file of block id whole, into buf when it fits: in one
// call when the FS can (disk.WholeReader), its data with a raw system
// call when rawCalls and the FS can (disk.RawWholeReader), else through a File.
func (d *Dir) read(id ID, buf []byte, rawCalls bool) ([]byte, bool, error) {
	d.opens.Add(1)
	if rr, ok := d.fs.(disk.RawWholeReader); ok && rawCalls {
		return rr.ReadWholeRaw(d.name(id), buf)
	}
	if wr, ok := d.fs.(disk.WholeReader); ok {
		return wr.ReadWhole(d.name(id), buf)
	}
	f, err := d.fs.Open(d.name(id))
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, false, err
	}
	inBuf := size <= int64(cap(buf))
	var raw []byte
	if inBuf {
		raw = buf[:size]
	} else {
		raw = make([]byte, size)
	}
	if n, err := f.ReadAt(raw, 0); err != nil && !(errors.Is(err, io.EOF) && int64(n) == size) {
		return nil, false, err
	}
	return raw, inBuf, nil
}

// Has reports whether id is stored. A caller may commit metadata that
// references a block Has found once it has run Sync (see markFound).
func (d *Dir) Has(_ context.Context, id ID) (bool, error) {
	name := d.name(id)
	_, err := d.fs.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	d.markFound(name)
	return true, nil
}

// markFound marks the directory of the block file name, which a Put or
// Has found, for the next Sync when its name may not be durable yet: a
// Put of it may not have marked it yet, or a process killed before it
// synced the directory left it (the page cache still shows the name). A
// directory this Dir has synced holds only names that were durable then
// or that a Put marked since.
func (d *Dir) markFound(name string) {
	dir := path.Dir(name)
	d.mu.Lock()
	if d.putting[dir] > 0 || !d.synced[dir] {
		d.dirty[dir] = true
	}
	d.mu.Unlock()
}

// Delete removes a block (absent is fine).
func (d *Dir) Delete(_ context.Context, id ID) error {
	var size int64
	if fi, err := d.fs.Stat(d.name(id)); err == nil {
		size = fi.Size()
	}
	var err error
	if d.descs != nil {
		// The removal and the file kept for the block change together
		// (Descs).
		mu := d.descs.lock(id)
		err = d.fs.Remove(d.name(id))
		d.descs.forget(d, id)
		mu.Unlock()
	} else {
		err = d.fs.Remove(d.name(id))
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blocks: delete %s: %w", id, err)
	}
	if err == nil {
		d.deletes.Add(1)
		d.deletedBytes.Add(uint64(size))
	}
	return nil
}

// Walk calls fn for every stored id.
func (d *Dir) Walk(ctx context.Context, fn func(ID) error) error {
	return d.walk(ctx, func(name string, tmp bool) error {
		if tmp {
			return nil
		}
		id, err := ParseID(path.Base(name))
		if err != nil {
			return nil // not a block file
		}
		return fn(id)
	})
}

func (d *Dir) walk(ctx context.Context, fn func(name string, tmp bool) error) error {
	l1s, err := d.fs.ReadDir(d.dir)
	if err != nil {
		return fmt.Errorf("blocks: walk: %w", err)
	}
	for _, a := range l1s {
		if !a.IsDir() {
			continue
		}
		p1 := path.Join(d.dir, a.Name())
		if d.flat {
			if a.Name() == flatMarker {
				continue
			}
			if err := d.walkFiles(ctx, p1, fn); err != nil {
				return err
			}
			continue
		}
		l2s, err := d.fs.ReadDir(p1)
		if err != nil {
			return fmt.Errorf("blocks: walk: %w", err)
		}
		for _, b := range l2s {
			if !b.IsDir() {
				continue
			}
			if err := d.walkFiles(ctx, path.Join(p1, b.Name()), fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// walkFiles calls fn for every file of a leaf directory.
func (d *Dir) walkFiles(ctx context.Context, dir string, fn func(name string, tmp bool) error) error {
	files, err := d.fs.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("blocks: walk: %w", err)
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if f.IsDir() {
			continue
		}
		tmp := strings.HasPrefix(f.Name(), tempPrefix)
		if err := fn(path.Join(dir, f.Name()), tmp); err != nil {
			return err
		}
	}
	return nil
}

// RemoveTemps deletes temporary files left by a crash.
func (d *Dir) RemoveTemps(ctx context.Context) (int, error) {
	n := 0
	err := d.walk(ctx, func(name string, tmp bool) error {
		if !tmp {
			return nil
		}
		if err := d.fs.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		n++
		return nil
	})
	return n, err
}

// Stats returns the counters.
func (d *Dir) Stats() Stats {
	st := Stats{
		Puts: d.puts.Load(), PutBytes: d.putBytes.Load(), Gets: d.gets.Load(), GetBytes: d.getBytes.Load(),
		Deletes: d.deletes.Load(), DeletedBytes: d.deletedBytes.Load(), CorruptReads: d.corrupt.Load(),
		FileOpens: d.opens.Load(),
	}
	if c, ok := d.fs.(interface{ Raw() uint64 }); ok {
		st.RawReads = c.Raw()
	}
	if c, ok := d.fs.(interface{ Uncached() uint64 }); ok {
		st.UncachedReads = c.Uncached()
	}
	return st
}

type rawReadsKey struct{}

// WithRawReads returns ctx marked for block reads with a raw system call
// (disk.RawWholeReader): GetInto of a Dir on such an FS then reads a
// block file's data without entering the Go runtime's system-call state
// while the page cache holds it (its open, fstat and close, which can
// block, go through the runtime). The read keeps the goroutine's P for
// the copy: for a caller that nothing else waits for (a lone sequential
// reader's prefetch).
func WithRawReads(ctx context.Context) context.Context {
	return context.WithValue(ctx, rawReadsKey{}, true)
}

func rawReads(ctx context.Context) bool {
	v, _ := ctx.Value(rawReadsKey{}).(bool)
	return v
}
