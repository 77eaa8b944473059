package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/regionfs/regionfs/internal/engine/blocks"
)

// BadBlocks reads every block the snapshot references (its reference
// counts) from the block store, bypassing the block cache, and returns how
// many it read and the ids that are missing or do not verify. Online
// verification runs it on a replica: a block id is its content's hash, so
// a block that verifies here equals the source's.
func (s *Snapshot) BadBlocks(ctx context.Context) (int, []blocks.ID, error) {
	st := s.fs.dom.blockStore()
	if st == nil {
		return 0, nil, nil // nothing stored yet
	}
	it, err := s.Iter([]byte{relRef}, []byte{relRef + 1})
	if err != nil {
		return 0, nil, err
	}
	var ids []blocks.ID
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 1+blocks.IDSize {
			it.Close()
			return 0, nil, fmt.Errorf("%w: reference key of length %d in %s", ErrCorrupt, len(k), s.fs.name)
		}
		var id blocks.ID
		copy(id[:], k[1:])
		ids = append(ids, id)
	}
	err = it.Error()
	it.Close()
	if err != nil {
		return 0, nil, err
	}
	var bad []blocks.ID
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		_, err := st.Get(ctx, id)
		switch {
		case err == nil:
		case errors.Is(err, blocks.ErrCorrupt), errors.Is(err, blocks.ErrNotFound):
			s.fs.log.Error("verification found a bad block", "block", id.String(), "err", err)
			bad = append(bad, id)
		default:
			return 0, nil, fmt.Errorf("engine: read block %s of %s: %w", id, s.fs.name, err)
		}
	}
	return len(ids), bad, nil
}

// RepairBlock replaces the stored copy of block id, when it is missing or
// does not verify, with data (a good copy from a peer, checked against
// id). It reports whether it wrote anything.
func (rep *Replica) RepairBlock(ctx context.Context, id blocks.ID, data []byte) (bool, error) {
	fs := rep.fs
	d := fs.dom
	if d.blockHasher() == nil {
		return false, fmt.Errorf("engine: %s: block before superblock: %w", fs.name, ErrInvalid)
	}
	if d.blockHasher().Sum(data) != id {
		return false, fmt.Errorf("%w: repair block does not match its id %s", ErrCorrupt, id)
	}
	_, err := d.blockStore().Get(ctx, id)
	switch {
	case err == nil:
		return false, nil // good already
	case errors.Is(err, blocks.ErrCorrupt):
		if err := d.blockStore().Delete(ctx, id); err != nil {
			return false, blockWriteErr(err)
		}
	case errors.Is(err, blocks.ErrNotFound):
	default:
		return false, err
	}
	if err := fs.e.admit(int64(len(data))); err != nil {
		return false, err
	}
	if err := d.blockStore().Put(ctx, id, data); err != nil {
		return false, blockWriteErr(err)
	}
	if err := d.blockStore().Sync(ctx); err != nil {
		return false, blockWriteErr(err)
	}
	fs.log.Warn("block repaired from a peer", "block", id.String())
	return true, nil
}

// DescribeKey names a replicated (file-system-relative) key in words, for
// logs and reports: "inode 12 attributes", "inode 1 entry \"a.txt\"".
// nil is "the end".
func DescribeKey(k []byte) string {
	if k == nil {
		return "the end"
	}
	r, err := parseRelKey(k)
	if err != nil {
		return fmt.Sprintf("key %x", k)
	}
	switch r.tag {
	case relMeta:
		return "file-system record " + r.meta
	case relRef:
		return "reference count of block " + r.id.String()
	case relZombie:
		return fmt.Sprintf("release of inode %d", r.ino)
	case relMerge:
		return fmt.Sprintf("pending merge of inode %d block %d", r.ino, r.idx)
	}
	switch r.sub {
	case inoAttr:
		return fmt.Sprintf("inode %d attributes", r.ino)
	case inoInline:
		return fmt.Sprintf("inode %d inline data", r.ino)
	case inoBlock:
		return fmt.Sprintf("inode %d block %d", r.ino, r.idx)
	case inoOrder:
		return fmt.Sprintf("inode %d readdir cookie %d", r.ino, r.idx)
	case inoExtent:
		return fmt.Sprintf("inode %d extent %d/%d", r.ino, r.idx, r.seq)
	case inoDentry:
		return fmt.Sprintf("inode %d entry %q", r.ino, r.name)
	}
	return fmt.Sprintf("key %x", k)
}
