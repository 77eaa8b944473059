package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// Verify checks the internal consistency of a file system at a snapshot
// (an fsck): directory entries and readdir order entries agree, link
// counts and parents are right, reference counts equal the block map,
// usage counters equal the inodes, holders exist for referenced blocks,
// and, with readBlocks, every referenced block is present and verifies.
// It returns every problem found, joined.
//
// Each kind of replicated key has its collector (collectors, inode
// sub-keys by inodeCollectors), which decodes it and remembers what the
// checks need; each check then compares one relation across kinds.
func (rep *Replica) Verify(ctx context.Context, readBlocks bool) error {
	fs := rep.fs
	s, err := rep.Snapshot(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if fs.superPub.Load() == nil {
		return nil // empty replica
	}
	v := newVerifier(fs, s)
	if err := v.collect(ctx); err != nil {
		return err
	}
	v.checkEntries()
	v.checkInodes()
	v.checkHeld()
	v.checkUsage()
	if err := v.checkBlocks(ctx, readBlocks); err != nil {
		return err
	}
	return errors.Join(v.probs...)
}

// verifier is one run of Verify: what the collectors found, and the
// problems.
type verifier struct {
	fs    *FS
	s     *Snapshot
	probs []error

	inodes  map[uint64]*inode
	dents   []dirent
	orders  map[[2]uint64]orderEntry // (dir, cookie)
	refs    map[blocks.ID]uint64     // block map entries naming each block
	stored  map[blocks.ID]uint64     // reference counts
	zombies map[uint64]byte
	held    map[uint64]uint64 // what each inode's data keys hold (inode.held)
	usage   usageRec
}

type dirent struct {
	dir  uint64
	name string
	d    dentry
}

func newVerifier(fs *FS, s *Snapshot) *verifier {
	return &verifier{fs: fs, s: s, inodes: map[uint64]*inode{}, orders: map[[2]uint64]orderEntry{},
		refs: map[blocks.ID]uint64{}, stored: map[blocks.ID]uint64{}, zombies: map[uint64]byte{},
		held: map[uint64]uint64{}}
}

func (v *verifier) bad(f string, a ...any) { v.probs = append(v.probs, fmt.Errorf(f, a...)) }

// collectors decode one kind of replicated key (by its tag).
var collectors = map[byte]func(v *verifier, rk relKey, val []byte){
	relMeta:   (*verifier).meta,
	relInode:  (*verifier).inodeKey,
	relRef:    (*verifier).refCount,
	relZombie: (*verifier).zombie,
}

// inodeCollectors decode one kind of inode sub-key (by its sub-tag).
var inodeCollectors = map[byte]func(v *verifier, rk relKey, val []byte){
	inoAttr:   (*verifier).attr,
	inoDentry: (*verifier).dentry,
	inoOrder:  (*verifier).order,
	inoBlock:  (*verifier).blockEntry,
	inoExtent: (*verifier).extent,
	inoInline: (*verifier).inline,
}

// collect reads every replicated key of the snapshot into the verifier.
func (v *verifier) collect(ctx context.Context) error {
	it, err := v.s.Iter(nil, nil)
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := append([]byte(nil), it.Key()...)
		val, err := it.Value()
		if err != nil {
			v.bad("value of %x: %v", k, err)
			continue
		}
		rk, err := parseRelKey(k)
		if err != nil {
			v.bad("%v", err)
			continue
		}
		if c := collectors[rk.tag]; c != nil {
			c(v, rk, val)
		}
	}
	return it.Error()
}

func (v *verifier) meta(rk relKey, val []byte) {
	if rk.meta != metaUsage {
		return
	}
	var err error
	if v.usage, err = decodeUsage(val, v.fs); err != nil {
		v.bad("usage: %v", err)
	}
}

func (v *verifier) inodeKey(rk relKey, val []byte) {
	if c := inodeCollectors[rk.sub]; c != nil {
		c(v, rk, val)
	}
}

func (v *verifier) attr(rk relKey, val []byte) {
	n, err := decodeInode(val)
	if err != nil {
		v.bad("inode %d: %v", rk.ino, err)
		return
	}
	v.inodes[rk.ino] = n
}

func (v *verifier) dentry(rk relKey, val []byte) {
	d, err := decodeDentry(val)
	if err != nil {
		v.bad("dentry %d/%q: %v", rk.ino, rk.name, err)
		return
	}
	v.dents = append(v.dents, dirent{rk.ino, rk.name, d})
}

func (v *verifier) order(rk relKey, val []byte) {
	o, err := decodeOrder(val)
	if err != nil {
		v.bad("order entry %d/%d: %v", rk.ino, rk.idx, err)
		return
	}
	v.orders[[2]uint64{rk.ino, rk.idx}] = o
}

func (v *verifier) blockEntry(rk relKey, val []byte) {
	be, err := decodeBlockEntry(val)
	if err != nil {
		v.bad("block entry %d: %v", rk.ino, err)
		return
	}
	v.refs[be.id]++
	v.held[rk.ino] += pages(uint64(be.length))
}

func (v *verifier) extent(rk relKey, val []byte) {
	_, data, err := decodeExtent(val)
	if err != nil {
		v.bad("extent %d: %v", rk.ino, err)
		return
	}
	v.held[rk.ino] += pages(uint64(len(data)))
}

func (v *verifier) inline(rk relKey, val []byte) {
	v.held[rk.ino] += pages(uint64(len(val)))
}

func (v *verifier) refCount(rk relKey, val []byte) {
	var err error
	if v.stored[rk.id], err = decodeU64(val); err != nil {
		v.bad("reference count %s: %v", rk.id, err)
	}
}

func (v *verifier) zombie(rk relKey, val []byte) {
	if len(val) != 1 {
		v.bad("zombie value of %d", rk.ino)
		return
	}
	v.zombies[rk.ino] = val[0]
}

// checkEntries: every directory entry is in a directory, names an inode
// of its type, has the order entry of its cookie, and every order entry
// has its directory entry.
func (v *verifier) checkEntries() {
	for _, de := range v.dents {
		dn := v.inodes[de.dir]
		if dn == nil || dn.typ != TypeDir {
			v.bad("entry %d/%q in a missing or non-directory inode", de.dir, de.name)
			continue
		}
		o, ok := v.orders[[2]uint64{de.dir, de.d.cookie}]
		if !ok || o.name != de.name || o.ino != de.d.ino || o.typ != de.d.typ {
			v.bad("entry %d/%q has no matching order entry at cookie %d", de.dir, de.name, de.d.cookie)
		}
		delete(v.orders, [2]uint64{de.dir, de.d.cookie})
		if de.d.cookie >= dn.nextCookie {
			v.bad("entry %d/%q cookie %d >= next cookie %d", de.dir, de.name, de.d.cookie, dn.nextCookie)
		}
		cn := v.inodes[de.d.ino]
		if cn == nil {
			v.bad("entry %d/%q names missing inode %d", de.dir, de.name, de.d.ino)
			continue
		}
		if cn.typ != de.d.typ {
			v.bad("entry %d/%q type %v, inode has %v", de.dir, de.name, de.d.typ, cn.typ)
		}
		if cn.typ == TypeDir && cn.parent != de.dir {
			v.bad("directory %d has parent %d but is named in %d", de.d.ino, cn.parent, de.dir)
		}
	}
	for k := range v.orders {
		v.bad("order entry %d/%d without a directory entry", k[0], k[1])
	}
}

// checkInodes: link counts equal the entries naming an inode (directories:
// 2 plus their subdirectories), unlinked and truncating inodes have their
// zombie key, and every zombie key has its inode.
func (v *verifier) checkInodes() {
	links := map[uint64]uint32{}   // dentries naming each inode
	subdirs := map[uint64]uint32{} // subdirectories of each directory
	for _, de := range v.dents {
		if dn := v.inodes[de.dir]; dn == nil || dn.typ != TypeDir || v.inodes[de.d.ino] == nil {
			continue // reported by checkEntries
		}
		links[de.d.ino]++
		if v.inodes[de.d.ino].typ == TypeDir {
			subdirs[de.dir]++
		}
	}
	for ino, n := range v.inodes {
		z, isZombie := v.zombies[ino]
		switch {
		case n.typ == TypeDir:
			if want := 2 + subdirs[ino]; n.nlink != want {
				v.bad("directory %d nlink %d, want %d", ino, n.nlink, want)
			}
			if ino != RootIno && links[ino] != 1 {
				v.bad("directory %d has %d entries naming it", ino, links[ino])
			}
		case n.nlink == 0:
			if !isZombie || z != zombieUnlinked {
				v.bad("unlinked inode %d without zombie key", ino)
			}
			continue
		default:
			if n.nlink != links[ino] {
				v.bad("inode %d nlink %d, %d entries name it", ino, n.nlink, links[ino])
			}
		}
		if n.flags&flagTail != 0 && (!isZombie || z != zombieTail) {
			v.bad("inode %d truncating without zombie key", ino)
		}
	}
	for ino := range v.zombies {
		if v.inodes[ino] == nil {
			v.bad("zombie key for missing inode %d", ino)
		}
	}
}

// checkHeld: every inode that says what it holds holds that (its block
// entries, extents and inline data, counted as tx.hold counts them).
func (v *verifier) checkHeld() {
	for ino, n := range v.inodes {
		if n.heldOK && n.held != v.held[ino] {
			v.bad("inode %d says it holds %d bytes; its data keys hold %d", ino, n.held, v.held[ino])
		}
	}
}

// checkUsage: the usage counters equal the linked inodes and what the
// regular files count (inode.counted: used bytes, or the size of one
// whose record does not say what it holds).
func (v *verifier) checkUsage() {
	var files, bytes uint64
	for _, n := range v.inodes {
		if n.typ != TypeDir && n.nlink == 0 {
			continue
		}
		files++
		bytes += n.counted()
	}
	if v.usage.files != files || v.usage.bytes != bytes {
		v.bad("usage says %d files, %d bytes; found %d files, %d bytes", v.usage.files, v.usage.bytes, files, bytes)
	}
}

// checkBlocks: reference counts equal the block map entries, each
// referenced block has its holder key and, with readBlocks, is present
// and verifies.
func (v *verifier) checkBlocks(ctx context.Context, readBlocks bool) error {
	for id, n := range v.refs {
		if v.stored[id] != n {
			v.bad("block %s: %d references, count says %d", id, n, v.stored[id])
		}
	}
	for id, n := range v.stored {
		if v.refs[id] == 0 {
			v.bad("block %s: count %d but no reference", id, n)
		}
		if _, err := v.s.snap.Get(holderKey(v.fs.dom.id, id, v.fs.id)); err != nil {
			if !errors.Is(err, kv.ErrNotFound) {
				return err
			}
			v.bad("block %s referenced without a holder key", id)
		}
		if readBlocks {
			if _, err := v.fs.dom.blockStore().Get(ctx, id); err != nil {
				v.bad("block %s: %v", id, err)
			}
		}
	}
	return nil
}
