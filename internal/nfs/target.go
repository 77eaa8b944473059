package nfs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// target is a file handle resolved to its export, file system and inode,
// with the credential the request runs with.
type target struct {
	x    *export
	fs   *engine.FS
	h    handle
	cred engine.Cred
}

// resolve authenticates a handle and finds the export that issued it. It
// does not read the inode (stat does).
func (r *request) resolve(fh proto.FH) (*target, error) {
	h, err := parseHandle(fh)
	if err != nil {
		return nil, err
	}
	set := r.s.exports.Load()
	cands := set.byKey[exportKey{h.lineage, h.tag}]
	if len(cands) == 0 {
		return nil, errStaleExport
	}
	addr := r.c.remote.Addr()
	var x *export
	for _, c := range cands {
		if c.allows(addr) {
			x = c
			break
		}
	}
	if x == nil {
		return nil, errNotAllowed
	}
	if x.RequireTLS && !r.c.tls {
		return nil, errTLSRequired
	}
	if err := verifyHandle(fh, x.FS.MACKey()); err != nil {
		return nil, err
	}
	if err := x.checkRoot(r.ctx, h.root); err != nil {
		return nil, err
	}
	return &target{x: x, fs: x.FS, h: h, cred: x.cred(r.who)}, nil
}

// checkRoot verifies that a handle was issued under the export's current
// root directory.
func (x *export) checkRoot(ctx context.Context, root uint64) error {
	x.mu.Lock()
	cur := x.root
	x.mu.Unlock()
	if cur == root {
		return nil
	}
	ino, err := x.rootIno(ctx, false)
	if err != nil {
		return err
	}
	if ino != root {
		return errStaleExport
	}
	return nil
}

// stat returns the inode's attributes (with buffered writes applied),
// ErrStale when its generation is not the handle's.
func (t *target) stat(ctx context.Context, s *Server) (engine.Attr, error) {
	a, err := t.fs.GetAttr(ctx, t.h.ino)
	if err != nil {
		return a, err
	}
	if a.Gen != t.h.gen {
		return engine.Attr{}, fmt.Errorf("inode %d generation %d, handle has %d: %w", t.h.ino, a.Gen, t.h.gen, engine.ErrStale)
	}
	s.wb.overlayAttr(t.fs, &a)
	return a, nil
}

// child returns the handle of inode a under the same export.
func (t *target) child(a engine.Attr) proto.FH {
	h := t.h
	h.ino, h.gen = a.Ino, a.Gen
	return h.encode(t.fs.MACKey())
}

// writable refuses mutations on a read-only export or file system.
func (t *target) writable() error {
	if t.x.readOnly() {
		return errROFS
	}
	return nil
}

// isRoot reports whether the target is the export's root directory.
func (t *target) isRoot() bool { return t.h.ino == t.h.root }

// checkName validates a name a client gives: like Linux, a name holding
// "/" or NUL, or an empty one, is refused with NFS3ERR_ACCES; the engine
// checks the length (NFS3ERR_NAMETOOLONG).
func checkName(name string) error {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("%w: %q", errBadName, name)
	}
	return nil
}

// checkNewName additionally refuses "." and ".." as names to create
// (NFS3ERR_EXIST, as Linux answers).
func checkNewName(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if name == "." || name == ".." {
		return engine.ErrExist
	}
	return nil
}

// maxParentDepth bounds the walk that keeps ".." inside an export's
// directory.
const maxParentDepth = 4096

// inside reports whether directory ino lies within the export's root (for
// exports of a sub-directory; always true for the root of the file
// system).
func (t *target) inside(ctx context.Context, ino uint64) (bool, error) {
	if t.h.root == engine.RootIno {
		return true, nil
	}
	for range maxParentDepth {
		if ino == t.h.root {
			return true, nil
		}
		if ino == engine.RootIno {
			return false, nil
		}
		a, err := t.fs.GetAttr(ctx, ino)
		if err != nil {
			return false, err
		}
		if a.Type != engine.TypeDir || a.Parent == ino {
			return false, nil
		}
		ino = a.Parent
	}
	return false, errors.New("nfs: directory tree too deep")
}

// fattr converts engine attributes to an fattr3.
func (x *export) fattr(a *engine.Attr) *proto.Attr {
	return &proto.Attr{
		Type:      proto.FileType(a.Type),
		Mode:      a.Mode & 0o7777,
		Nlink:     a.Nlink,
		UID:       a.UID,
		GID:       a.GID,
		Size:      a.Size,
		Used:      a.Used,
		RdevMajor: a.Major,
		RdevMinor: a.Minor,
		FSID:      x.fsid,
		FileID:    a.Ino,
		Atime:     proto.TimeOf(a.Atime),
		Mtime:     proto.TimeOf(a.Mtime),
		Ctime:     proto.TimeOf(a.Ctime),
	}
}

// wccAttr is the pre-operation part of wcc data.
func wccAttr(a *engine.Attr) *proto.WccAttr {
	return &proto.WccAttr{Size: a.Size, Mtime: proto.TimeOf(a.Mtime), Ctime: proto.TimeOf(a.Ctime)}
}

// wcc builds wcc data from a directory change.
func (x *export) wcc(d engine.DirChange) proto.Wcc {
	return proto.Wcc{Before: wccAttr(&d.Before), After: x.fattr(&d.After)}
}

// postOp returns the attributes of the target for a failure reply (nil
// when they cannot be read).
func (t *target) postOp(ctx context.Context, s *Server) *proto.Attr {
	if t == nil {
		return nil
	}
	a, err := t.stat(ctx, s)
	if err != nil {
		return nil
	}
	return t.x.fattr(&a)
}

// wccAfter returns wcc data with only post-operation attributes (for
// failures where nothing changed).
func (t *target) wccAfter(ctx context.Context, s *Server) proto.Wcc {
	return proto.Wcc{After: t.postOp(ctx, s)}
}

// sattr converts an sattr3 to the engine's form.
func sattr(a *proto.Sattr) engine.SetAttr {
	var sa engine.SetAttr
	if a.Mode != nil {
		m := *a.Mode & 0o7777 // like Linux, ignore file-type bits
		sa.Mode = &m
	}
	sa.UID, sa.GID, sa.Size = a.UID, a.GID, a.Size
	for _, p := range []struct {
		in  proto.SetTime
		out **engine.TimeSet
	}{{a.Atime, &sa.Atime}, {a.Mtime, &sa.Mtime}} {
		switch p.in.How {
		case proto.SetToServerTime:
			*p.out = &engine.TimeSet{ServerTime: true}
		case proto.SetToClientTime:
			*p.out = &engine.TimeSet{Time: p.in.Time.Go()}
		}
	}
	return sa
}
