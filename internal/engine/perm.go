package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Cred is the caller's identity, as AUTH_UNIX gives it.
type Cred struct {
	UID    uint32
	GID    uint32
	Groups []uint32
}

// RootCred is the superuser.
var RootCred = Cred{}

// Access bits, as in a permission triplet.
const (
	AccessRead  = 4
	AccessWrite = 2
	AccessExec  = 1
)

func (c Cred) inGroup(gid uint32) bool { return c.GID == gid || slices.Contains(c.Groups, gid) }

func (c Cred) isRoot() bool { return c.UID == 0 }

// granted returns which of the access bits c holds on n.
func (c Cred) granted(n *inode) uint32 { return c.grantedBy(n.typ, n.mode, n.uid, n.gid) }

// Granted returns which of the access bits (AccessRead, AccessWrite,
// AccessExec) c holds by the mode bits of a file with attributes a: root
// may read and write anything and execute what anyone may execute (or
// search any directory); others get the owner's, the group's or everyone's
// bits. It is the mode check alone, without the owner's right to read and
// write its open files that Read and Write add.
func (c Cred) Granted(a *Attr) uint32 { return c.grantedBy(a.Type, a.Mode, a.UID, a.GID) }

func (c Cred) grantedBy(typ FileType, mode, uid, gid uint32) uint32 {
	if c.isRoot() {
		g := uint32(AccessRead | AccessWrite)
		if typ == TypeDir || mode&0o111 != 0 {
			g |= AccessExec
		}
		return g
	}
	switch {
	case c.UID == uid:
		return (mode >> 6) & 7
	case c.inGroup(gid):
		return (mode >> 3) & 7
	default:
		return mode & 7
	}
}

// may reports whether c holds every bit of want on n.
func (c Cred) may(n *inode, want uint32) bool { return c.granted(n)&want == want }

// mayData is the check for READ and WRITE and truncation: like NFS servers,
// the owner may always read and write its own file (the client checked the
// mode when the file was opened).
func (c Cred) mayData(n *inode, want uint32) bool { return c.UID == n.uid || c.may(n, want) }

// CheckData is nil when a file of type t has data to read, write, truncate
// or commit (a regular file): a directory is ErrIsDir, any other type
// ErrInvalid.
func CheckData(t FileType) error {
	switch t {
	case TypeRegular:
		return nil
	case TypeDir:
		return ErrIsDir
	default:
		return ErrInvalid
	}
}

// mayWriteData is nil when c may write the data of n (a regular file).
func (c Cred) mayWriteData(n *inode) error {
	if err := CheckData(n.typ); err != nil {
		return err
	}
	if !c.mayData(n, AccessWrite) {
		return ErrPermission
	}
	return nil
}

// MayWrite is nil when cred may write the data of ino: the type and
// permission check of Write and of a truncating SetAttr, for a writer that
// buffers data and must refuse what the engine would refuse before it
// acknowledges the data.
func (fs *FS) MayWrite(_ context.Context, cred Cred, ino uint64) error {
	return fs.checkInode(ino, cred.mayWriteData)
}

// checkInode runs check on ino's current inode, read outside the
// committer (a check that changes nothing).
func (fs *FS) checkInode(ino uint64, check func(n *inode) error) error {
	if err := fs.ready(); err != nil {
		return err
	}
	v := fs.readView()
	defer v.close()
	n, err := fs.viewInode(v, ino)
	if err != nil {
		return err
	}
	return check(n)
}

func (c Cred) owns(n *inode) bool { return c.isRoot() || c.UID == n.uid }

// checkDirWrite: creating or removing entries needs write and search.
func (c Cred) checkDirWrite(dir *inode) error {
	if !c.may(dir, AccessWrite|AccessExec) {
		return ErrPermission
	}
	return nil
}

// checkSticky: in a sticky directory only the owner of the entry or of the
// directory (or root) may remove or rename it.
func (c Cred) checkSticky(dir, victim *inode) error {
	if dir.mode&ModeSticky == 0 || c.isRoot() || c.UID == dir.uid || c.UID == victim.uid {
		return nil
	}
	return ErrNotPermitted
}

// checkName validates a new or existing entry name.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty name: %w", ErrInvalid)
	case len(name) > MaxNameLen:
		return ErrNameTooLong
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("name %q: %w", name, ErrInvalid)
	}
	return nil
}

func isDot(name string) bool { return name == "." || name == ".." }
