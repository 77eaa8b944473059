package engine

import (
	"encoding/binary"
	"fmt"

	"github.com/regionfs/regionfs/internal/engine/blocks"
)

// Top-level key prefixes (one byte). See doc.go for the whole keyspace.
const (
	pfxServer  = 's' // server-local registry: format, next fs id, fs records, names, domains
	pfxFS      = 'f' // replicated state of one file system: 'f' fsid(8) rel…
	pfxJournal = 'j' // change journal: 'j' fsid(8) seq(8)
	pfxLocal   = 'l' // local state of one file system: 'l' fsid(8) sub…
	pfxHolder  = 'h' // block holders: 'h' dom(8) id(33) fsid(8)
	pfxGC      = 'g' // block release queue: 'g' dom(8) id(33)
	pfxUndo    = 'u' // resync undo: 'u' fsid(8) rel… → value before the resync (undo.go)
)

// Server sub-keys.
const (
	srvFormat = 'v' // 's' 'v' → server format version
	srvNextFS = 'n' // 's' 'n' → next local fs id
	srvFS     = 'f' // 's' 'f' fsid(8) → fsRecord
	srvName   = 'N' // 's' 'N' name → fsid(8)
	srvDomain = 'd' // 's' 'd' dom(8) → domainRecord
	srvNextDm = 'm' // 's' 'm' → next domain id
)

// Relative (file-system-relative, replicated) key tags. Journal after-images
// carry these keys, never the local 'f' fsid prefix.
const (
	relMeta   = 'M' // 'M' name → file-system-wide state
	relInode  = 'I' // 'I' ino(8) sub… → everything about one inode, adjacent
	relRef    = 'R' // 'R' id(33) → reference count
	relZombie = 'Z' // 'Z' ino(8) → inode whose data is being released (zombieKind)
	relMerge  = 'X' // 'X' ino(8) idx(8) → ∅: block with pending extents to merge
)

// Zombie kinds (value of a 'Z' key).
const (
	zombieUnlinked = 'z' // last link removed: release everything, then the inode
	zombieTail     = 't' // huge truncate: release entries beyond EOF
)

// Inode sub-tags, after 'I' ino(8).
const (
	inoAttr   = 'A' // attributes
	inoBlock  = 'B' // 'B' idx(8) → block map entry
	inoDentry = 'D' // 'D' name → dentry (directories)
	inoExtent = 'E' // 'E' idx(8) seq(8) → pending extent
	inoInline = 'L' // inline data of a small file
	inoOrder  = 'O' // 'O' cookie(8) → readdir order entry (directories)
)

// Meta names, after 'M'.
const (
	metaSuper  = "super"  // superblock: format, block size, lineage, keys
	metaEpochs = "epochs" // epoch history
	metaNext   = "next"   // next inode number
	metaBoot   = "boot"   // boot counter for generation numbers
	metaUsage  = "usage"  // bytes and files in use
)

// Local sub-tags, after 'l' fsid(8).
const (
	locMode       = 'm' // mode record (primary/replica/fenced, epoch)
	locApplied    = 'a' // replica: applied (epoch, seq)
	locPin        = 'p' // 'p' name → pinned seq (journal retention and block GC)
	locJTrunc     = 't' // journal truncated below this seq
	locResyncKeys = 'k' // keys this side touched after a fork (resync)
	locClone      = 'c' // clone progress
	locUndo       = 'U' // resync undo head: the state before the resync (undo.go)
)

func be64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// fsPrefix returns 'f' fsid.
func fsPrefix(fsid uint64) []byte { return be64([]byte{pfxFS}, fsid) }

// absKey maps a relative key of fsid to its absolute key.
func absKey(fsid uint64, rel []byte) []byte {
	k := make([]byte, 0, 9+len(rel))
	k = append(k, pfxFS)
	k = be64(k, fsid)
	return append(k, rel...)
}

func metaKey(name string) []byte {
	return append(append(make([]byte, 0, 1+len(name)), relMeta), name...)
}

func inodePrefix(ino uint64) []byte { return inodeKey(ino, 0) }

// inodeKey returns 'i' ino with room for more bytes: one allocation per
// key (these are built for every operation).
func inodeKey(ino uint64, more int) []byte {
	return be64(append(make([]byte, 0, 9+more), relInode), ino)
}

func attrKey(ino uint64) []byte { return append(inodeKey(ino, 1), inoAttr) }

func blockKey(ino, idx uint64) []byte { return be64(append(inodeKey(ino, 9), inoBlock), idx) }

func dentryKey(dir uint64, name string) []byte {
	return append(append(inodeKey(dir, 1+len(name)), inoDentry), name...)
}

func extentPrefix(ino, idx uint64) []byte { return be64(append(inodeKey(ino, 17), inoExtent), idx) }

func extentKey(ino, idx, seq uint64) []byte { return be64(extentPrefix(ino, idx), seq) }

func inlineKey(ino uint64) []byte { return append(inodeKey(ino, 1), inoInline) }

func orderKey(dir, cookie uint64) []byte { return be64(append(inodeKey(dir, 9), inoOrder), cookie) }

func refKey(id blocks.ID) []byte { return append([]byte{relRef}, id[:]...) }

func zombieKey(ino uint64) []byte { return be64([]byte{relZombie}, ino) }

func mergeKey(ino, idx uint64) []byte { return be64(be64([]byte{relMerge}, ino), idx) }

// upper returns the smallest key greater than every key with prefix p.
func upper(p []byte) []byte {
	u := append([]byte(nil), p...)
	for i := len(u) - 1; i >= 0; i-- {
		if u[i] != 0xff {
			u[i]++
			return u[:i+1]
		}
	}
	return nil // all 0xff: unbounded
}

// Server keys.

func serverKey(sub byte) []byte { return []byte{pfxServer, sub} }

func fsRecordKey(fsid uint64) []byte { return be64([]byte{pfxServer, srvFS}, fsid) }

func fsNameKey(name string) []byte { return append([]byte{pfxServer, srvName}, name...) }

func domainKey(dom uint64) []byte { return be64([]byte{pfxServer, srvDomain}, dom) }

func journalPrefix(fsid uint64) []byte { return be64([]byte{pfxJournal}, fsid) }

func journalKey(fsid, seq uint64) []byte {
	return be64(be64(append(make([]byte, 0, 17), pfxJournal), fsid), seq)
}

func undoPrefix(fsid uint64) []byte { return be64([]byte{pfxUndo}, fsid) }

func undoKey(fsid uint64, rel []byte) []byte { return append(undoPrefix(fsid), rel...) }

func localPrefix(fsid uint64) []byte { return be64([]byte{pfxLocal}, fsid) }

func localKey(fsid uint64, sub byte, rest ...byte) []byte {
	return append(append(localPrefix(fsid), sub), rest...)
}

func holderPrefix(dom uint64, id blocks.ID) []byte {
	return append(be64([]byte{pfxHolder}, dom), id[:]...)
}

func holderKey(dom uint64, id blocks.ID, fsid uint64) []byte {
	return be64(holderPrefix(dom, id), fsid)
}

func gcPrefix(dom uint64) []byte { return be64([]byte{pfxGC}, dom) }

func gcKey(dom uint64, id blocks.ID) []byte { return append(gcPrefix(dom), id[:]...) }

// decodeU64 reads a big-endian uint64 value.
func decodeU64(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: %d-byte counter", ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func encodeU64(v uint64) []byte { return be64(make([]byte, 0, 8), v) }

// relKey is a parsed relative key.
type relKey struct {
	tag  byte   // relMeta, relInode, relRef, relZombie, relMerge
	meta string // relMeta
	ino  uint64 // relInode, relZombie, relMerge
	sub  byte   // relInode: inoAttr …
	idx  uint64 // block index (inoBlock, inoExtent, relMerge) or cookie (inoOrder)
	seq  uint64 // inoExtent
	name string // inoDentry
	id   blocks.ID
}

// parseRelKey parses a relative key; errors wrap ErrCorrupt.
func parseRelKey(k []byte) (relKey, error) {
	bad := func() (relKey, error) { return relKey{}, fmt.Errorf("%w: key %x", ErrCorrupt, k) }
	if len(k) == 0 {
		return bad()
	}
	r := relKey{tag: k[0]}
	switch k[0] {
	case relMeta:
		if len(k) < 2 {
			return bad()
		}
		r.meta = string(k[1:])
	case relRef:
		id, err := blocks.IDFromBytes(k[1:])
		if err != nil {
			return bad()
		}
		r.id = id
	case relZombie:
		if len(k) != 9 {
			return bad()
		}
		r.ino = binary.BigEndian.Uint64(k[1:])
	case relMerge:
		if len(k) != 17 {
			return bad()
		}
		r.ino, r.idx = binary.BigEndian.Uint64(k[1:]), binary.BigEndian.Uint64(k[9:])
	case relInode:
		if len(k) < 10 {
			return bad()
		}
		r.ino, r.sub = binary.BigEndian.Uint64(k[1:]), k[9]
		rest := k[10:]
		switch r.sub {
		case inoAttr, inoInline:
			if len(rest) != 0 {
				return bad()
			}
		case inoBlock, inoOrder:
			if len(rest) != 8 {
				return bad()
			}
			r.idx = binary.BigEndian.Uint64(rest)
		case inoExtent:
			if len(rest) != 16 {
				return bad()
			}
			r.idx, r.seq = binary.BigEndian.Uint64(rest), binary.BigEndian.Uint64(rest[8:])
		case inoDentry:
			if len(rest) == 0 || len(rest) > MaxNameLen {
				return bad()
			}
			r.name = string(rest)
		default:
			return bad()
		}
	default:
		return bad()
	}
	return r, nil
}

// encode is the inverse of parseRelKey.
func (r relKey) encode() []byte {
	switch r.tag {
	case relMeta:
		return metaKey(r.meta)
	case relRef:
		return refKey(r.id)
	case relZombie:
		return zombieKey(r.ino)
	case relMerge:
		return mergeKey(r.ino, r.idx)
	}
	switch r.sub {
	case inoAttr:
		return attrKey(r.ino)
	case inoInline:
		return inlineKey(r.ino)
	case inoBlock:
		return blockKey(r.ino, r.idx)
	case inoOrder:
		return orderKey(r.ino, r.idx)
	case inoExtent:
		return extentKey(r.ino, r.idx, r.seq)
	}
	return dentryKey(r.ino, r.name)
}
