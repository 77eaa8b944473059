package fuse

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// node is one file, directory or other object, named by its NFS handle.
type node struct {
	fs.Inode
	f  *FS
	fh proto.FH

	mu sync.Mutex // guards the fields below and the data state (file.go)
	// kids are the entries of the last READDIRPLUS, answering lookups
	// until kidsUntil.
	kids      map[string]kid
	kidsUntil time.Time
	// kidsGen counts forget calls: a READDIRPLUS that went out before
	// one (a change in the directory) does not answer lookups.
	kidsGen uint64
	// seen is the change attributes (size, mtime, ctime) the page cache
	// was filled under (close-to-open revalidation).
	seen    changeAttrs
	hasSeen bool
	// fa is a regular file's attributes as the server last reported
	// them, at faAt (attrs.go).
	fa   proto.Attr
	faAt time.Time
	// faUntil is until when a GETATTR of the file may be answered from
	// fa; faGen counts this mount's changes to the file (attrs.go:
	// cachedFileAttr, attrsChanged).
	faUntil time.Time
	faGen   uint64
	w       wstate
	ra      readahead
	d       dirCache
	// opens counts open file handles; an open file that is unlinked or
	// renamed over is renamed to silly in sillyDir instead (as NFS
	// clients do) and removed at its last close.
	opens    int
	silly    string
	sillyDir *node
	// removing counts the unlinks and renames over the file that found
	// it closed and are on their way to the server; an open waits for
	// them (removed is closed when the last is done), so that it is
	// either counted before they look or finds the file gone.
	removing int
	removed  chan struct{}
	// dir and name are where the file was last looked up, made,
	// unlinked or renamed over by this mount: an open of the file once
	// it is gone, and out of the tree, opens the one the name leads to
	// (openNamed).
	dir  *node
	name string
	// replacing are a directory's names that a rename over them is
	// replacing, after moving their open file aside (replaceStart).
	replacing map[string]chan struct{}
	// unsynced: the file was made by a create answered before it was
	// durable (REGIONFS_CREATE_VISIBLE) and no durable change of it has
	// been answered since (settleCreate).
	unsynced bool
}

type kid struct {
	fh   proto.FH
	attr proto.Attr
}

type changeAttrs struct {
	size         uint64
	mtime, ctime proto.Time
}

func changeOf(a *proto.Attr) changeAttrs {
	return changeAttrs{size: a.Size, mtime: a.Mtime, ctime: a.Ctime}
}

var (
	_ fs.NodeLookuper   = (*node)(nil)
	_ fs.NodeGetattrer  = (*node)(nil)
	_ fs.NodeSetattrer  = (*node)(nil)
	_ fs.NodeReaddirer  = (*node)(nil)
	_ fs.NodeMkdirer    = (*node)(nil)
	_ fs.NodeMknoder    = (*node)(nil)
	_ fs.NodeCreater    = (*node)(nil)
	_ fs.NodeSymlinker  = (*node)(nil)
	_ fs.NodeReadlinker = (*node)(nil)
	_ fs.NodeUnlinker   = (*node)(nil)
	_ fs.NodeRmdirer    = (*node)(nil)
	_ fs.NodeRenamer    = (*node)(nil)
	_ fs.NodeLinker     = (*node)(nil)
	_ fs.NodeStatfser   = (*node)(nil)
)

func (n *node) path() string {
	if p := n.Path(nil); p != "" {
		return "/" + p
	}
	return "/"
}

// child returns the node of a handle under name (the known one when the
// name still leads to it, so that its buffered writes count), and fills
// out.
func (n *node) child(ctx context.Context, name string, fh proto.FH, a *proto.Attr, out *gofuse.EntryOut) *fs.Inode {
	sa := stableAttr(fh, a)
	ch := n.GetChild(name)
	if ch == nil || ch.StableAttr() != sa {
		ch = n.NewInode(ctx, &node{f: n.f, fh: append(proto.FH(nil), fh...)}, sa)
	}
	fillAttr(a, &out.Attr)
	if cn, ok := ch.Operations().(*node); ok {
		cn.mu.Lock()
		cn.dir, cn.name = n, name
		cn.mu.Unlock()
		cn.fileAttr(a)
		cn.adjustSize(&out.Attr)
	}
	out.SetEntryTimeout(n.f.o.EntryTimeout)
	out.SetAttrTimeout(n.f.o.AttrTimeout)
	return ch
}

// forget drops the cached entries of a directory (after a change in it).
func (n *node) forget() {
	n.mu.Lock()
	n.kids = nil
	n.kidsGen++
	n.mu.Unlock()
}

// staleName drops what the mount knows of the name leading to a file the
// server no longer has (NFS3ERR_STALE): the kernel, which fails an open
// with ESTALE by looking the path up again once, then finds the file the
// name leads to now on the server, not the cached one again (an entry of
// the directory's last READDIRPLUS answered that lookup: the retried open
// failed the same way).
func (n *node) staleName() {
	if _, p := n.Parent(); p != nil {
		if pn, ok := p.Operations().(*node); ok {
			pn.forget()
		}
	}
}

func (n *node) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n.mu.Lock()
	k, ok := n.kids[name]
	if ok && time.Now().After(n.kidsUntil) {
		n.kids, ok = nil, false
	}
	n.mu.Unlock()
	if ok {
		return n.child(ctx, name, k.fh, &k.attr, out), 0
	}
	if n.knownAbsent(name) {
		return nil, syscall.ENOENT
	}
	res, err := n.f.client(ctx).Lookup(ctx, n.fh, name)
	n.setAttr(res.DirAttr)
	n.lookedUp(name, err)
	if err != nil {
		return nil, errno(err)
	}
	if res.Attr == nil {
		ga, err := n.f.client(ctx).GetAttr(ctx, res.FH)
		if err != nil {
			return nil, errno(err)
		}
		res.Attr = &ga.Attr
	}
	return n.child(ctx, name, res.FH, res.Attr, out), 0
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *gofuse.AttrOut) syscall.Errno {
	if t := n.served(f); t != n {
		return t.Getattr(ctx, f, out)
	}
	if n.cachedAttr(out) || n.cachedFileAttr(out) {
		return 0
	}
	gen, clean := n.attrGen()
	res, err := n.f.client(ctx).GetAttr(ctx, n.fh)
	if err != nil {
		if errors.Is(err, proto.ErrStale) && n.goneAttr(ctx, out) {
			return 0
		}
		return errno(err)
	}
	n.setAttr(&res.Attr)
	n.fileAttr(&res.Attr)
	n.keepFileAttr(&res.Attr, gen, clean)
	fillAttr(&res.Attr, &out.Attr)
	n.adjustSize(&out.Attr)
	out.SetTimeout(n.f.o.AttrTimeout)
	return 0
}

// goneAttr answers a GETATTR of a regular file the server no longer has
// while its name leads to another: with the attributes last seen, as if
// asked just before the file was renamed over, hardly cached. The
// kernel asks before an open when its attributes have expired (the
// permission check), and failed the open with ESTALE, and its one retry
// too when the file it looked up again was renamed over before that
// question (another client renaming files over the name); the open then
// opens the file the name leads to (openNamed). The kernel is told to
// look the name up again. A name leading nowhere is ESTALE: the kernel's
// retry finds it gone (ENOENT).
func (n *node) goneAttr(ctx context.Context, out *gofuse.AttrOut) bool {
	n.mu.Lock()
	a, at := n.fa, n.faAt
	n.mu.Unlock()
	dir, name := n.lastName()
	if at.IsZero() || dir == nil || a.Nlink > 1 {
		return false
	}
	dir.forget()
	lr, err := n.f.client(ctx).Lookup(ctx, dir.fh, name)
	if errors.Is(err, proto.ErrNoEnt) && dir.awaitReplace(ctx, name) {
		lr, err = n.f.client(ctx).Lookup(ctx, dir.fh, name)
	}
	dir.setAttr(lr.DirAttr)
	if err != nil || lr.Attr != nil && lr.Attr.Type != proto.TypeReg {
		return false
	}
	fillAttr(&a, &out.Attr)
	out.SetTimeout(noCache)
	n.f.notify.entry(dir, name)
	return true
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *gofuse.SetAttrIn, out *gofuse.AttrOut) syscall.Errno {
	if t := n.served(f); t != n {
		return t.Setattr(ctx, f, in, out)
	}
	n.attrsChanged()
	var sa proto.Sattr
	if m, ok := in.GetMode(); ok {
		m &= 0o7777
		sa.Mode = &m
	}
	if u, ok := in.GetUID(); ok {
		sa.UID = &u
	}
	if g, ok := in.GetGID(); ok {
		sa.GID = &g
	}
	size, hasSize := in.GetSize()
	if hasSize {
		sa.Size = &size
	}
	if t, ok := in.GetATime(); ok {
		if sa.Atime, ok = setTime(t, in.Valid&gofuse.FATTR_ATIME_NOW != 0); !ok {
			return syscall.EINVAL
		}
	}
	if t, ok := in.GetMTime(); ok {
		if sa.Mtime, ok = setTime(t, in.Valid&gofuse.FATTR_MTIME_NOW != 0); !ok {
			return syscall.EINVAL
		}
	}
	if n.deferAttrs(ctx, sa, out) {
		return 0
	}
	// Buffered writes go first: they would otherwise land after the new
	// size or times; so does a change deferred until them (attrs.go).
	if errno := n.writeBack(ctx); errno != 0 {
		return errno
	}
	if errno := n.sendAttrs(ctx); errno != 0 {
		return errno
	}
	res, err := n.f.client(ctx).SetAttr(ctx, n.fh, sa, nil)
	n.setAttr(res.Wcc.After)
	n.fileAttr(res.Wcc.After)
	if err != nil {
		return errno(err)
	}
	if hasSize {
		n.truncated(size)
	}
	if a := res.Wcc.After; a != nil {
		fillAttr(a, &out.Attr)
		n.adjustSize(&out.Attr)
		out.SetTimeout(n.f.o.AttrTimeout)
		return 0
	}
	return n.Getattr(ctx, nil, out)
}

// setTime is a SETATTR's time: the server's clock, or t; false when an
// nfstime3 cannot hold t (before 1970 or after 2106: proto.TimeExact),
// which Setattr refuses with EINVAL instead of storing another time.
func setTime(t time.Time, now bool) (proto.SetTime, bool) {
	if now {
		return proto.SetTime{How: proto.SetToServerTime}, true
	}
	x, ok := proto.TimeExact(t)
	return proto.SetTime{How: proto.SetToClientTime, Time: x}, ok
}

func (n *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	list, e := n.readdir(ctx)
	if e != 0 {
		return nil, e
	}
	return &dirStream{n: n, ents: list}, 0
}

// dirStream is an open directory's entries, read again when it is
// rewound (rewinddir: the stream then shows the directory as it is, as
// after opendir).
type dirStream struct {
	n    *node
	ents []gofuse.DirEntry
	next int
}

var _ fs.FileSeekdirer = (*dirStream)(nil)

func (d *dirStream) HasNext() bool { return d.next < len(d.ents) }

func (d *dirStream) Next() (gofuse.DirEntry, syscall.Errno) {
	e := d.ents[d.next]
	d.next++
	e.Off = uint64(d.next)
	return e, 0
}

func (d *dirStream) Close() {}

// Seekdir moves to the entry after the one whose offset is off (telldir
// and seekdir), or to the start of a new reading of the directory.
func (d *dirStream) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if off == 0 {
		ents, e := d.n.readdir(ctx)
		if e != 0 {
			return e
		}
		d.ents = ents
	}
	if off > uint64(len(d.ents)) {
		return syscall.EINVAL
	}
	d.next = int(off)
	return 0
}

// readdir reads the directory's entries, "." and ".." first.
func (n *node) readdir(ctx context.Context) ([]gofuse.DirEntry, syscall.Errno) {
	n.mu.Lock()
	gen := n.kidsGen
	n.mu.Unlock()
	ents, err := n.f.client(ctx).ReadDirAll(ctx, n.fh)
	if err != nil {
		return nil, errno(err)
	}
	// "." and ".." come first, as from a local directory (Connectathon's
	// test6 and tools that count entries expect them): with the server's
	// file ids when it lists them, else this directory's and its parent's.
	dot := gofuse.DirEntry{Name: ".", Ino: n.StableAttr().Ino, Mode: syscall.S_IFDIR}
	dotdot := gofuse.DirEntry{Name: "..", Ino: dot.Ino, Mode: syscall.S_IFDIR}
	if _, p := n.Parent(); p != nil {
		dotdot.Ino = p.StableAttr().Ino
	}
	list := make([]gofuse.DirEntry, 2, len(ents)+2)
	kids := make(map[string]kid, len(ents))
	for _, e := range ents {
		switch e.Name {
		case ".":
			dot.Ino = e.FileID
			continue
		case "..":
			dotdot.Ino = e.FileID
			continue
		}
		mode := uint32(syscall.S_IFREG)
		if e.Attr != nil {
			mode = typeBits(e.Attr.Type)
			if e.FH != nil {
				kids[e.Name] = kid{fh: e.FH, attr: *e.Attr}
			}
		}
		list = append(list, gofuse.DirEntry{Name: e.Name, Ino: e.FileID, Mode: mode})
	}
	list[0], list[1] = dot, dotdot
	n.mu.Lock()
	if n.kidsGen == gen { // else the directory changed meanwhile
		n.kids, n.kidsUntil = kids, time.Now().Add(n.f.o.EntryTimeout)
	}
	n.mu.Unlock()
	return list, 0
}

// created makes the node of a name an operation created in the
// directory (err: the operation's failure, returned as is).
func (n *node) created(ctx context.Context, res *proto.CreateRes, err error, name string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n.forget()
	if err != nil {
		n.dirChanged(res.DirWcc, nil)
		return nil, errno(err)
	}
	n.dirChanged(res.DirWcc, addName(name))
	fh, a := res.FH, res.Attr
	if fh == nil {
		lr, err := n.f.client(ctx).Lookup(ctx, n.fh, name)
		if err != nil {
			return nil, errno(err)
		}
		fh, a = lr.FH, lr.Attr
	}
	if a == nil {
		ga, err := n.f.client(ctx).GetAttr(ctx, fh)
		if err != nil {
			return nil, errno(err)
		}
		a = &ga.Attr
	}
	return n.child(ctx, name, fh, a, out), 0
}

func modeAttr(mode uint32) proto.Sattr {
	m := mode & 0o7777
	return proto.Sattr{Mode: &m}
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	res, err := n.f.client(ctx).Mkdir(ctx, n.fh, name, modeAttr(mode))
	if lr := n.replayedCreate(ctx, err, "MKDIR", name, proto.TypeDir); lr != nil {
		res, err = &proto.CreateRes{FH: lr.FH, Attr: lr.Attr}, nil
	}
	ch, e := n.created(ctx, res, err, name, out)
	if e == 0 {
		if cn, ok := ch.Operations().(*node); ok {
			cn.newDir(res.Attr)
		}
	}
	return ch, e
}

func (n *node) Mknod(ctx context.Context, name string, mode, dev uint32, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	var t proto.FileType
	switch mode & syscall.S_IFMT {
	case syscall.S_IFIFO:
		t = proto.TypeFIFO
	case syscall.S_IFSOCK:
		t = proto.TypeSock
	case syscall.S_IFCHR:
		t = proto.TypeChr
	case syscall.S_IFBLK:
		t = proto.TypeBlk
	case syscall.S_IFREG, 0:
		res, err := n.f.client(ctx).Create(ctx, n.fh, name, proto.Guarded, modeAttr(mode))
		return n.created(ctx, res, err, name, out)
	default:
		return nil, syscall.EINVAL
	}
	major, minor := (dev>>8)&0xfff, dev&0xff|(dev>>12)&0xfff00
	res, err := n.f.client(ctx).Mknod(ctx, n.fh, name, t, modeAttr(mode), major, minor)
	return n.created(ctx, res, err, name, out)
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *gofuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_EXCL != 0 {
		return n.createExclusive(ctx, name, mode, out)
	}
	sa := modeAttr(mode)
	if flags&syscall.O_TRUNC != 0 {
		zero := uint64(0)
		sa.Size = &zero
	}
	res, err := n.f.client(ctx).Create(ctx, n.fh, name, proto.Unchecked, sa)
	ch, e := n.created(ctx, res, err, name, out)
	if e != 0 {
		return nil, nil, 0, e
	}
	n.opened(ch, res.Attr)
	return ch, &handle{auth: n.f.auth(ctx)}, 0, 0
}

// opened counts the open of a file the caller just created with attributes
// a (the page cache starts with them).
func (n *node) opened(ch *fs.Inode, a *proto.Attr) *node {
	cn := ch.Operations().(*node)
	cn.mu.Lock()
	if a != nil {
		cn.seen, cn.hasSeen = changeOf(a), true
	}
	cn.openedLocked(n)
	cn.mu.Unlock()
	return cn
}

// openedLocked counts an open of the file, made in dir (n.mu held).
func (n *node) openedLocked(dir *node) {
	if n.opens++; n.opens == 1 {
		n.f.mu.Lock()
		n.f.noteOpenLocked(n, dir, true)
		n.f.mu.Unlock()
	}
}

// createExclusive serves open(O_CREAT|O_EXCL) with an exclusive create
// and a verifier of its own (RFC 1813): when the server restarts after
// making the file and before its reply, the create the client sends again
// finds the file with that verifier, and the open succeeds. A GUARDED
// CREATE found the file there and failed with EEXIST, although the
// application's own call had made it.
//
// An NFSv3 EXCLUSIVE CREATE carries no attributes (a server may keep the
// verifier in the times): until a SETATTR of the mode follows it, other
// clients see the file with mode 0 (Linux's nfsd, regionfs) and fail to
// open it with EACCES. A regionfs server (it answers proto.ProgRegionFS)
// has an exclusive create that carries the mode (REGIONFS_CREATE, as
// NFSv4.1's EXCLUSIVE4_1): nobody ever sees the file without it, for the
// one round trip and the one durable commit of a CREATE. A server that has
// REGIONFS_CREATE_VISIBLE answers it before the create is durable: the
// close's durable commit (REGIONFS_CLOSE, later in the server's ordered
// journal) covers it, one sync per copied file instead of two, and a
// close or fsync that finds the file gone (the server restarted before)
// fails with EIO (settleCreate). Other servers
// (and a regionfs server without that procedure) get the EXCLUSIVE
// CREATE and then, before the open returns, a SETATTR of the mode and
// of the times to the server's clock, as Linux's NFS client sends them.
func (n *node) createExclusive(ctx context.Context, name string, mode uint32, out *gofuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	var verf [proto.CreateVerfSize]byte
	binary.BigEndian.PutUint64(verf[:], rand.Uint64())
	m := mode & 0o7777
	c := n.f.client(ctx)
	if conn, regionfs := n.f.sess.Ordered(ctx); regionfs && n.f.noExclAttrs.Load() != conn {
		visible := n.f.noVisible.Load() != conn
		var res *proto.CreateRes
		var err error
		if visible {
			res, err = c.CreateExclusiveVisible(ctx, n.fh, name, verf, proto.Sattr{Mode: &m})
			if errors.Is(err, client.ErrNoProc) {
				// Not asked again on this connection.
				n.f.noVisible.Store(conn)
				visible = false
			}
		}
		if !visible {
			res, err = c.CreateExclusiveAttrs(ctx, n.fh, name, verf, proto.Sattr{Mode: &m})
		}
		if !errors.Is(err, client.ErrNoProc) {
			ch, e := n.created(ctx, res, err, name, out)
			if e != 0 {
				return nil, nil, 0, e
			}
			cn := n.opened(ch, res.Attr)
			if visible {
				cn.mu.Lock()
				cn.unsynced = true
				cn.mu.Unlock()
			}
			return ch, &handle{auth: n.f.auth(ctx)}, 0, 0
		}
		// A regionfs server older than the procedure: not asked again on
		// this connection.
		n.f.noExclAttrs.Store(conn)
	}
	res, err := c.CreateExclusive(ctx, n.fh, name, verf)
	guarded := errors.Is(err, proto.ErrNotSupp)
	if guarded {
		// A server without exclusive creates: GUARDED, with the mode.
		res, err = c.Create(ctx, n.fh, name, proto.Guarded, modeAttr(mode))
	}
	ch, e := n.created(ctx, res, err, name, out)
	if e != 0 {
		return nil, nil, 0, e
	}
	cn := n.opened(ch, res.Attr)
	if guarded {
		return ch, &handle{auth: n.f.auth(ctx)}, 0, 0
	}
	now := proto.SetTime{How: proto.SetToServerTime}
	sres, err := c.SetAttr(ctx, cn.fh, proto.Sattr{Mode: &m, Atime: now, Mtime: now}, nil)
	if err != nil {
		n.f.log.Error("setting the mode of a file made by an exclusive create", "path", cn.path(), "err", err)
		cn.release(ctx)
		return nil, nil, 0, errno(err)
	}
	a := sres.Wcc.After
	if a == nil {
		// The SETATTR's reply does not say what it left (RFC 1813 lets a
		// server leave it out): the CREATE's attributes are not the
		// file's (the times changed), so the kernel gets the file's.
		if ga, err := c.GetAttr(ctx, cn.fh); err == nil {
			a = &ga.Attr
		}
	}
	if a != nil {
		cn.fileAttr(a)
		fillAttr(a, &out.Attr)
		cn.adjustSize(&out.Attr)
		cn.mu.Lock()
		cn.seen = changeOf(a)
		cn.mu.Unlock()
	} else {
		// Not the file's attributes (its times are the server's since
		// the SETATTR): the kernel is to ask for them.
		out.Attr.Mode = out.Attr.Mode&syscall.S_IFMT | m
		out.SetAttrTimeout(noCache)
	}
	return ch, &handle{auth: n.f.auth(ctx)}, 0, 0
}

func (n *node) Symlink(ctx context.Context, target, name string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	res, err := n.f.client(ctx).Symlink(ctx, n.fh, name, target, proto.Sattr{})
	if lr := n.replayedCreate(ctx, err, "SYMLINK", name, proto.TypeLnk); lr != nil {
		res, err = &proto.CreateRes{FH: lr.FH, Attr: lr.Attr}, nil
	}
	return n.created(ctx, res, err, name, out)
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	res, err := n.f.client(ctx).Readlink(ctx, n.fh)
	if err != nil {
		return nil, errno(err)
	}
	return []byte(res.Target), 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	n.forget()
	n.kidChanged(name) // its link count and ctime
	done, finish, e := n.sillyRename(ctx, name, false)
	if done || e != 0 {
		return e
	}
	defer finish()
	res, err := n.f.client(ctx).Remove(ctx, n.fh, name)
	if n.replayed(err, proto.ErrNoEnt, "REMOVE", name, nil) {
		err = nil
	}
	n.dirChanged(res.Wcc, okThen(err, removeName(name)))
	return errno(err)
}

// okThen is apply when err is nil, else nil (the names are dropped).
func okThen(err error, apply func(map[string]struct{})) func(map[string]struct{}) {
	if err != nil {
		return nil
	}
	return apply
}

// sillyRename renames name out of the way when it is an open file, so
// that it stays readable through its open handles; done reports that it
// did. Otherwise the caller calls finish once its unlink or rename over
// name is done: until then, opens of the file wait. For a rename over
// name (replace), finish also ends the time the name leads nowhere
// after the open file was moved aside: opens of a gone file that look
// the name up meanwhile wait for it (awaitReplace).
func (n *node) sillyRename(ctx context.Context, name string, replace bool) (done bool, finish func(), _ syscall.Errno) {
	nothing := func() {}
	cn := n.named(ctx, name)
	if cn == nil {
		return false, nothing, 0
	}
	cn.mu.Lock()
	cn.dir, cn.name = n, name
	open := cn.opens > 0 && cn.silly == ""
	if !open {
		cn.removingLocked()
	}
	cn.mu.Unlock()
	if !open {
		return false, cn.removeDone, 0
	}
	silly := fmt.Sprintf(".regionfs-unlinked-%x-%x", cn.StableAttr().Ino, rand.Uint64())
	finish = nothing
	if replace {
		finish = n.replaceStart(name)
	}
	res, err := n.f.client(ctx).Rename(ctx, n.fh, name, n.fh, silly)
	if n.replayed(err, proto.ErrNoEnt, "RENAME", name, func() bool {
		_, toErr := n.f.client(ctx).Lookup(ctx, n.fh, silly)
		return toErr == nil
	}) {
		err = nil
	}
	n.dirChanged(res.FromWcc, okThen(err, renameIn(name, silly)))
	if err != nil {
		finish()
		return true, nothing, errno(err)
	}
	cn.mu.Lock()
	n.f.mu.Lock()
	n.f.noteRemovedLocked(cn.fh)
	// Under no name now: not the node of a name's file (named, nodeOf).
	n.f.noteOpenLocked(cn, nil, false)
	n.f.mu.Unlock()
	if cn.opens > 0 {
		cn.silly, cn.sillyDir = silly, n
		cn.mu.Unlock()
		return true, finish, 0
	}
	cn.removingLocked()
	cn.mu.Unlock()
	// The kernel releases a closed file after close(2) returns: the last
	// handle went while the RENAME was on its way, and no Release is left
	// to remove the name.
	cn.removeSilly(ctx, n, silly)
	cn.removeDone()
	return true, finish, 0
}

// named is the node of the file name leads to in the directory, for an
// unlink or a rename over the name: a node of that file with open files,
// else the tree's child (nil: none known). The tree's child is not
// reliable: a LOOKUP that the server answered before this mount renamed a
// file over the name but that reached go-fuse after the rename (the
// kernel revalidates its entries without the directory's lock) puts the
// replaced file back, and a file can have two nodes (one the tree holds,
// one with the open files); the rename over the name then found the
// tree's node closed and dropped the open file (its reads failed with
// ESTALE, TestRenameStormReaders). So while a file opened in the
// directory is open, the server is asked which file the name leads to.
func (n *node) named(ctx context.Context, name string) *node {
	var tree *node
	if ch := n.GetChild(name); ch != nil {
		tree, _ = ch.Operations().(*node)
	}
	if !n.f.openIn(n) {
		return tree
	}
	lr, err := n.f.client(ctx).Lookup(ctx, n.fh, name)
	n.setAttr(lr.DirAttr)
	if err != nil {
		return tree
	}
	if o := n.f.openNode(lr.FH, tree); o != nil {
		return o
	}
	return tree
}

// replaceStart marks name as being replaced by a rename over it whose
// open file was moved aside first: until the returned function is
// called, the server has no file under name, and an open that looks the
// name up waits for it (awaitReplace) rather than fail.
func (n *node) replaceStart(name string) func() {
	ch := make(chan struct{})
	n.mu.Lock()
	if n.replacing == nil {
		n.replacing = map[string]chan struct{}{}
	}
	n.replacing[name] = ch
	n.mu.Unlock()
	return func() {
		n.mu.Lock()
		if n.replacing[name] == ch {
			delete(n.replacing, name)
		}
		n.mu.Unlock()
		close(ch)
	}
}

// awaitReplace waits for a rename over name in the directory that this
// mount has on its way after moving the name's open file aside; it
// reports whether there was one (the name is to be looked up again).
func (n *node) awaitReplace(ctx context.Context, name string) bool {
	n.mu.Lock()
	ch := n.replacing[name]
	n.mu.Unlock()
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// removeDone ends one unlink or rename over a closed file (sillyRename).
func (n *node) removeDone() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.removing--; n.removing == 0 {
		close(n.removed)
		n.removed = nil
		n.f.mu.Lock()
		if n.f.removing[string(n.fh)] == n {
			delete(n.f.removing, string(n.fh))
		}
		n.f.noteRemovedLocked(n.fh)
		n.f.mu.Unlock()
	}
}

// replayed reports whether err is the failure of a change that was sent
// again after its connection was lost and met its own first sending's
// effect (the server restarted meanwhile and forgot its reply): it failed
// with st, which that effect gives, and done, when not nil, finds the
// effect in place. The change is then done, as on a local file system,
// rather than failing with an error the caller did not cause.
func (n *node) replayed(err error, st proto.Status, op, name string, done func() bool) bool {
	if !client.Resent(err, st) || done != nil && !done() {
		return false
	}
	n.f.log.Info("a change sent again after its connection was lost had been made by its first sending", "op", op, "dir", n.path(), "name", name)
	return true
}

// replayedCreate is replayed for a MKDIR or SYMLINK failing with
// NFS3ERR_EXIST: the name's lookup when it is of type typ, else nil.
func (n *node) replayedCreate(ctx context.Context, err error, op, name string, typ proto.FileType) *proto.LookupRes {
	if !client.Resent(err, proto.ErrExist) {
		return nil
	}
	var lr *proto.LookupRes
	if !n.replayed(err, proto.ErrExist, op, name, func() bool {
		res, err := n.f.client(ctx).Lookup(ctx, n.fh, name)
		if err != nil || res.Attr == nil || res.Attr.Type != typ {
			return false
		}
		lr = res
		return true
	}) {
		return nil
	}
	return lr
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	n.forget()
	res, err := n.f.client(ctx).Rmdir(ctx, n.fh, name)
	if n.replayed(err, proto.ErrNoEnt, "RMDIR", name, nil) {
		err = nil
	}
	n.dirChanged(res.Wcc, okThen(err, removeName(name)))
	return errno(err)
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if flags != 0 {
		// RENAME_NOREPLACE / RENAME_EXCHANGE have no NFSv3 equivalent.
		return syscall.EINVAL
	}
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	if src, dst := n.GetChild(name), np.GetChild(newName); src != nil && src == dst {
		return 0 // the same file under both names: nothing to do (POSIX)
	}
	n.forget()
	np.forget()
	n.kidChanged(name) // its ctime
	np.kidChanged(newName)
	_, finish, e := np.sillyRename(ctx, newName, true)
	if e != 0 {
		return e
	}
	defer finish()
	res, err := n.f.client(ctx).Rename(ctx, n.fh, name, np.fh, newName)
	if n.replayed(err, proto.ErrNoEnt, "RENAME", name, func() bool {
		_, toErr := n.f.client(ctx).Lookup(ctx, np.fh, newName)
		_, fromErr := n.f.client(ctx).Lookup(ctx, n.fh, name)
		return toErr == nil && errors.Is(fromErr, proto.ErrNoEnt)
	}) {
		err = nil
	}
	if np == n {
		n.dirChanged(res.FromWcc, okThen(err, renameIn(name, newName)))
	} else {
		n.dirChanged(res.FromWcc, okThen(err, removeName(name)))
		np.dirChanged(res.ToWcc, okThen(err, addName(newName)))
	}
	return errno(err)
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t, ok := target.(*node)
	if !ok {
		return nil, syscall.EXDEV
	}
	n.forget()
	t.attrsChanged() // its link count and ctime
	res, err := n.f.client(ctx).Link(ctx, t.fh, n.fh, name)
	if n.replayed(err, proto.ErrExist, "LINK", name, func() bool {
		lr, err := n.f.client(ctx).Lookup(ctx, n.fh, name)
		return err == nil && bytes.Equal(lr.FH, t.fh)
	}) {
		res, err = &proto.LinkRes{}, nil
	}
	n.dirChanged(res.DirWcc, okThen(err, addName(name)))
	if err != nil {
		return nil, errno(err)
	}
	a := res.Attr
	if a == nil {
		ga, err := n.f.client(ctx).GetAttr(ctx, t.fh)
		if err != nil {
			return nil, errno(err)
		}
		a = &ga.Attr
	}
	return n.child(ctx, name, t.fh, a, out), 0
}

func (n *node) Statfs(ctx context.Context, out *gofuse.StatfsOut) syscall.Errno {
	res, err := n.f.client(ctx).FSStat(ctx, n.fh)
	if err != nil {
		return errno(err)
	}
	const bs = 4096
	out.Bsize, out.Frsize, out.NameLen = bs, bs, nameMax
	out.Blocks, out.Bfree, out.Bavail = res.TBytes/bs, res.FBytes/bs, res.ABytes/bs
	out.Files, out.Ffree = res.TFiles, res.FFiles
	return 0
}

// NFSv3 has no extended attributes (nor POSIX ACLs): getting, setting or
// removing one is EOPNOTSUPP, as on a kernel NFSv3 mount (cp -a and tar
// accept it); listing gives none. They answer ENOSYS, which the kernel
// turns into EOPNOTSUPP and remembers for the mount: it stops asking,
// where each write (its security.capability check) and each cp -a of a
// file (its ACL) cost a request otherwise.

func (n *node) Getxattr(context.Context, string, []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

func (n *node) Setxattr(context.Context, string, []byte, uint32) syscall.Errno {
	return syscall.ENOSYS
}

func (n *node) Removexattr(context.Context, string) syscall.Errno { return syscall.ENOSYS }

func (n *node) Listxattr(context.Context, []byte) (uint32, syscall.Errno) { return 0, 0 }
