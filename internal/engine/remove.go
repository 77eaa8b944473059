package engine

import (
	"context"
	"fmt"
)

// Remove removes a non-directory entry.
func (fs *FS) Remove(ctx context.Context, cred Cred, dir uint64, name string) (DirChange, error) {
	var dc DirChange
	err := fs.do(ctx, opMutate, "remove", func(tx *txn) error {
		dn, d, n, err := tx.prepareRemove(cred, dir, name, false)
		if err != nil {
			return err
		}
		dc.Before = dn.attr(dir)
		tx.removeEntry(dir, dn, name, d)
		if err := tx.unlink(d.ino, n); err != nil {
			return err
		}
		tx.putInode(dir, dn)
		tx.note([]uint64{dir, d.ino}, name)
		dc.After = dn.attr(dir)
		return nil
	})
	return dc, err
}

// prepareRemove checks the directory, the name and the caller's
// permission, and finds the entry to remove and its inode: a directory for
// Rmdir (isDir), anything else for Remove.
func (tx *txn) prepareRemove(cred Cred, dir uint64, name string, isDir bool) (*inode, dentry, *inode, error) {
	dn, err := tx.dir(dir)
	if err != nil {
		return nil, dentry{}, nil, err
	}
	switch {
	case name == "." || !isDir && name == "..":
		return nil, dentry{}, nil, ErrInvalid
	case name == "..":
		return nil, dentry{}, nil, ErrNotEmpty
	}
	if err := checkName(name); err != nil {
		return nil, dentry{}, nil, err
	}
	if err := cred.checkDirWrite(dn); err != nil {
		return nil, dentry{}, nil, err
	}
	d, found, err := tx.entry(dir, name)
	if err != nil {
		return nil, dentry{}, nil, err
	}
	if !found {
		return nil, dentry{}, nil, ErrNotFound
	}
	n, err := tx.inode(d.ino)
	if err != nil {
		return nil, dentry{}, nil, tx.danglingEntry(dir, name, d, err)
	}
	switch {
	case isDir && n.typ != TypeDir:
		return nil, dentry{}, nil, ErrNotDir
	case !isDir && n.typ == TypeDir:
		return nil, dentry{}, nil, ErrIsDir
	}
	if err := cred.checkSticky(dn, n); err != nil {
		return nil, dentry{}, nil, err
	}
	return dn, d, n, nil
}

// Rmdir removes an empty directory.
func (fs *FS) Rmdir(ctx context.Context, cred Cred, dir uint64, name string) (DirChange, error) {
	var dc DirChange
	err := fs.do(ctx, opMutate, "rmdir", func(tx *txn) error {
		dn, d, _, err := tx.prepareRemove(cred, dir, name, true)
		if err != nil {
			return err
		}
		empty, err := tx.dirEmpty(d.ino)
		if err != nil {
			return err
		}
		if !empty {
			return ErrNotEmpty
		}
		dc.Before = dn.attr(dir)
		tx.removeEntry(dir, dn, name, d)
		dn.nlink--
		tx.dropDir(d.ino)
		tx.putInode(dir, dn)
		tx.note([]uint64{dir, d.ino}, name)
		dc.After = dn.attr(dir)
		return nil
	})
	return dc, err
}

// Rename moves fromName in fromDir to toName in toDir with POSIX rules.
func (fs *FS) Rename(ctx context.Context, cred Cred, fromDir uint64, fromName string, toDir uint64, toName string) (from, to DirChange, err error) {
	err = fs.do(ctx, opMutate, "rename", func(tx *txn) error {
		if isDot(fromName) || isDot(toName) {
			return ErrInvalid
		}
		if err := checkName(fromName); err != nil {
			return err
		}
		if err := checkName(toName); err != nil {
			return err
		}
		fdn, err := tx.dir(fromDir)
		if err != nil {
			return err
		}
		tdn := fdn
		if toDir != fromDir {
			if tdn, err = tx.dir(toDir); err != nil {
				return err
			}
		}
		if err := cred.checkDirWrite(fdn); err != nil {
			return err
		}
		if err := cred.checkDirWrite(tdn); err != nil {
			return err
		}
		from.Before, to.Before = fdn.attr(fromDir), tdn.attr(toDir)
		src, found, err := tx.entry(fromDir, fromName)
		if err != nil {
			return err
		}
		if !found {
			return ErrNotFound
		}
		sn, err := tx.inode(src.ino)
		if err != nil {
			return tx.danglingEntry(fromDir, fromName, src, err)
		}
		if err := cred.checkSticky(fdn, sn); err != nil {
			return err
		}
		dst, dstFound, err := tx.entry(toDir, toName)
		if err != nil {
			return err
		}
		if fromDir == toDir && fromName == toName || dstFound && dst.ino == src.ino {
			// Same entry, or two links of one file: nothing to do.
			from.After, to.After = from.Before, to.Before
			return nil
		}
		if sn.typ == TypeDir && fromDir != toDir {
			if err := tx.checkNotAncestor(src.ino, toDir); err != nil {
				return err
			}
			// Moving a directory rewrites its "..".
			if !cred.may(sn, AccessWrite) {
				return ErrPermission
			}
		}
		if dstFound {
			dn, err := tx.inode(dst.ino)
			if err != nil {
				return tx.danglingEntry(toDir, toName, dst, err)
			}
			if err := cred.checkSticky(tdn, dn); err != nil {
				return err
			}
			switch {
			case sn.typ == TypeDir && dn.typ != TypeDir:
				return ErrNotDir
			case sn.typ != TypeDir && dn.typ == TypeDir:
				return ErrIsDir
			case dn.typ == TypeDir:
				empty, err := tx.dirEmpty(dst.ino)
				if err != nil {
					return err
				}
				if !empty {
					return ErrNotEmpty
				}
				tx.removeEntry(toDir, tdn, toName, dst)
				tdn.nlink--
				tx.dropDir(dst.ino)
			default:
				tx.removeEntry(toDir, tdn, toName, dst)
				if err := tx.unlink(dst.ino, dn); err != nil {
					return err
				}
			}
			tx.note([]uint64{dst.ino})
		}
		tx.removeEntry(fromDir, fdn, fromName, src)
		tx.addEntry(toDir, tdn, toName, src.ino, sn.typ)
		if sn.typ == TypeDir && fromDir != toDir {
			if tdn.nlink >= MaxLinks {
				return ErrTooManyLinks
			}
			fdn.nlink--
			tdn.nlink++
			sn.parent = toDir
		}
		sn.touch(tx.now, false)
		tx.putInode(src.ino, sn)
		tx.putInode(fromDir, fdn)
		if toDir != fromDir {
			tx.putInode(toDir, tdn)
		}
		tx.note([]uint64{fromDir, toDir, src.ino}, fromName, toName)
		from.After, to.After = fdn.attr(fromDir), tdn.attr(toDir)
		return nil
	})
	return from, to, err
}

// checkNotAncestor fails with ErrInvalid when dir is ino or lies below it.
func (tx *txn) checkNotAncestor(ino, dir uint64) error {
	for cur, depth := dir, 0; ; depth++ {
		if cur == ino {
			return fmt.Errorf("cannot move a directory into itself: %w", ErrInvalid)
		}
		if cur == RootIno {
			return nil
		}
		if depth > 1<<16 {
			return tx.fs.corrupt(fmt.Errorf("%w: directory parent loop at %d", ErrCorrupt, cur))
		}
		n, err := tx.dir(cur)
		if err != nil {
			return err
		}
		cur = n.parent
	}
}

// danglingEntry reports an entry whose inode is missing as corruption.
func (tx *txn) danglingEntry(dir uint64, name string, d dentry, err error) error {
	if err == ErrStale {
		return tx.fs.corrupt(fmt.Errorf("%w: entry %d/%q names missing inode %d", ErrCorrupt, dir, name, d.ino))
	}
	return err
}

// dropDir deletes the keys of an empty directory.
func (tx *txn) dropDir(ino uint64) {
	tx.del(attrKey(ino))
	tx.usage(0, -1)
}

// unlink drops one link of a non-directory; the last link releases the
// inode, its data inline when it is small and through the zombie queue in
// bounded batches when it is large or still holds the stale entries of a
// huge truncate (their 't' zombie key becomes a 'z': released with the
// rest, never left naming a missing inode).
func (tx *txn) unlink(ino uint64, n *inode) error {
	counted := n.counted()
	n.nlink--
	if n.nlink > 0 {
		n.touch(tx.now, false)
		tx.putInode(ino, n)
		return nil
	}
	tx.usage(-int64(counted), -1)
	small := n.size <= uint64(tx.fs.e.opts.BatchEntries)*uint64(tx.fs.blockSizeOr())
	if n.typ != TypeRegular || small && n.flags&flagTail == 0 {
		_, err := tx.releaseData(ino, n, 0, -1)
		if err != nil {
			return err
		}
		tx.del(attrKey(ino))
		return nil
	}
	// Large file: keep the attributes with nlink 0 (invisible) and let the
	// maintenance task release the data in bounded journaled batches.
	n.touch(tx.now, false)
	tx.putInode(ino, n)
	tx.set(zombieKey(ino), []byte{zombieUnlinked})
	tx.onCommit = append(tx.onCommit, func() { tx.fs.maint.kick() })
	return nil
}
