package fuse

import (
	"bytes"
	"context"
	"syscall"
	"time"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
)

// Attribute changes made through an open file that has written data not
// yet on the server (futimens, fchown, fchmod after writing: what `cp -a`,
// `tar x` and `rsync` do to every file they copy) are sent with that data,
// at the next fsync or close, as one SETATTR after the data: each would
// otherwise cost a WRITE of the gathered data and a SETATTR of its own,
// every one a durable commit on the server, while the copying program
// waits. The change is answered from the file's attributes as last seen
// (no older than AttrTimeout) with the change applied, and reported by
// GETATTR meanwhile; its failure is returned by the fsync or close, as a
// failed write of the data is. Nothing is deferred otherwise: a change
// by name (chmod, chown, utimensat on a path), one that sets a time to
// the server's clock, a size change, or a change while the file has no
// data to write goes to the server at once, after any deferred change;
// so does a deferred change before the file's next write (a write after
// futimens moves mtime) and before an ownership change that follows a
// mode change (the server clears set-id bits on chown).

// deferred is an attribute change waiting for the file's data (guarded
// by node.mu).
type deferred struct {
	auth rpc.OpaqueAuth // of the caller: the SETATTR is made with it
	sa   proto.Sattr
}

// fileAttr records a regular file's attributes as the server reported
// them (answering deferred changes).
func (n *node) fileAttr(a *proto.Attr) {
	if a == nil || a.Type != proto.TypeReg {
		return
	}
	n.mu.Lock()
	n.fa, n.faAt = *a, time.Now()
	n.mu.Unlock()
}

// deferAttrs takes the change sa made through an open file when it can
// wait for the file's data (see above), and fills out; it reports
// whether it did.
func (n *node) deferAttrs(ctx context.Context, sa proto.Sattr, out *gofuse.AttrOut) bool {
	if sa.Size != nil || sa.Atime.How == proto.SetToServerTime || sa.Mtime.How == proto.SetToServerTime {
		return false
	}
	auth := n.f.auth(ctx)
	n.mu.Lock()
	defer n.mu.Unlock()
	w := n.wLocked()
	if n.opens == 0 || !w.dirty() || w.err != nil || w.keptAfterFailure() ||
		n.faAt.IsZero() || time.Since(n.faAt) >= n.f.o.AttrTimeout {
		return false
	}
	if d := w.attrs; d != nil {
		if d.auth.Flavor != auth.Flavor || !bytes.Equal(d.auth.Body, auth.Body) {
			return false
		}
		// A change of owner clears set-id bits: one after a set-id mode
		// goes after it (a mode without them loses nothing).
		if d.sa.Mode != nil && *d.sa.Mode&setIDBits != 0 && (sa.UID != nil || sa.GID != nil) {
			return false
		}
	} else {
		w.attrs = &deferred{auth: auth}
	}
	d := &w.attrs.sa
	if sa.Mode != nil {
		d.Mode = sa.Mode
	}
	if sa.UID != nil {
		d.UID = sa.UID
	}
	if sa.GID != nil {
		d.GID = sa.GID
	}
	if sa.Atime.How != proto.DontChange {
		d.Atime = sa.Atime
	}
	if sa.Mtime.How != proto.DontChange {
		d.Mtime = sa.Mtime
	}
	fillAttr(&n.fa, &out.Attr)
	n.adjustLocked(&out.Attr)
	out.SetTimeout(n.f.o.AttrTimeout)
	return true
}

// setIDBits are setuid and setgid.
const setIDBits = 0o6000

// keptAfterFailure reports data kept after a failed write or COMMIT.
func (w *wstate) keptAfterFailure() bool {
	for _, r := range w.sent {
		if r.resend {
			return true
		}
	}
	return false
}

// overlayDeferred applies the deferred change to a (n.mu held).
func (n *node) overlayDeferred(a *gofuse.Attr) {
	d := n.w.attrs
	if d == nil {
		return
	}
	if d.sa.Mode != nil {
		a.Mode = a.Mode&syscall.S_IFMT | *d.sa.Mode&0o7777
	}
	if d.sa.UID != nil {
		a.Uid = *d.sa.UID
	}
	if d.sa.GID != nil {
		a.Gid = *d.sa.GID
	}
	if t := d.sa.Atime; t.How == proto.SetToClientTime {
		a.Atime, a.Atimensec = uint64(t.Time.Sec), t.Time.Nsec
	}
	if t := d.sa.Mtime; t.How == proto.SetToClientTime {
		a.Mtime, a.Mtimensec = uint64(t.Time.Sec), t.Time.Nsec
	}
}

// sendAttrs sends the deferred change, if any (after the data it waited
// for). A failure is returned (the change is dropped: reported once, by
// this fsync or close, and logged); an interrupted call keeps it.
func (n *node) sendAttrs(ctx context.Context) syscall.Errno {
	n.mu.Lock()
	d := n.w.attrs
	var sa proto.Sattr
	if d != nil {
		sa = d.sa // deferAttrs changes d.sa under n.mu
	}
	n.mu.Unlock()
	if d == nil {
		return 0
	}
	res, err := n.f.sess.Client(d.auth).SetAttr(ctx, n.fh, sa, nil)
	if err != nil && ctx.Err() != nil {
		return syscall.EINTR
	}
	n.mu.Lock()
	if n.w.attrs == d && d.sa == sa {
		n.w.attrs = nil // else changed meanwhile: sent again, with the change, by the next fsync or close
	}
	n.mu.Unlock()
	if err != nil {
		n.f.log.Error("attribute change made through the open file failed", "path", n.path(), "err", err)
		return errno(err)
	}
	n.fileAttr(res.Wcc.After)
	return 0
}

// flushAttrsBeforeWrite writes back the data and sends the deferred
// change before a write, when the change is one a write undoes: times (a
// write moves mtime on) or set-id bits (the server clears them at an
// unprivileged write). A mode without them, or an owner, may wait for the
// data as well.
func (n *node) flushAttrsBeforeWrite(ctx context.Context) syscall.Errno {
	return n.flushAttrsIf(ctx, func(d *deferred) bool {
		return d.sa.Atime.How != proto.DontChange || d.sa.Mtime.How != proto.DontChange ||
			d.sa.Mode != nil && *d.sa.Mode&setIDBits != 0
	})
}

// flushAttrsIf writes back the data and sends the deferred change, when
// there is one and when says so.
func (n *node) flushAttrsIf(ctx context.Context, when func(*deferred) bool) syscall.Errno {
	n.mu.Lock()
	has := n.w.attrs != nil && when(n.w.attrs)
	n.mu.Unlock()
	if !has {
		return 0
	}
	if e := n.writeBack(ctx); e != 0 {
		return e
	}
	return n.sendAttrs(ctx)
}

// A regular file's GETATTR is answered from the attributes the server
// last reported for it (fa), without a call, for AttrTimeout after a
// GETATTR of it (the kernel's, or an open's) brought them, while this
// mount has not changed the file since (written, set, linked, unlinked
// or renamed it: attrsChanged) and holds no data of it to write. That is
// the kernel's own attribute cache, and it would have answered those
// GETATTRs itself, but it drops the attributes more often than they
// age: FUSE's OPEN reply carries none, so what an open's close-to-open
// GETATTR learns never reaches it; it forgets the atime after each read
// (and asks for all the attributes at the next fstat); and an open that
// finds the file changed makes it drop them (Open). Each of those cost
// an open of an unchanged file a second GETATTR, after the open's own.

// attrGen is the count of this mount's changes to the file, taken before
// a GETATTR is sent (keepFileAttr); ok is false when the file has data
// to write then: the reply may describe the file before that data, and
// the data may be committed (the file clean again, with no change
// counted) before the reply is taken.
func (n *node) attrGen() (gen uint64, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.faGen, !n.w.dirty()
}

// keepFileAttr lets the attributes a of a GETATTR sent when attrGen said
// gen, ok answer GETATTRs for AttrTimeout, unless the file had data to
// write then or has now, or changed through this mount meanwhile.
func (n *node) keepFileAttr(a *proto.Attr, gen uint64, ok bool) {
	if a == nil || a.Type != proto.TypeReg || !ok {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.faGen != gen || n.w.dirty() {
		return
	}
	n.fa, n.faAt = *a, time.Now()
	n.faUntil = n.faAt.Add(n.f.o.AttrTimeout)
}

// cachedFileAttr fills out from fa while keepFileAttr's time lasts.
func (n *node) cachedFileAttr(out *gofuse.AttrOut) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	left := time.Until(n.faUntil)
	if left <= 0 || n.w.dirty() {
		return false
	}
	fillAttr(&n.fa, &out.Attr)
	n.adjustLocked(&out.Attr)
	out.SetTimeout(left)
	return true
}

// mayHoldLocked says whether the file may hold data at off (n.mu held):
// while the attributes the server last reported answer GETATTRs
// (cachedFileAttr: no change through this mount since), readahead stops
// at their size instead of sending READs that can only answer EOF; the
// kernel reads no further either. A file that grew since is read on when
// the reader gets there (the chunk under a read is always fetched), only
// without readahead past the size known.
func (n *node) mayHoldLocked(off int64) bool {
	return !time.Now().Before(n.faUntil) || n.w.dirty() || uint64(off) < n.fa.Size
}

// attrsChanged ends the answers from fa: this mount is changing the
// file (its size, times, mode, owner or link count).
func (n *node) attrsChanged() {
	n.mu.Lock()
	n.attrsChangedLocked()
	n.mu.Unlock()
}

func (n *node) attrsChangedLocked() {
	n.faGen++
	n.faUntil = time.Time{}
}

// kidChanged is attrsChanged for the known node under name, if any.
func (n *node) kidChanged(name string) {
	if ch := n.GetChild(name); ch != nil {
		if cn, ok := ch.Operations().(*node); ok {
			cn.attrsChanged()
		}
	}
}
