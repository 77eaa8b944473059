package engine

import (
	"context"
	"errors"
	"time"
)

// SetAttr changes attributes. With guard, the change happens only if the
// inode's ctime equals *guard (ErrNotSync otherwise).
func (fs *FS) SetAttr(ctx context.Context, cred Cred, ino uint64, sa SetAttr, guard *time.Time) (before, after Attr, err error) {
	for {
		err = fs.do(ctx, opMutate, "setattr", func(tx *txn) error {
			n, err := tx.inode(ino)
			if err != nil {
				return err
			}
			before = n.attr(ino)
			if guard != nil && !before.Ctime.Equal(*guard) {
				return ErrNotSync
			}
			if err := tx.setattr(cred, ino, n, sa); err != nil {
				return err
			}
			tx.putInode(ino, n)
			tx.note([]uint64{ino})
			after = n.attr(ino)
			return nil
		})
		if !errors.Is(err, errTailPending) {
			return before, after, err
		}
		if err := fs.maint.clearTail(ctx, ino); err != nil {
			return Attr{}, Attr{}, err
		}
	}
}

// MaySetAttr is nil when cred may change the attributes of ino as sa
// asks: SetAttr's checks, without the change. A server that writes a
// file's buffered data before changing its attributes refuses a change
// with it first, so that a refused change changes nothing.
func (fs *FS) MaySetAttr(_ context.Context, cred Cred, ino uint64, sa SetAttr) error {
	return fs.checkInode(ino, func(n *inode) error { return cred.maySetAttr(n, sa) })
}

// maySetAttr is nil when cred may make every change sa asks of n, with
// POSIX permission rules, and the size is one a file may have (the first
// that fails, in the order setattr makes the changes: mode, owner, size,
// times).
func (c Cred) maySetAttr(n *inode, sa SetAttr) error {
	if sa.Mode != nil {
		if *sa.Mode&^modeAllBits != 0 {
			return ErrInvalid
		}
		if !c.owns(n) {
			return ErrNotPermitted
		}
	}
	if !c.isRoot() && (sa.UID != nil || sa.GID != nil) {
		// Only root gives a file away; the owner may change its group to
		// one of its own groups.
		if sa.UID != nil && *sa.UID != n.uid {
			return ErrNotPermitted
		}
		if sa.GID != nil && *sa.GID != n.gid && (c.UID != n.uid || !c.inGroup(*sa.GID)) {
			return ErrNotPermitted
		}
	}
	if sa.Size != nil {
		if err := c.mayWriteData(n); err != nil {
			return err
		}
		if *sa.Size > MaxFileSize {
			return ErrFileTooBig
		}
	}
	for _, t := range []*TimeSet{sa.Atime, sa.Mtime} {
		switch {
		case t == nil:
		case t.ServerTime:
			if !c.owns(n) && !c.may(n, AccessWrite) {
				return ErrPermission
			}
		case !c.owns(n):
			return ErrNotPermitted
		}
	}
	return nil
}

// setattr applies sa to n with POSIX permission rules (maySetAttr).
func (tx *txn) setattr(cred Cred, ino uint64, n *inode, sa SetAttr) error {
	if err := cred.maySetAttr(n, sa); err != nil {
		return err
	}
	changed := false
	if sa.UID != nil || sa.GID != nil {
		uid, gid := n.uid, n.gid
		if sa.UID != nil {
			uid = *sa.UID
		}
		if sa.GID != nil {
			gid = *sa.GID
		}
		if (uid != n.uid || gid != n.gid) && n.typ != TypeDir {
			// Like Linux, a change of owner clears setuid, and setgid when
			// the group can execute: the mode the file had. A mode given
			// in the same call is applied after it, as chown then chmod
			// (what cp -a does, and what the mount sends as one call):
			// the caller's explicit mode is kept, set-id bits included.
			n.killPriv()
		}
		n.uid, n.gid = uid, gid
		changed = true
	}
	if sa.Mode != nil {
		m := *sa.Mode
		if !cred.isRoot() && n.typ != TypeDir && m&ModeSetGID != 0 && !cred.inGroup(n.gid) {
			m &^= ModeSetGID
		}
		n.mode = m
		changed = true
	}
	if sa.Size != nil {
		if err := tx.truncate(ino, n, *sa.Size); err != nil {
			return err
		}
		if !cred.isRoot() && sa.Mode == nil {
			// A mode given with the size is the caller's choice: kept.
			n.killPriv()
		}
		changed = true
	}
	for _, t := range []struct {
		set *TimeSet
		dst *int64
	}{{sa.Atime, &n.atime}, {sa.Mtime, &n.mtime}} {
		switch {
		case t.set == nil:
			continue
		case t.set.ServerTime:
			*t.dst = tx.now.UnixNano()
		default:
			*t.dst = t.set.Time.UnixNano()
		}
		changed = true
	}
	if changed {
		n.touch(tx.now, false)
	}
	return nil
}

// killPriv clears setuid, and setgid when the group may execute, as Linux
// does when a file changes owner, or an unprivileged caller writes or
// truncates it (its FUSE client leaves that to the file system).
func (n *inode) killPriv() {
	n.mode &^= ModeSetUID
	if n.mode&0o010 != 0 {
		n.mode &^= ModeSetGID
	}
}
