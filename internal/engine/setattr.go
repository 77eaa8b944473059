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

// setattr applies sa to n with POSIX permission rules.
func (tx *txn) setattr(cred Cred, ino uint64, n *inode, sa SetAttr) error {
	changed := false
	if sa.Mode != nil {
		m := *sa.Mode
		if m&^modeAllBits != 0 {
			return ErrInvalid
		}
		if !cred.owns(n) {
			return ErrNotPermitted
		}
		if !cred.isRoot() && n.typ != TypeDir && m&ModeSetGID != 0 && !cred.inGroup(n.gid) {
			m &^= ModeSetGID
		}
		n.mode = m
		changed = true
	}
	if sa.UID != nil || sa.GID != nil {
		uid, gid := n.uid, n.gid
		if sa.UID != nil {
			uid = *sa.UID
		}
		if sa.GID != nil {
			gid = *sa.GID
		}
		if !cred.isRoot() {
			// Only root gives a file away; the owner may change its group
			// to one of its own groups.
			if uid != n.uid {
				return ErrNotPermitted
			}
			if gid != n.gid && (cred.UID != n.uid || !cred.inGroup(gid)) {
				return ErrNotPermitted
			}
		}
		if (uid != n.uid || gid != n.gid) && n.typ != TypeDir {
			// Like Linux, a change of owner clears setuid, and setgid when
			// the group can execute.
			n.mode &^= ModeSetUID
			if n.mode&0o010 != 0 {
				n.mode &^= ModeSetGID
			}
		}
		n.uid, n.gid = uid, gid
		changed = true
	}
	if sa.Size != nil {
		if err := cred.mayWriteData(n); err != nil {
			return err
		}
		if err := tx.truncate(ino, n, *sa.Size); err != nil {
			return err
		}
		changed = true
	}
	for _, t := range []struct {
		set *TimeSet
		dst *int64
	}{{sa.Atime, &n.atime}, {sa.Mtime, &n.mtime}} {
		if t.set == nil {
			continue
		}
		if t.set.ServerTime {
			if !cred.owns(n) && !cred.may(n, AccessWrite) {
				return ErrPermission
			}
			*t.dst = tx.now.UnixNano()
		} else {
			if !cred.owns(n) {
				return ErrNotPermitted
			}
			*t.dst = t.set.Time.UnixNano()
		}
		changed = true
	}
	if changed {
		n.touch(tx.now, false)
	}
	return nil
}
