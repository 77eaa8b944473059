package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

func (fs *FS) viewInode(v *view, ino uint64) (*inode, error) { return fs.readInode(v.r, ino) }

// readInode is viewInode through any reader of the store.
func (fs *FS) readInode(r kv.Reader, ino uint64) (*inode, error) {
	b, err := r.Get(attrKey(ino))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, ErrStale
	}
	if err != nil {
		return nil, fs.corrupt(err)
	}
	n, err := decodeInode(b)
	if err != nil {
		return nil, fs.corrupt(fmt.Errorf("inode %d: %w", ino, err))
	}
	if n.nlink == 0 && n.typ != TypeDir {
		return nil, ErrStale
	}
	return n, nil
}

// ready refuses client reads while the file system has no consistent state
// (a replica before its first consistent point). Callers take their
// snapshot after it, so the snapshot holds at least the state it vouched for.
func (fs *FS) ready() error { return fs.readable() }

// GetAttr returns the attributes of an inode; ErrStale when it is gone.
func (fs *FS) GetAttr(_ context.Context, ino uint64) (Attr, error) {
	if err := fs.ready(); err != nil {
		return Attr{}, err
	}
	// One key needs no snapshot: a read of the store sees one committed
	// state as a snapshot's would, without opening and closing one
	// (each takes Pebble's DB mutex, which the committer's commits take
	// too: 2-4 % of the server's CPU in the create probe of issue 16,
	// whose every call reads the attributes of its file or directory).
	if fs.dom.keyError() == nil {
		if m := fs.mapOf(ino); m != nil {
			// A file being read: its inode as the store still holds it.
			return m.n.attr(ino), nil
		}
	}
	n, err := fs.viewInode(&view{r: fs.reader(fs.e.kv)}, ino)
	if err != nil {
		return Attr{}, err
	}
	return n.attr(ino), nil
}

// Lookup finds name in directory dir ("." and ".." included).
func (fs *FS) Lookup(_ context.Context, cred Cred, dir uint64, name string) (Attr, error) {
	if err := fs.ready(); err != nil {
		return Attr{}, err
	}
	v := fs.readView()
	defer v.close()
	dn, err := fs.viewInode(v, dir)
	if err != nil {
		return Attr{}, err
	}
	if dn.typ != TypeDir {
		return Attr{}, ErrNotDir
	}
	if !cred.may(dn, AccessExec) {
		return Attr{}, ErrPermission
	}
	switch name {
	case ".":
		return dn.attr(dir), nil
	case "..":
		pn, err := fs.viewInode(v, dn.parent)
		if err != nil {
			return Attr{}, err
		}
		return pn.attr(dn.parent), nil
	}
	if err := checkName(name); err != nil {
		return Attr{}, err
	}
	b, err := v.r.Get(dentryKey(dir, name))
	if errors.Is(err, kv.ErrNotFound) {
		return Attr{}, ErrNotFound
	}
	if err != nil {
		return Attr{}, fs.corrupt(err)
	}
	d, err := decodeDentry(b)
	if err != nil {
		return Attr{}, fs.corrupt(err)
	}
	n, err := fs.viewInode(v, d.ino)
	if err != nil {
		if errors.Is(err, ErrStale) {
			return Attr{}, fs.corrupt(fmt.Errorf("%w: entry %d/%q names missing inode %d", ErrCorrupt, dir, name, d.ino))
		}
		return Attr{}, err
	}
	return n.attr(d.ino), nil
}

// Access returns which of the wanted access bits (AccessRead, AccessWrite,
// AccessExec) cred holds on ino, with its attributes. Write is never
// granted on a read-only file system.
func (fs *FS) Access(_ context.Context, cred Cred, ino uint64, want uint32) (uint32, Attr, error) {
	if err := fs.ready(); err != nil {
		return 0, Attr{}, err
	}
	v := fs.readView()
	defer v.close()
	n, err := fs.viewInode(v, ino)
	if err != nil {
		return 0, Attr{}, err
	}
	g := cred.granted(n)
	if n.typ == TypeRegular && cred.UID == n.uid {
		g |= AccessRead | AccessWrite
	}
	if m, _ := fs.Mode(); m != ModePrimary {
		g &^= AccessWrite
	}
	return g & want, n.attr(ino), nil
}

// Readlink returns the target of a symbolic link.
func (fs *FS) Readlink(_ context.Context, ino uint64) (string, Attr, error) {
	if err := fs.ready(); err != nil {
		return "", Attr{}, err
	}
	v := fs.readView()
	defer v.close()
	n, err := fs.viewInode(v, ino)
	if err != nil {
		return "", Attr{}, err
	}
	if n.typ != TypeSymlink {
		return "", Attr{}, ErrInvalid
	}
	return n.target, n.attr(ino), nil
}

// Stat is what FSSTAT reports.
type Stat struct {
	TotalBytes, FreeBytes, AvailBytes uint64
	TotalFiles, FreeFiles, AvailFiles uint64
	UsedBytes, UsedFiles              uint64
}

// FSStat reports the file system's usage and the capacity left on the
// server's block disk.
func (fs *FS) FSStat(_ context.Context) (Stat, error) {
	u, err := fs.Usage()
	if err != nil {
		return Stat{}, err
	}
	du, err := fs.e.disk.Usage(".")
	if err != nil {
		return Stat{}, fmt.Errorf("%w: statfs: %w", ErrIO, err)
	}
	const files = 1 << 40
	return Stat{
		UsedBytes: u.Bytes, UsedFiles: u.Files,
		TotalBytes: u.Bytes + du.FreeBytes, FreeBytes: du.FreeBytes, AvailBytes: du.FreeBytes,
		TotalFiles: files, FreeFiles: files - u.Files, AvailFiles: files - u.Files,
	}, nil
}

// Usage returns the bytes and files the file system holds.
func (fs *FS) Usage() (Usage, error) {
	v := fs.readView()
	defer v.close()
	b, err := v.r.Get(metaKey(metaUsage))
	if errors.Is(err, kv.ErrNotFound) {
		return Usage{}, nil
	}
	if err != nil {
		return Usage{}, fs.corrupt(err)
	}
	u, err := decodeUsage(b, fs)
	if err != nil {
		return Usage{}, err
	}
	return Usage{Bytes: u.bytes, Files: u.files}, nil
}
