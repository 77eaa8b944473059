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
func (fs *FS) Verify(ctx context.Context, readBlocks bool) error {
	s, err := fs.Snapshot(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if fs.superPub.Load() == nil {
		return nil // empty replica
	}
	var probs []error
	bad := func(f string, a ...any) { probs = append(probs, fmt.Errorf(f, a...)) }
	inodes := map[uint64]*inode{}
	links := map[uint64]uint32{} // dentries naming each inode
	subdirs := map[uint64]uint32{}
	refs := map[blocks.ID]uint64{}
	stored := map[blocks.ID]uint64{}
	zombies := map[uint64]byte{}
	type dirent struct {
		dir  uint64
		name string
		d    dentry
	}
	var dents []dirent
	orders := map[[2]uint64]orderEntry{}
	var usage usageRec
	it, err := s.Iter(nil, nil)
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := append([]byte(nil), it.Key()...)
		v, err := it.Value()
		if err != nil {
			bad("value of %x: %v", k, err)
			continue
		}
		rk, err := parseRelKey(k)
		if err != nil {
			bad("%v", err)
			continue
		}
		switch rk.tag {
		case relMeta:
			if rk.meta == metaUsage {
				if usage, err = decodeUsage(v, fs); err != nil {
					bad("usage: %v", err)
				}
			}
		case relInode:
			ino := rk.ino
			switch rk.sub {
			case inoAttr:
				n, err := decodeInode(v)
				if err != nil {
					bad("inode %d: %v", ino, err)
					continue
				}
				inodes[ino] = n
			case inoDentry:
				d, err := decodeDentry(v)
				if err != nil {
					bad("dentry %d/%q: %v", ino, rk.name, err)
					continue
				}
				dents = append(dents, dirent{ino, rk.name, d})
			case inoOrder:
				o, err := decodeOrder(v)
				if err != nil {
					bad("order entry %d/%d: %v", ino, rk.idx, err)
					continue
				}
				orders[[2]uint64{ino, rk.idx}] = o
			case inoBlock:
				be, err := decodeBlockEntry(v)
				if err != nil {
					bad("block entry %d: %v", ino, err)
					continue
				}
				refs[be.id]++
			case inoExtent:
				if _, _, err := decodeExtent(v); err != nil {
					bad("extent %d: %v", ino, err)
				}
			}
		case relRef:
			if stored[rk.id], err = decodeU64(v); err != nil {
				bad("reference count %s: %v", rk.id, err)
			}
		case relZombie:
			if len(v) != 1 {
				bad("zombie value of %d", rk.ino)
				continue
			}
			zombies[rk.ino] = v[0]
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	for _, de := range dents {
		dn := inodes[de.dir]
		if dn == nil || dn.typ != TypeDir {
			bad("entry %d/%q in a missing or non-directory inode", de.dir, de.name)
			continue
		}
		o, ok := orders[[2]uint64{de.dir, de.d.cookie}]
		if !ok || o.name != de.name || o.ino != de.d.ino || o.typ != de.d.typ {
			bad("entry %d/%q has no matching order entry at cookie %d", de.dir, de.name, de.d.cookie)
		}
		delete(orders, [2]uint64{de.dir, de.d.cookie})
		if de.d.cookie >= dn.nextCookie {
			bad("entry %d/%q cookie %d >= next cookie %d", de.dir, de.name, de.d.cookie, dn.nextCookie)
		}
		cn := inodes[de.d.ino]
		if cn == nil {
			bad("entry %d/%q names missing inode %d", de.dir, de.name, de.d.ino)
			continue
		}
		if cn.typ != de.d.typ {
			bad("entry %d/%q type %v, inode has %v", de.dir, de.name, de.d.typ, cn.typ)
		}
		links[de.d.ino]++
		if cn.typ == TypeDir {
			subdirs[de.dir]++
			if cn.parent != de.dir {
				bad("directory %d has parent %d but is named in %d", de.d.ino, cn.parent, de.dir)
			}
		}
	}
	for k := range orders {
		bad("order entry %d/%d without a directory entry", k[0], k[1])
	}
	var files, bytes uint64
	for ino, n := range inodes {
		z, isZombie := zombies[ino]
		switch {
		case n.typ == TypeDir:
			want := 2 + subdirs[ino]
			if n.nlink != want {
				bad("directory %d nlink %d, want %d", ino, n.nlink, want)
			}
			if ino != RootIno && links[ino] != 1 {
				bad("directory %d has %d entries naming it", ino, links[ino])
			}
		case n.nlink == 0:
			if !isZombie || z != zombieUnlinked {
				bad("unlinked inode %d without zombie key", ino)
			}
			continue
		default:
			if n.nlink != links[ino] {
				bad("inode %d nlink %d, %d entries name it", ino, n.nlink, links[ino])
			}
		}
		if n.flags&flagTail != 0 && (!isZombie || z != zombieTail) {
			bad("inode %d truncating without zombie key", ino)
		}
		files++
		if n.typ == TypeRegular {
			bytes += n.size
		}
	}
	for ino := range zombies {
		if inodes[ino] == nil {
			bad("zombie key for missing inode %d", ino)
		}
	}
	if usage.files != files || usage.bytes != bytes {
		bad("usage says %d files, %d bytes; found %d files, %d bytes", usage.files, usage.bytes, files, bytes)
	}
	for id, n := range refs {
		if stored[id] != n {
			bad("block %s: %d references, count says %d", id, n, stored[id])
		}
	}
	for id, n := range stored {
		if refs[id] == 0 {
			bad("block %s: count %d but no reference", id, n)
		}
		if _, err := s.snap.Get(holderKey(fs.dom.id, id, fs.id)); err != nil {
			if errors.Is(err, kv.ErrNotFound) {
				bad("block %s referenced without a holder key", id)
			} else {
				return err
			}
		}
		if readBlocks {
			if _, err := fs.dom.blockStore().Get(ctx, id); err != nil {
				bad("block %s: %v", id, err)
			}
		}
	}
	return errors.Join(probs...)
}
