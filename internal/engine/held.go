package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// Held bytes: what a regular file's data takes in storage (inode.held),
// so that a sparse file reports and meters what it stores, not its size
// (EFS: "the metered data size of a regular file is the logical size of
// the file rounded to the next 4-KiB increment, except that it might be
// less for sparse files"). Each stored piece counts whole pages: a block
// entry its length (a block file stores its content up to its length,
// zeros included; a block of zeros is a hole, no entry), a pending extent
// its bytes, the inline data its bytes. Entries beyond EOF that a huge
// truncate leaves count until they are released.
//
// Every transaction that stores or drops a piece changes held with it,
// and the file system's usage counter by the change of the inode's
// counted bytes (inode.counted), in the same transaction: the count, the
// data and the journal record that ships both are one commit.

// hold changes n.held by a piece of add bytes stored and one of drop bytes
// dropped. An inode whose held is not known (a version 1 record) ignores
// it: it is recounted before its data changes (knowHeld), or it is an
// unlinked file being released, which counts for nothing.
func (n *inode) hold(add, drop uint64) {
	if !n.heldOK {
		return
	}
	n.held = n.held + pages(add) - min(pages(drop), n.held+pages(add))
}

// knowHeld makes n's held known before a transaction changes its data: a
// version 1 record is recounted from the inode's data keys (one bounded
// range scan of its block entries and extents, once per file), and the
// usage counter moves from the file's size, its share while held was not
// known, to its used bytes.
func (tx *txn) knowHeld(ino uint64, n *inode) error {
	if n.heldOK || n.typ != TypeRegular {
		return nil
	}
	held, err := recountHeld(tx.ov, ino)
	if err != nil {
		return tx.fs.corrupt(err)
	}
	before := n.counted()
	n.held, n.heldOK = held, true
	tx.usage(int64(n.counted())-int64(before), 0)
	return nil
}

// counting runs f, which changes n's data or size, and moves the usage
// counter by the change of n's counted bytes.
func (tx *txn) counting(ino uint64, n *inode, f func() error) error {
	if err := tx.knowHeld(ino, n); err != nil {
		return err
	}
	before := n.counted()
	if err := f(); err != nil {
		return err
	}
	tx.usage(int64(n.counted())-int64(before), 0)
	return nil
}

// recountHeld counts what inode ino's data keys hold (held's definition).
func recountHeld(r kv.Reader, ino uint64) (uint64, error) {
	var held uint64
	v, err := r.Get(inlineKey(ino))
	switch {
	case err == nil:
		held += pages(uint64(len(v)))
	case !errors.Is(err, kv.ErrNotFound):
		return 0, err
	}
	for _, tag := range []byte{inoBlock, inoExtent} {
		p := append(inodePrefix(ino), tag)
		it, err := r.NewIter(p, upper(p))
		if err != nil {
			return 0, err
		}
		for ok := it.First(); ok; ok = it.Next() {
			v, err := it.Value()
			if err != nil {
				it.Close()
				return 0, err
			}
			n, err := pieceBytes(tag, v)
			if err != nil {
				it.Close()
				return 0, err
			}
			held += pages(n)
		}
		if err := it.Close(); err != nil {
			return 0, err
		}
	}
	return held, nil
}

// pieceBytes is the bytes a block entry or extent value stores.
func pieceBytes(tag byte, v []byte) (uint64, error) {
	if tag == inoBlock {
		be, err := decodeBlockEntry(v)
		return uint64(be.length), err
	}
	_, data, err := decodeExtent(v)
	return uint64(len(data)), err
}

// heldSweepBatch bounds the inodes one sweep transaction recounts.
const heldSweepBatch = 64

// sweepHeld recounts, in journaled transactions of a few inodes, every
// regular file whose record does not say what it holds (written before
// held existed), so that an upgraded store reports what its sparse files
// hold without waiting for their next write. It walks the attribute keys
// with one seek per inode (block entries and extents are skipped, not
// read) and ends when a pass finds none left; a crash midway leaves every
// converted inode and the counter consistent, and the next open goes on.
func (m *maintenance) sweepHeld(ctx context.Context) error {
	fs := m.fs
	var next uint64 // first inode number of the next pass
	for {
		inos, more, err := fs.heldPending(next)
		if err != nil {
			return err
		}
		if len(inos) > 0 {
			err := fs.do(ctx, opMutate, "recount held", func(tx *txn) error {
				for _, ino := range inos {
					if err := tx.recountInode(ino); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			next = inos[len(inos)-1] + 1
		}
		if !more {
			return nil
		}
	}
}

// heldPending returns up to heldSweepBatch regular files from inode from
// on whose held is not known, and whether any may remain beyond them.
func (fs *FS) heldPending(from uint64) (inos []uint64, more bool, err error) {
	// Keys only, no block is read: no read view (its read epoch would
	// hold the collector back for as long as the walk takes).
	p := []byte{relInode}
	it, err := fs.reader(fs.e.kv).NewIter(p, upper(p))
	if err != nil {
		return nil, false, err
	}
	defer it.Close()
	for ok := it.SeekGE(attrKey(from)); ok; {
		k := it.Key()
		if len(k) < 10 {
			return nil, false, fs.corrupt(fmt.Errorf("%w: key %x", ErrCorrupt, k))
		}
		ino := binary.BigEndian.Uint64(k[1:])
		if k[9] == inoAttr {
			val, err := it.Value()
			if err != nil {
				return nil, false, fs.corrupt(err)
			}
			if len(val) > 1 && val[0] == inodeVersion1 && FileType(val[1]) == TypeRegular {
				if len(inos) == heldSweepBatch {
					return inos, true, nil
				}
				inos = append(inos, ino)
			}
		}
		if ino == ^uint64(0) {
			break
		}
		ok = it.SeekGE(attrKey(ino + 1))
	}
	return inos, false, it.Error()
}

// recountInode makes inode ino's held known (a sweep step): nothing when
// it is gone or known meanwhile.
func (tx *txn) recountInode(ino uint64) error {
	v, ok, err := tx.get(attrKey(ino))
	if err != nil || !ok {
		return err
	}
	n, err := decodeInode(v)
	if err != nil {
		return tx.fs.corrupt(fmt.Errorf("inode %d: %w", ino, err))
	}
	if n.heldOK || n.typ != TypeRegular {
		return nil
	}
	if err := tx.knowHeld(ino, n); err != nil {
		return err
	}
	tx.putInode(ino, n)
	tx.note([]uint64{ino})
	return nil
}
