package fuse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
)

// errLost: data written before a failover was not committed on the old
// server and is not on the promoted one.
var errLost = fmt.Errorf("%w: writes not committed before a failover are lost", syscall.EIO)

// handle is an open file: the opener's credential, used for its data.
type handle struct {
	auth rpc.OpaqueAuth
	// n is the node the open serves when it is not the kernel's node
	// (openNamed), else nil.
	n *node
}

// wstate is a file's write-behind state (guarded by node.mu).
type wstate struct {
	cond    *sync.Cond
	auth    rpc.OpaqueAuth
	pending []byte // gathered, not sent yet, at pendOff
	pendOff int64
	// inflight are the ranges being written: a range overlapping one of
	// them waits, so that writes to the same bytes stay in order.
	inflight      []span
	inflightBytes int64
	// sent are written UNSTABLE and not yet covered by a COMMIT with
	// their verifier, or not written at all (a write or COMMIT failed):
	// kept to be resent, in the order they were written.
	sent      []wrange
	sentBytes int64
	// err is the first failure of a background write whose data could not
	// be kept (the file is gone), returned by the next fsync or close.
	err error
	// size is the end of the highest write while the file is dirty (the
	// server's size may lag).
	size uint64
	// attrs is an attribute change waiting for the data (attrs.go).
	attrs *deferred
}

type span struct{ off, end int64 }

// pendingStart is the buffer a file's gathered writes start in when the
// first write is smaller.
const pendingStart = 32 << 10

type wrange struct {
	off    int64
	data   []byte
	verf   [proto.WriteVerfSize]byte
	epoch  uint64 // session epoch when it was sent
	stable bool   // the server answered FILE_SYNC
	// resend: the server may not hold it (its write failed, or a COMMIT
	// failed): it is written again before the next COMMIT, and so is
	// every range after it (the newest data lands last).
	resend bool
}

// readahead is a file's sequential read state (guarded by node.mu).
type readahead struct {
	next   int64
	chunks map[int64]*chunk
}

type chunk struct {
	done chan struct{}
	data []byte
	err  error
	// refs counts the holders of the chunk: the readahead map, the fetch
	// in progress, and each Read whose reply to the kernel uses data.
	// The last one gives the reply's storage (own) back to the session.
	refs atomic.Int32
	own  []byte
	sess *client.Session
	// served counts the bytes of data that Reads have taken; once it is
	// all of them the chunk is spent: the readahead map lets its data go
	// but keeps it as a mark that it was read (guarded by node.mu).
	served int
	spent  bool
}

func (c *chunk) ref() { c.refs.Add(1) }

func (c *chunk) unref() {
	if c.refs.Add(-1) == 0 && c.own != nil {
		c.sess.Recycle(c.own)
		c.own, c.data = nil, nil
	}
}

// servedLocked notes that a Read took k bytes of chunk i. Once all of its
// data has been taken, the readahead map lets the data go and keeps the
// chunk as spent, so that a read arriving late does not fetch it again
// when it fills the window ahead of itself. Chunks leave as they are read,
// not when a later one is: the kernel's reads of a sequential stream
// arrive slightly out of order (go-fuse serves them concurrently), and a
// chunk dropped before its read came had to be read again, synchronously,
// in the reader's path.
func (n *node) servedLocked(i int64, c *chunk, k int) {
	c.served += k
	if !c.spent && c.served >= len(c.data) && n.ra.chunks[i] == c {
		c.spent = true
		c.unref()
	}
}

// dropChunksLocked forgets the readahead chunks (all of them, or those
// before idx when idx >= 0).
func (n *node) dropChunksLocked(idx int64) {
	for i, c := range n.ra.chunks {
		if idx < 0 || i < idx {
			delete(n.ra.chunks, i)
			if !c.spent {
				c.unref()
			}
		}
	}
}

// chunkResult is a Read's reply made of a chunk's data; go-fuse calls
// Done once the kernel has it (Slices makes go-fuse write it before
// Done: with splice off, a plain ReadResult's Done comes before the
// write).
type chunkResult struct {
	c    *chunk
	data []byte
}

func (r *chunkResult) Bytes([]byte) ([]byte, gofuse.Status) { return r.data, gofuse.OK }
func (r *chunkResult) Size() int                            { return len(r.data) }
func (r *chunkResult) Slices() ([][]byte, gofuse.Status)    { return [][]byte{r.data}, gofuse.OK }
func (r *chunkResult) Done() {
	if r.c != nil {
		r.c.unref()
		r.c = nil
	}
}

func (n *node) wLocked() *wstate {
	if n.w.cond == nil {
		n.w.cond = sync.NewCond(&n.mu)
	}
	return &n.w
}

func (w *wstate) dirty() bool {
	return len(w.pending) > 0 || len(w.inflight) > 0 || len(w.sent) > 0 || w.err != nil || w.attrs != nil
}

var (
	_ fs.NodeOpener   = (*node)(nil)
	_ fs.NodeReader   = (*node)(nil)
	_ fs.NodeWriter   = (*node)(nil)
	_ fs.NodeFlusher  = (*node)(nil)
	_ fs.NodeFsyncer  = (*node)(nil)
	_ fs.NodeReleaser = (*node)(nil)
)

// Open revalidates the attributes (close-to-open) and keeps the kernel's
// cached pages only when the file is unchanged since they were read.
//
// When the file is gone on the server (another client renamed a file
// over its name or unlinked it, or this mount did while the kernel's
// lookup was on its way), the open opens the file the name leads to now
// (openNamed), as a local file system's open of the path would, instead
// of failing with ESTALE: the kernel retries that only once, and the
// retry lost the same race again under a storm of renames.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	var gen uint64
	var clean bool
	a, e := n.countOpen(ctx, func() (*proto.Attr, error) {
		gen, clean = n.attrGen()
		res, err := n.f.client(ctx).GetAttr(ctx, n.fh)
		return &res.Attr, err
	})
	t := n
	if e == syscall.ESTALE {
		t, a, e = n.openNamed(ctx, flags)
	}
	if e != 0 {
		return nil, 0, e
	}
	ca := changeOf(a)
	t.mu.Lock()
	// The kernel holds the attributes it was last given (those recorded
	// in fa) for up to AttrTimeout, and reads up to the size they say.
	told := !t.faAt.IsZero() && changeOf(&t.fa) == ca
	t.mu.Unlock()
	t.fileAttr(a)
	if t == n {
		// The kernel's GETATTRs right after the open (fstat, its size
		// check before reading, after the notification below) are
		// answered with them: FUSE's OPEN reply has no attributes.
		n.keepFileAttr(a, gen, clean)
	}
	h := &handle{auth: n.f.auth(ctx)}
	t.mu.Lock()
	keep := t == n && t.hasSeen && t.seen == ca && flags&syscall.O_TRUNC == 0
	if !keep && (t == n || !t.hasSeen || t.seen != ca) {
		t.dropChunksLocked(-1)
	}
	if t == n {
		t.seen, t.hasSeen = ca, true
	}
	t.mu.Unlock()
	var ff uint32
	if keep {
		ff = gofuse.FOPEN_KEEP_CACHE
	}
	if t == n && !told {
		// Changed since (by another client, or by this mount's writes,
		// whose size the kernel knows): the kernel's cached size would
		// cut the reads of a grown file short, or answer a shrunk one's
		// from beyond its end, until its attributes expire. Close-to-open
		// means the change shows at this open: make the kernel ask for
		// the attributes again (it does before a read past the size it
		// holds, and at the next stat).
		n.NotifyContent(-1, 0)
	}
	if t != n {
		// The kernel opens n, and holds n's attributes: make it ask for
		// them again (through this handle: t's). Its reads and writes
		// bypass its cache of n, whose size limits cached reads
		// (concurrent opens of n change the attributes under each
		// other's questions: the kernel drops the size an answer
		// brings after such a change).
		h.n = t
		ff |= gofuse.FOPEN_DIRECT_IO
		n.NotifyContent(-1, 0)
	}
	return h, ff, 0
}

// countOpen counts an open of the file, then asks the server for its
// attributes with ask; on failure the open is not counted. The open
// counts before its question: an unlink or a rename over the file made
// meanwhile in this mount then moves it aside (sillyRename) instead of
// having the server drop it under the open file. One already on its way
// is waited for, and the question then finds the file gone (ESTALE).
func (n *node) countOpen(ctx context.Context, ask func() (*proto.Attr, error)) (*proto.Attr, syscall.Errno) {
	dir, _ := n.lastName()
	n.mu.Lock()
	for n.removing > 0 {
		removed := n.removed
		n.mu.Unlock()
		select {
		case <-removed:
		case <-ctx.Done(): // the caller is being killed
			return nil, syscall.EINTR
		}
		n.mu.Lock()
	}
	n.openedLocked(dir)
	n.mu.Unlock()
	a, err := ask()
	if err != nil {
		n.release(ctx)
		return nil, errno(err)
	}
	return a, 0
}

// maxOpenNamed bounds the files openNamed tries, each renamed over or
// unlinked before its open counted.
const maxOpenNamed = 8

// openNamed serves an open of n, whose file the server no longer has,
// with the file n's name leads to now: it looks the name up, counts the
// open on that file's node and asks the server whether the caller may
// open it as flags say (ACCESS, whose reply carries the attributes the
// open revalidates with); a file this mount has just removed from the
// name is looked up again. It returns that node, or ESTALE when the name
// leads to nothing or to something else than a regular file: the kernel
// then looks the path up again, and fails with ENOENT, or creates the
// file (O_CREAT), or opens what it finds.
func (n *node) openNamed(ctx context.Context, flags uint32) (*node, *proto.Attr, syscall.Errno) {
	dir, name := n.lastName()
	if dir == nil || n.linked() {
		n.staleName()
		return nil, nil, syscall.ESTALE
	}
	mask := uint32(proto.AccessRead)
	switch flags & syscall.O_ACCMODE {
	case syscall.O_WRONLY:
		mask = proto.AccessModify
	case syscall.O_RDWR:
		mask |= proto.AccessModify
	}
	if flags&syscall.O_TRUNC != 0 {
		mask |= proto.AccessModify
	}
	c := n.f.client(ctx)
	for range maxOpenNamed {
		dir.forget()
		lr, err := c.Lookup(ctx, dir.fh, name)
		dir.setAttr(lr.DirAttr)
		if err != nil {
			if errors.Is(err, proto.ErrNoEnt) {
				if dir.awaitReplace(ctx, name) {
					continue
				}
				return nil, nil, syscall.ESTALE
			}
			return nil, nil, errno(err)
		}
		a := lr.Attr
		if a == nil {
			ga, err := c.GetAttr(ctx, lr.FH)
			if err != nil {
				continue // gone again, or failing: looked up again
			}
			a = &ga.Attr
		}
		if a.Type != proto.TypeReg {
			return nil, nil, syscall.ESTALE
		}
		t := dir.nodeOf(ctx, name, lr.FH, a, n)
		if t == nil {
			continue
		}
		var granted uint32
		a, e := t.countOpen(ctx, func() (*proto.Attr, error) {
			res, err := c.Access(ctx, t.fh, mask)
			if err != nil || res.Attr == nil {
				if err == nil {
					err = fmt.Errorf("%w: ACCESS without attributes", syscall.EIO)
				}
				return nil, err
			}
			granted = res.Access
			return res.Attr, nil
		})
		switch {
		case e == syscall.ESTALE:
			continue
		case e != 0:
			return nil, nil, e
		case n.f.wasRemoved(t.fh):
			// The name led to it before this mount renamed another
			// file over it or unlinked it; a server may still answer
			// for it for a moment.
			t.release(ctx)
			continue
		case a.Type != proto.TypeReg:
			t.release(ctx)
			return nil, nil, syscall.ESTALE
		case granted&mask != mask:
			t.release(ctx)
			return nil, nil, syscall.EACCES
		}
		n.f.log.Debug("an open found its file gone and opened the one its name leads to", "dir", dir.path(), "name", name)
		return t, a, 0
	}
	n.staleName()
	return nil, nil, syscall.ESTALE
}

// linked reports whether n's file had more than one name when the server
// last described it: lastName is then one of them, not surely the one the
// kernel opened, and an open of a gone file answers ESTALE (the kernel
// looks its own path up again) rather than open the file another name
// leads to.
func (n *node) linked() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fa.Nlink > 1
}

// lastName is a name the file was last known under: its name in the
// tree, else the one it was last looked up, made, unlinked or renamed
// over under.
func (n *node) lastName() (*node, string) {
	if name, p := n.Parent(); p != nil {
		if pn, ok := p.Operations().(*node); ok {
			return pn, name
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dir, n.name
}

// nodeOf returns the node of the file fh (attributes a) that the server
// has under name in the directory, for an open of gone, the file the tree
// or the kernel had under name: the directory's node under that name or
// under another (a rename in it that the tree does not show yet), or the
// node of an unlink or rename over the file this mount has on its way
// (the open waits for it, then finds the file gone), so that the open
// counts where this mount's unlinks and renames over the file look. Else,
// when the tree's name leads to gone or to nothing, it is a new node
// taking its place (the kernel is told to look the name up again); when
// it leads to another file, nil (the name is to be looked up again).
func (n *node) nodeOf(ctx context.Context, name string, fh proto.FH, a *proto.Attr, gone *node) *node {
	sa := stableAttr(fh, a)
	cur := n.GetChild(name)
	if cur != nil && cur.StableAttr() == sa {
		if cn, ok := cur.Operations().(*node); ok {
			return cn
		}
	}
	n.f.mu.Lock()
	rn := n.f.removing[string(fh)]
	n.f.mu.Unlock()
	if rn != nil {
		return rn
	}
	for _, ch := range n.Children() {
		if ch.StableAttr() == sa {
			if cn, ok := ch.Operations().(*node); ok {
				return cn
			}
		}
	}
	if o := n.f.openNode(fh, nil); o != nil {
		// Open already (the tree does not show it under name: stale).
		return o
	}
	if cur != nil && cur != gone.EmbeddedInode() {
		// The tree has another file under name: this mount's rename
		// over the name came after the lookup's answer (or another
		// client's: the open then fails with ESTALE, and the kernel
		// retries it once).
		return nil
	}
	ch := n.NewInode(ctx, &node{f: n.f, fh: append(proto.FH(nil), fh...), dir: n, name: name}, sa)
	n.AddChild(name, ch, true)
	n.f.notify.entry(n, name)
	return ch.Operations().(*node)
}

// served is the node an open file serves: n, or the file n's name led to
// when n's was gone at the open (openNamed).
func (n *node) served(f fs.FileHandle) *node {
	if h, ok := f.(*handle); ok && h.n != nil {
		return h.n
	}
	return n
}

func handleAuth(f fs.FileHandle, n *node, ctx context.Context) rpc.OpaqueAuth {
	if h, ok := f.(*handle); ok {
		return h.auth
	}
	return n.f.auth(ctx)
}

func (n *node) Write(ctx context.Context, f fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if t := n.served(f); t != n {
		return t.Write(ctx, f, data, off)
	}
	// A change of times deferred until the data was written lands
	// before this write, which moves mtime on (and one of set-id bits,
	// which it may clear).
	if e := n.flushAttrsBeforeWrite(ctx); e != 0 {
		return 0, e
	}
	io := n.f.o.IOSize
	n.mu.Lock()
	n.attrsChangedLocked()
	w := n.wLocked()
	if w.sentBytes+w.inflightBytes > n.f.o.MaxDirtyBytes {
		// Data kept after a failure (no space) fills the bound: commit
		// it first, and refuse this write while that fails, so that a
		// writer retrying on a full disk does not grow the memory held.
		n.mu.Unlock()
		if e := n.commit(ctx); e != 0 {
			return 0, e
		}
		n.mu.Lock()
	}
	w.auth = handleAuth(f, n, ctx)
	n.dropChunksLocked(-1)
	if !w.dirty() {
		w.size = 0 // the server's size is current
	}
	if len(w.pending) > 0 && off == w.pendOff+int64(len(w.pending)) && len(w.pending)+len(data) <= io {
		if len(w.pending)+len(data) > cap(w.pending) {
			// A small start outgrown: on in a full-size buffer.
			w.pending = append(append(n.f.writeBuf(), w.pending...), data...)
		} else {
			w.pending = append(w.pending, data...)
		}
	} else {
		if len(w.pending) > 0 {
			n.sendLocked()
		}
		// A small first write starts a small buffer (append grows it
		// for a sequential writer): a small file written and closed
		// would otherwise cost an IOSize buffer (allocated, cleared,
		// collected) for a few KiB.
		if len(data) < pendingStart && pendingStart < io {
			w.pending = append(make([]byte, 0, pendingStart), data...)
		} else {
			w.pending = append(n.f.writeBuf(), data...)
		}
		w.pendOff = off
	}
	if len(w.pending) >= io {
		n.sendLocked()
	}
	if end := uint64(off) + uint64(len(data)); end > w.size {
		w.size = end
	}
	over := w.sentBytes+w.inflightBytes > n.f.o.MaxDirtyBytes
	kill := killsPriv(ctx, n.fa.Mode)
	n.mu.Unlock()
	n.f.markDirty(n, true)
	if kill {
		// The server clears setuid (and setgid) at this write: send it
		// now and take the mode it leaves, which the writer sees at once
		// (fstat), as it does on a local file system.
		if e := n.writeBack(ctx); e != 0 {
			return 0, e
		}
		res, err := n.f.client(ctx).GetAttr(ctx, n.fh)
		if err != nil {
			return 0, errno(err)
		}
		n.setAttr(&res.Attr)
		n.fileAttr(&res.Attr)
		// The kernel keeps the mode it had: make it ask again.
		n.NotifyContent(-1, 0)
	}
	if over {
		// Bound the memory held for resends: commit what was sent.
		if e := n.commit(ctx); e != 0 {
			return 0, e
		}
	}
	return uint32(len(data)), 0
}

// sendLocked starts writing the pending data in the background, after
// any in-flight write it overlaps.
func (n *node) sendLocked() {
	w := &n.w
	data, off := w.pending, w.pendOff
	w.pending = nil
	end := off + int64(len(data))
	for overlaps(w.inflight, off, end) {
		w.cond.Wait()
	}
	sp := span{off, end}
	w.inflight = append(w.inflight, sp)
	w.inflightBytes += int64(len(data))
	auth := w.auth
	go func() {
		n.f.sem <- struct{}{}
		epoch := n.f.sess.Epoch()
		verf, stable, err := n.writeRange(context.Background(), auth, off, data, proto.Unstable)
		<-n.f.sem
		n.mu.Lock()
		n.writeDone(sp, data, verf, stable, epoch, err)
		n.mu.Unlock()
	}()
}

func overlaps(spans []span, off, end int64) bool {
	for _, s := range spans {
		if s.off < end && off < s.end {
			return true
		}
	}
	return false
}

// writeSyncLocked writes the pending data FILE_SYNC and waits for it,
// when it is all the file has to write back: one call where an UNSTABLE
// WRITE and a COMMIT would take two (a small file written and closed). It
// reports whether it did; it is called with n.mu held, and releases it
// during the call.
func (n *node) writeSyncLocked() bool { return n.writeOneLocked(proto.FileSync) }

// writeOneLocked is writeSyncLocked with the given stability.
func (n *node) writeOneLocked(how proto.StableHow) bool {
	w := n.wLocked()
	if len(w.pending) == 0 || len(w.inflight) > 0 || len(w.sent) > 0 || w.err != nil {
		return false
	}
	data, off := w.pending, w.pendOff
	w.pending = nil
	sp := span{off, off + int64(len(data))}
	w.inflight = append(w.inflight, sp)
	w.inflightBytes += int64(len(data))
	auth := w.auth
	epoch := n.f.sess.Epoch()
	n.mu.Unlock()
	verf, stable, err := n.writeRange(context.Background(), auth, off, data, how)
	n.mu.Lock()
	n.writeDone(sp, data, verf, stable, epoch, err)
	return true
}

// writeDone records the outcome of a write of data at sp (n.mu held).
func (n *node) writeDone(sp span, data []byte, verf [proto.WriteVerfSize]byte, stable bool, epoch uint64, err error) {
	w := &n.w
	for i, s := range w.inflight {
		if s == sp {
			w.inflight = append(w.inflight[:i], w.inflight[i+1:]...)
			break
		}
	}
	w.inflightBytes -= int64(len(data))
	if err != nil {
		if e := errno(err); e == syscall.ESTALE || e == syscall.ENOENT {
			// The file is gone: nothing to keep the data for.
			if w.err == nil {
				w.err = err
			}
		} else {
			// No space, an I/O error: the data is kept and written
			// again at the next fsync or close, which fail until it
			// is on the server and committed — never reporting it
			// stable meanwhile.
			w.sent = append(w.sent, wrange{off: sp.off, data: data, epoch: epoch, resend: true})
			w.sentBytes += int64(len(data))
		}
		n.f.log.Error("background write failed; retried at the next fsync or close, which fail until it succeeds", "path", n.path(), "off", sp.off, "len", len(data), "err", err)
	} else if !stable || w.overlapsSent(sp) {
		// A stable write over a range kept for resending is kept too:
		// it is written again after that range, so it stays on top.
		w.sent = append(w.sent, wrange{off: sp.off, data: data, verf: verf, epoch: epoch, stable: stable})
		w.sentBytes += int64(len(data))
	} else {
		n.f.reuse(data) // stable on the server, kept nowhere
	}
	w.cond.Broadcast()
}

// overlapsSent reports whether sp overlaps a range kept for resending.
func (w *wstate) overlapsSent(sp span) bool {
	for _, r := range w.sent {
		if r.off < sp.end && sp.off < r.off+int64(len(r.data)) {
			return true
		}
	}
	return false
}

// writeRange writes data at off with the given stability (continuing
// after short writes); it returns the verifier of the last reply and
// whether the server made it stable already.
func (n *node) writeRange(ctx context.Context, auth rpc.OpaqueAuth, off int64, data []byte, how proto.StableHow) ([proto.WriteVerfSize]byte, bool, error) {
	var verf [proto.WriteVerfSize]byte
	stable := true
	c := n.f.sess.Client(auth)
	for len(data) > 0 {
		res, err := c.Write(ctx, n.fh, uint64(off), data, how)
		if err != nil {
			return verf, false, err
		}
		if res.Count == 0 || int(res.Count) > len(data) {
			return verf, false, fmt.Errorf("%w: server wrote %d of %d bytes", syscall.EIO, res.Count, len(data))
		}
		verf = res.Verf
		stable = stable && res.Committed == proto.FileSync
		data, off = data[res.Count:], off+int64(res.Count)
	}
	return verf, stable, nil
}

// writeBack sends the pending data and waits for every write in flight
// (no COMMIT): the server then answers reads and attributes with it.
func (n *node) writeBack(ctx context.Context) syscall.Errno {
	n.mu.Lock()
	defer n.mu.Unlock()
	w := n.wLocked()
	if !n.writeSyncLocked() && len(w.pending) > 0 {
		n.sendLocked()
	}
	for len(w.inflight) > 0 {
		w.cond.Wait()
	}
	return 0
}

// commit writes back, COMMITs and checks the verifier: ranges written
// under another verifier (the server restarted) are resent and committed
// again. Data whose write or COMMIT failed (no space, an I/O error) is
// kept and written again by the next commit: every fsync or close fails
// until it is committed, so a retried fsync never reports lost data
// stable. It returns that failure, the first error of this file's writes
// whose data could not be kept, or EIO for data lost in a failover.
//
// A small file with an attribute change waiting for its data (cp -a's
// times and mode: attrs.go) is written UNSTABLE, then the change is sent,
// then the COMMIT: the server may make the data and the change durable
// together (regionfs does, in one commit), where a FILE_SYNC WRITE and
// the SETATTR after it are two. The SETATTR follows the WRITE's reply, so
// the mtime it sets is not moved on by the data; if the COMMIT finds the
// data must be written again (the server restarted and lost it), the
// change is sent again after it, and if the COMMIT fails it waits for
// the data again.
func (n *node) commit(ctx context.Context) syscall.Errno {
	// In one round trip if the server allows (pipeline.go); what is left
	// (nothing, or all of it) below.
	n.commitPipelined(ctx)
	n.mu.Lock()
	w := n.wLocked()
	attrsFirst := w.attrs != nil && n.writeOneLocked(proto.Unstable)
	if !attrsFirst && !n.writeSyncLocked() && len(w.pending) > 0 {
		n.sendLocked()
	}
	for len(w.inflight) > 0 {
		w.cond.Wait()
	}
	werr := w.err
	w.err = nil
	if werr != nil {
		w.attrs = nil // the file is gone, or its data lost in a failover
	}
	ranges := w.sent
	w.sent, w.sentBytes = nil, 0
	auth := w.auth
	d := w.attrs
	attrsFirst = attrsFirst && werr == nil && d != nil &&
		!slices.ContainsFunc(ranges, func(r wrange) bool { return r.resend })
	n.mu.Unlock()

	var (
		e         syscall.Errno
		lost      bool
		committed bool // ranges are committed: nothing of them to keep
	)
	if attrsFirst {
		e, lost, committed = n.attrsThenCommit(ctx, auth, ranges, d)
	} else {
		e, lost, _ = n.commitRanges(ctx, auth, ranges)
		committed = e == 0
		if e == 0 && werr == nil {
			e = n.sendAttrs(ctx)
		}
	}
	if e == syscall.EINTR && committed {
		return e // the change is kept (sendAttrs)
	}
	if !committed && !lost {
		// Kept, before what was written meanwhile (newer data), for
		// the next fsync or close.
		n.mu.Lock()
		w.sent = append(ranges, w.sent...)
		for _, r := range ranges {
			w.sentBytes += int64(len(r.data))
		}
		if e == syscall.EINTR {
			w.err = werr
		}
		n.mu.Unlock()
		if e == syscall.EINTR {
			return e
		}
	}
	if committed {
		for _, r := range ranges {
			n.f.reuse(r.data) // committed, kept nowhere
		}
	}
	n.settle()
	if werr != nil {
		return errno(werr)
	}
	return e
}

// attrsThenCommit sends the deferred change d, then commits ranges (see
// commit). It returns the first failure; lost is as for commitRanges,
// committed reports that the ranges are committed.
//
// The COMMIT does not wait for the SETATTR's reply, only until its
// request is written: the server reads them in that order (regionfs's
// COMMIT then waits for the SETATTR, which has written the data with the
// change), one round trip for both.
func (n *node) attrsThenCommit(ctx context.Context, auth rpc.OpaqueAuth, ranges []wrange, d *deferred) (e syscall.Errno, lost, committed bool) {
	sent := make(chan struct{})
	var once sync.Once
	attrsDone := make(chan syscall.Errno, 1)
	go func() {
		attrsDone <- n.sendAttrs(client.WithSent(ctx, func() { once.Do(func() { close(sent) }) }))
	}()
	var ea syscall.Errno
	select {
	case <-sent:
	case ea = <-attrsDone:
		// Answered (or failed) before the send was seen: as if sent.
		attrsDone <- ea
	}
	e, lost, resent := n.commitRanges(ctx, auth, ranges)
	ea = <-attrsDone
	if ea == syscall.EINTR {
		return ea, false, false // the change is kept (sendAttrs)
	}
	committed = e == 0
	switch {
	case ea != 0:
		// The change failed: reported now and dropped, as when it
		// follows the data.
		if e == 0 {
			e = ea
		}
		return e, lost, committed
	case lost:
		return e, true, false
	case e != 0 || resent:
		// The data is to be written again, or was after the change
		// (moving mtime on): the change waits for it again, unless
		// one made meanwhile replaces it.
		n.mu.Lock()
		if n.w.attrs == nil {
			n.w.attrs = d
		}
		n.mu.Unlock()
		if e != 0 {
			return e, false, false
		}
		return n.sendAttrs(ctx), false, true
	}
	return 0, false, true
}

// commitRanges writes again what the server may not hold, COMMITs, and
// writes again what was written under another verifier, until every range
// is committed. It updates ranges in place (verifiers, resend marks);
// lost reports data lost in a failover (the ranges are to be dropped),
// otherwise the ranges are kept after an error; resent reports that it
// wrote some of them again.
func (n *node) commitRanges(ctx context.Context, auth rpc.OpaqueAuth, ranges []wrange) (e syscall.Errno, lost, resent bool) {
	if len(ranges) == 0 {
		return 0, false, false
	}
	c := n.f.sess.Client(auth)
	for attempt := 0; ; attempt++ {
		cur := n.f.sess.Epoch()
		var lostBytes int64
		for _, r := range ranges {
			if r.epoch != cur && !r.resend && !r.stable {
				lostBytes += int64(len(r.data))
			}
		}
		if lostBytes > 0 {
			n.f.log.Error("uncommitted writes lost in a failover", "path", n.path(), "bytes", lostBytes, "err", errLost)
			return syscall.EIO, true, resent
		}
		resentAll := len(ranges) > 0 && ranges[0].resend
		resent = resent || slices.ContainsFunc(ranges, func(r wrange) bool { return r.resend })
		if e := n.resend(ctx, auth, ranges); e != 0 {
			return e, false, resent
		}
		res, err := c.Commit(ctx, n.fh, 0, 0)
		if err != nil {
			if ctx.Err() != nil {
				return syscall.EINTR, false, resent
			}
			// The server may have dropped any of them (a failed
			// write-back): all are written again, at once if they
			// were not just now, else at the next fsync or close.
			for i := range ranges {
				ranges[i].resend = ranges[i].resend || !ranges[i].stable
			}
			if !resentAll && attempt < 5 {
				continue
			}
			n.f.log.Error("commit failed; the data is kept and written again at the next fsync or close", "path", n.path(), "err", err)
			return errno(err), false, resent
		}
		if n.f.sess.Epoch() != cur {
			continue // switched during the COMMIT: recheck
		}
		stale := 0
		for i := range ranges {
			if r := &ranges[i]; !r.stable && r.verf != res.Verf {
				r.resend = true
				stale++
			}
		}
		if stale == 0 {
			n.createSynced()
			return 0, false, resent
		}
		if attempt >= 5 {
			n.f.log.Error("write verifier keeps changing; giving up", "path", n.path())
			return syscall.EIO, false, resent
		}
		n.f.log.Warn("write verifier changed (server restarted or lost data); resending uncommitted data", "path", n.path(), "ranges", stale)
	}
}

// resend writes again, in order, the first range marked resend and every
// range after it: a later range may overlap it, and must land after it.
func (n *node) resend(ctx context.Context, auth rpc.OpaqueAuth, ranges []wrange) syscall.Errno {
	first := slices.IndexFunc(ranges, func(r wrange) bool { return r.resend })
	if first < 0 {
		return 0
	}
	for i := first; i < len(ranges); i++ {
		r := &ranges[i]
		epoch := n.f.sess.Epoch()
		verf, stable, err := n.writeRange(ctx, auth, r.off, r.data, proto.Unstable)
		if err != nil {
			r.resend = true
			if ctx.Err() != nil {
				return syscall.EINTR
			}
			n.f.log.Error("resend failed; the data is kept and written again at the next fsync or close", "path", n.path(), "err", err)
			return errno(err)
		}
		r.verf, r.stable, r.epoch, r.resend = verf, stable, epoch, false
	}
	return 0
}

// dropKept drops, at the last close, the data kept after a failed write
// or COMMIT, when the file has at most maxOpens open file descriptions:
// that close's flush (and every fsync before) reported the failure, and a
// file nobody has open holds no memory for it; the next opener starts
// clean, as with Linux's per-open write-back errors.
func (n *node) dropKept(maxOpens int) {
	n.mu.Lock()
	w := n.wLocked()
	var kept, bytes int
	for _, r := range w.sent {
		if r.resend {
			kept++
			bytes += len(r.data)
		}
	}
	if kept > 0 && n.opens <= maxOpens && len(w.inflight) == 0 && len(w.pending) == 0 {
		w.sent, w.sentBytes = nil, 0
		w.attrs = nil
	} else {
		kept = 0
	}
	n.mu.Unlock()
	if kept > 0 {
		n.f.log.Error("data not written (its failure was reported by fsync and close) dropped at the last close", "path", n.path(), "ranges", kept, "bytes", bytes)
		n.settle()
	}
}

// settle marks the file clean when nothing is left to write.
func (n *node) settle() {
	n.mu.Lock()
	clean := !n.w.dirty()
	if clean {
		n.w.size = 0
	}
	n.mu.Unlock()
	if clean {
		n.f.markDirty(n, false)
	}
}

// adjustSize reports the size and blocks including buffered writes, and
// the link count without a silly-renamed name.
func (n *node) adjustSize(a *gofuse.Attr) {
	n.mu.Lock()
	n.adjustLocked(a)
	n.mu.Unlock()
}

// adjustLocked is adjustSize with n.mu held; it also applies an
// attribute change not sent yet (attrs.go).
func (n *node) adjustLocked(a *gofuse.Attr) {
	if n.w.dirty() && n.w.size > a.Size {
		a.Size = n.w.size
		// The server has not counted the data held here: its 4 KiB
		// pages are added, in 512-byte units (st_blocks was 0 after
		// a write 1 TiB into an empty file, and stayed so in the
		// kernel's cache after the close: TestAttrEdgeCases).
		held := uint64(len(n.w.pending)) + uint64(n.w.inflightBytes)
		a.Blocks += (held + 4095) / 4096 * (4096 / 512)
	}
	if n.silly != "" && a.Nlink > 0 {
		a.Nlink--
	}
	n.overlayDeferred(a)
}

// truncated trims the data kept for resends to a new size.
func (n *node) truncated(size uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dropChunksLocked(-1)
	w := &n.w
	kept := w.sent[:0]
	w.sentBytes = 0
	for _, r := range w.sent {
		if uint64(r.off) >= size {
			continue
		}
		if end := uint64(r.off) + uint64(len(r.data)); end > size {
			r.data = r.data[:size-uint64(r.off)]
		}
		kept = append(kept, r)
		w.sentBytes += int64(len(r.data))
	}
	w.sent = kept
	if w.dirty() {
		w.size = size
	}
}

// loseUncommitted drops what was written before a switch to another copy
// of the data: the next fsync/close fails with EIO. It is logged now.
func (n *node) loseUncommitted(epoch uint64) {
	n.mu.Lock()
	w := n.wLocked()
	var lost int64
	kept := w.sent[:0]
	for _, r := range w.sent {
		if r.epoch < epoch {
			if !r.stable {
				lost += int64(len(r.data))
			}
			continue
		}
		kept = append(kept, r)
	}
	w.sent = kept
	lost += int64(len(w.pending))
	w.pending = nil
	w.sentBytes = 0
	for _, r := range w.sent {
		w.sentBytes += int64(len(r.data))
	}
	if lost > 0 || len(w.inflight) > 0 {
		w.err = errLost
	}
	inflight := len(w.inflight)
	n.mu.Unlock()
	if lost > 0 || inflight > 0 {
		n.f.log.Error("uncommitted writes lost in a failover; the file's next fsync/close fails with EIO",
			"path", n.path(), "bytes", lost, "writes_in_flight", inflight)
	}
}

// lateChunks is how far behind the newest read of a stream (in chunks) a
// read still belongs to it: the kernel's reads of a traced dd arrived up
// to two chunks behind the newest.
const lateChunks = 2

func (n *node) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	if t := n.served(f); t != n {
		return t.Read(ctx, f, dest, off)
	}
	auth := handleAuth(f, n, ctx)
	n.mu.Lock()
	w := n.wLocked()
	if len(w.pending) > 0 {
		n.sendLocked()
	}
	for len(w.inflight) > 0 {
		w.cond.Wait()
	}
	io := int64(n.f.o.IOSize)
	idx := off / io
	end := off + int64(len(dest))
	c, cached := n.ra.chunks[idx]
	// After a first read, a read at its end or a little behind the newest
	// one (the kernel's reads of one stream arrive out of order: go-fuse
	// serves them concurrently) continues the stream, and the position
	// never goes back for a late read. It used to be set to every read's
	// end, and only a read exactly there was sequential: with two reads
	// in flight, the second served first, none ever was (a READ of its
	// own per read, 8 per chunk of the kernel's 128 KiB reads).
	near := n.ra.next > 0 && off <= n.ra.next && n.ra.next-off <= lateChunks*io
	seq := (cached && !c.spent) || near
	if !seq {
		n.ra.next = end
		n.mu.Unlock()
		nr, err := n.readAt(ctx, auth, dest, off)
		if err != nil {
			return nil, errno(err)
		}
		return gofuse.ReadResultData(dest[:nr]), 0
	}
	if n.ra.chunks == nil {
		n.ra.chunks = map[int64]*chunk{}
	}
	// Chunks (and marks of spent ones) are kept a window behind the read.
	if behind := idx - int64(n.f.o.ReadAhead); behind > 0 {
		n.dropChunksLocked(behind)
	}
	for i := idx; i <= idx+int64(n.f.o.ReadAhead) && (i == idx || n.mayHoldLocked(i*io)); i++ {
		if _, ok := n.ra.chunks[i]; !ok {
			n.ra.chunks[i] = n.fetch(auth, i*io, int(io))
		}
	}
	last := idx
	if (off+int64(len(dest))-1)/io > idx {
		last = idx + 1
	}
	var want []*chunk
	for i := idx; i <= last; i++ {
		c := n.ra.chunks[i]
		if c.spent { // read again
			c = n.fetch(auth, i*io, int(io))
			n.ra.chunks[i] = c
		}
		want = append(want, c)
	}
	n.ra.next = max(n.ra.next, end)
	for _, c := range want {
		c.ref()
	}
	n.mu.Unlock()
	if len(want) == 1 {
		// Within one chunk: its data goes to the kernel as is (a chunk
		// is never changed once fetched), the chunk held until it went.
		c := want[0]
		if e := n.awaitChunk(ctx, c); e != 0 {
			c.unref()
			return nil, e
		}
		start := min(off-idx*io, int64(len(c.data)))
		end := min(start+int64(len(dest)), int64(len(c.data)))
		n.mu.Lock()
		n.servedLocked(idx, c, int(end-start))
		n.mu.Unlock()
		return &chunkResult{c: c, data: c.data[start:end]}, 0
	}
	defer func() {
		for _, c := range want {
			c.unref()
		}
	}()
	nr := 0
	for i, c := range want {
		if e := n.awaitChunk(ctx, c); e != 0 {
			return nil, e
		}
		start := off + int64(nr) - (idx+int64(i))*io
		if start >= int64(len(c.data)) {
			break
		}
		k := copy(dest[nr:], c.data[start:])
		nr += k
		n.f.readCopied.Add(int64(k))
		n.mu.Lock()
		n.servedLocked(idx+int64(i), c, k)
		n.mu.Unlock()
		if len(c.data) < int(io) {
			break // end of file
		}
	}
	return gofuse.ReadResultData(dest[:nr]), 0
}

// fetch reads one readahead chunk in the background.
func (n *node) fetch(auth rpc.OpaqueAuth, off int64, size int) *chunk {
	c := &chunk{done: make(chan struct{}), sess: n.f.sess}
	c.refs.Store(2) // the readahead map's, and this fetch's
	go func() {
		defer c.unref()
		defer close(c.done)
		// One READ answers it mostly: its reply's data is the chunk
		// (no copy); a short reply is completed by more READs.
		res, err := n.f.sess.Client(auth).Read(context.Background(), n.fh, uint64(off), uint32(size))
		if err != nil || res.EOF || len(res.Data) == 0 || len(res.Data) >= size {
			if err == nil {
				c.own = res.Data
				res.Data = res.Data[:min(len(res.Data), size)]
			}
			c.data, c.err = res.Data, err
			return
		}
		buf := make([]byte, size)
		got := copy(buf, res.Data)
		n.f.readCopied.Add(int64(got))
		n.f.sess.Recycle(res.Data)
		nr, err := n.readAt(context.Background(), auth, buf[got:], off+int64(got))
		c.data, c.err = buf[:got+nr], err
	}()
	return c
}

// readAt fills dest from off, stopping at the end of the file.
func (n *node) readAt(ctx context.Context, auth rpc.OpaqueAuth, dest []byte, off int64) (int, error) {
	c := n.f.sess.Client(auth)
	nr := 0
	for nr < len(dest) {
		want := min(len(dest)-nr, n.f.o.IOSize)
		res, err := c.Read(ctx, n.fh, uint64(off)+uint64(nr), uint32(want))
		if err != nil {
			return nr, err
		}
		k := copy(dest[nr:], res.Data)
		nr += k
		n.f.readCopied.Add(int64(k))
		if res.EOF || len(res.Data) == 0 {
			break
		}
	}
	return nr, nil
}

// Flush (every close) commits; if that fails and this is the file's only
// open file description, the data kept for resending is dropped: the
// close reports the failure (the kernel's RELEASE comes later, maybe
// after the next open).
// Flush and Fsync are not interrupted by signals (the kernel passes any
// signal to the caller, Go's runtime sends its threads some all the time):
// close(2) is not retried, and what it reports must be whether the data
// is committed, as with a hard NFS mount, whose close waits the same way.
func (n *node) Flush(ctx context.Context, f fs.FileHandle) syscall.Errno {
	if t := n.served(f); t != n {
		return t.Flush(ctx, f)
	}
	ctx = context.WithoutCancel(ctx)
	e := n.settleCreate(ctx, n.commit(ctx))
	if e != 0 {
		n.dropKept(1)
	}
	return e
}

// Fsync of a directory makes the creates in it durable (syncDir).
func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	if t := n.served(f); t != n {
		return t.Fsync(ctx, f, flags)
	}
	ctx = context.WithoutCancel(ctx)
	if n.IsDir() {
		return n.syncDir(ctx)
	}
	return n.settleCreate(ctx, n.commit(ctx))
}

// settleCreate follows a commit (e its outcome) of a file made by a create
// answered before it was durable (createExclusive): if no durable change
// of the file covered the create yet, a COMMIT (which a regionfs server
// answers once every such create is durable) does. A file found gone
// (ESTALE: the server restarted, or the mount failed over to a replica,
// before the create was durable) fails the close or fsync with EIO,
// logged with its path: it never existed for the
// server, whatever the application wrote to it.
func (n *node) settleCreate(ctx context.Context, e syscall.Errno) syscall.Errno {
	n.mu.Lock()
	unsynced := n.unsynced
	n.mu.Unlock()
	if !unsynced {
		return e
	}
	if e == 0 {
		_, err := n.f.client(ctx).Commit(ctx, n.fh, 0, 0)
		e = errno(err)
	}
	switch e {
	case 0:
		n.createSynced()
	case syscall.ESTALE:
		n.f.log.Error("file lost: the server restarted or failed over before its create was durable", "path", n.path(), "err", e)
		return syscall.EIO
	}
	return e
}

// createSynced notes that a durable change of the file was answered: its
// create is durable too (settleCreate).
func (n *node) createSynced() {
	n.mu.Lock()
	n.unsynced = false
	n.mu.Unlock()
}

// syncDir serves fsync of a directory: a COMMIT of it, which a regionfs
// server answers (NFS3ERR_ISDIR, as RFC 1813 has it) once every create
// answered before its sync is durable (createExclusive). Other servers'
// creates are durable when answered: nothing is sent.
func (n *node) syncDir(ctx context.Context) syscall.Errno {
	if _, regionfs := n.f.sess.Ordered(ctx); !regionfs {
		return 0
	}
	_, err := n.f.client(ctx).Commit(ctx, n.fh, 0, 0)
	if errors.Is(err, proto.ErrIsDir) {
		return 0
	}
	return errno(err)
}

// Release removes the silly-renamed name of an unlinked file at its last
// close.
func (n *node) Release(ctx context.Context, f fs.FileHandle) syscall.Errno {
	n.served(f).release(ctx)
	return 0
}

// release ends one open of the file.
func (n *node) release(ctx context.Context) {
	n.mu.Lock()
	n.opens--
	last := n.opens == 0
	if last {
		n.f.mu.Lock()
		n.f.noteOpenLocked(n, nil, false)
		n.f.mu.Unlock()
	}
	var silly string
	var dir *node
	if last && n.silly != "" {
		silly, dir = n.silly, n.sillyDir
		n.silly, n.sillyDir = "", nil
		n.removingLocked()
	}
	n.mu.Unlock()
	if last {
		defer n.dropKept(0)
	}
	if silly != "" {
		n.removeSilly(ctx, dir, silly)
		n.removeDone()
	}
}

// removingLocked counts a removal of the file on its way to the server
// (n.mu held): an open meanwhile waits for it, then finds the file gone
// (ESTALE: the kernel looks the name up again). Counted only after its
// GETATTR, such an open read ESTALE once the temporary name of an
// unlinked file was removed under it (a reader opening a path renamed
// over by another process, through an old lookup).
func (n *node) removingLocked() {
	n.removing++
	if n.removed == nil {
		n.removed = make(chan struct{})
		n.f.mu.Lock()
		n.f.removing[string(n.fh)] = n
		n.f.mu.Unlock()
	}
}

// removeSilly removes the temporary name of an unlinked file that is no
// longer open.
func (n *node) removeSilly(ctx context.Context, dir *node, silly string) {
	n.commit(ctx) // nothing may land after the name is gone
	res, err := dir.f.client(ctx).Remove(ctx, dir.fh, silly)
	dir.dirChanged(res.Wcc, okThen(err, removeName(silly)))
	if err != nil {
		n.f.log.Warn("removing an unlinked file's temporary name", "name", silly, "err", err)
	}
}

// Allocate emulates fallocate modes 0 and KEEP_SIZE: NFSv3 cannot reserve
// space, so mode 0 only extends the size (sparse) and KEEP_SIZE does
// nothing; other modes are EOPNOTSUPP.
func (n *node) Allocate(ctx context.Context, f fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	if t := n.served(f); t != n {
		return t.Allocate(ctx, f, off, size, mode)
	}
	const keepSize = 0x01
	switch mode {
	case 0:
	case keepSize:
		return 0
	default:
		return syscall.EOPNOTSUPP
	}
	n.attrsChanged()
	if e := n.writeBack(ctx); e != 0 {
		return e
	}
	res, err := n.f.client(ctx).GetAttr(ctx, n.fh)
	if err != nil {
		return errno(err)
	}
	end := off + size
	n.mu.Lock()
	local := n.w.size
	n.mu.Unlock()
	if end <= max(res.Attr.Size, local) {
		return 0
	}
	_, err = n.f.client(ctx).SetAttr(ctx, n.fh, proto.Sattr{Size: &end}, nil)
	return errno(err)
}

// awaitChunk waits for a readahead chunk; a failed one drops the
// readahead (the next read fetches again).
func (n *node) awaitChunk(ctx context.Context, c *chunk) syscall.Errno {
	select {
	case <-c.done:
	case <-ctx.Done():
		return syscall.EINTR
	}
	if c.err != nil {
		n.mu.Lock()
		n.dropChunksLocked(-1)
		n.mu.Unlock()
		return errno(c.err)
	}
	return 0
}

// killsPriv reports whether a write by the caller of ctx clears bits of
// mode: setuid, and setgid with group execute, when the caller is not
// root (Linux's should_remove_suid; the server does the clearing).
func killsPriv(ctx context.Context, mode uint32) bool {
	c, ok := gofuse.FromContext(ctx)
	if !ok || c.Uid == 0 {
		return false
	}
	return mode&0o4000 != 0 || mode&0o2010 == 0o2010
}
