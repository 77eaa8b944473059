package engine

import (
	"encoding/binary"
	"fmt"
	"time"
)

// inode reads an inode for modification; ErrStale when it does not exist
// (or is an unlinked zombie).
func (tx *txn) inode(ino uint64) (*inode, error) {
	v, ok, err := tx.get(attrKey(ino))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrStale
	}
	n, err := decodeInode(v)
	if err != nil {
		return nil, tx.fs.corrupt(fmt.Errorf("inode %d: %w", ino, err))
	}
	if n.nlink == 0 && n.typ != TypeDir {
		return nil, ErrStale
	}
	return n, nil
}

func (tx *txn) dir(ino uint64) (*inode, error) {
	n, err := tx.inode(ino)
	if err != nil {
		return nil, err
	}
	if n.typ != TypeDir {
		return nil, ErrNotDir
	}
	return n, nil
}

func (tx *txn) putInode(ino uint64, n *inode) { tx.set(attrKey(ino), n.encode()) }

func (tx *txn) entry(dir uint64, name string) (dentry, bool, error) {
	v, ok, err := tx.get(dentryKey(dir, name))
	if err != nil || !ok {
		return dentry{}, false, err
	}
	d, err := decodeDentry(v)
	if err != nil {
		return dentry{}, false, tx.fs.corrupt(fmt.Errorf("dentry %d/%q: %w", dir, name, err))
	}
	return d, true, nil
}

// addEntry links child under dir (whose inode the caller writes back).
func (tx *txn) addEntry(dir uint64, dn *inode, name string, child uint64, typ FileType) {
	c := dn.nextCookie
	if c == 0 {
		c = 1
	}
	dn.nextCookie = c + 1
	tx.set(dentryKey(dir, name), dentry{ino: child, typ: typ, cookie: c}.encode())
	tx.set(orderKey(dir, c), orderEntry{ino: child, typ: typ, name: name}.encode())
	dn.touch(tx.now, true)
}

func (tx *txn) removeEntry(dir uint64, dn *inode, name string, d dentry) {
	tx.del(dentryKey(dir, name))
	tx.del(orderKey(dir, d.cookie))
	dn.touch(tx.now, true)
}

// touch sets ctime, and mtime when modified, to now. A changed inode is
// no longer the fresh result of an exclusive create: its verifier no
// longer answers a retransmission of that create (which Linux's nfsd,
// keeping the verifier in the times, also refuses once they change).
func (n *inode) touch(now time.Time, modified bool) {
	ns := now.UnixNano()
	n.ctime = ns
	n.flags &^= flagExclVer
	if modified {
		n.mtime = ns
	}
}

func (tx *txn) allocIno() (uint64, error) {
	if tx.next == 0 {
		tx.next = tx.fs.meta.next
	}
	if tx.next == 0 {
		v, ok, err := tx.get(metaKey(metaNext))
		if err != nil {
			return 0, err
		}
		if !ok || len(v) != 8 {
			return 0, tx.fs.corrupt(fmt.Errorf("%w: next inode counter", ErrCorrupt))
		}
		tx.next = binary.BigEndian.Uint64(v)
	}
	ino := tx.next
	tx.next++
	tx.set(metaKey(metaNext), encodeU64(tx.next))
	return ino, nil
}

// dirEmpty reports whether a directory has no entries.
func (tx *txn) dirEmpty(dir uint64) (bool, error) {
	p := append(inodePrefix(dir), inoDentry)
	it, err := tx.iter(p, upper(p))
	if err != nil {
		return false, err
	}
	defer it.Close()
	if it.First() {
		return false, nil
	}
	return true, it.Error()
}

// newInode builds the inode of a new object created by cred in dn.
func (tx *txn) newInode(cred Cred, dn *inode, typ FileType, mode uint32) (*inode, error) {
	gen, err := tx.newGen()
	if err != nil {
		return nil, err
	}
	now := tx.now.UnixNano()
	n := &inode{typ: typ, mode: mode & modeAllBits, uid: cred.UID, gid: cred.GID, nlink: 1, gen: gen, atime: now, mtime: now, ctime: now, heldOK: true}
	if dn.mode&ModeSetGID != 0 {
		n.gid = dn.gid
		if typ == TypeDir {
			n.mode |= ModeSetGID
		}
	} else if typ != TypeDir && !cred.isRoot() && n.mode&ModeSetGID != 0 && !cred.inGroup(n.gid) {
		n.mode &^= ModeSetGID
	}
	return n, nil
}
