package fuse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// A small file closed with an attribute change waiting for its data (cp -a:
// attrs.go) costs, in commit, a WRITE UNSTABLE, then (after its reply) the
// SETATTR with the COMMIT right behind it: two round trips. A server that
// runs the WRITEs, SETATTRs and COMMITs of a file in the order it reads them
// (regionfs: it answers proto.ProgRegionFS) is sent the three back to back,
// in one write on one connection (client.Session.Batch: no goroutine per
// call, one system call, and the server reads them together): one round
// trip. The order is the server's promise on one connection only, and the
// batch is never sent again, so the result is trusted when all three were
// answered, the data was written whole and the COMMIT's verifier is the
// WRITE's. Anything else (a failure, a lost connection, another verifier)
// leaves the file as the WRITE left it — a WRITE without a reply is written
// again through the session first — and commit goes on as without this: it
// commits again (now after the WRITE's reply), writes again what the server
// may have lost, and sends the change again after the data. close still
// returns once the data and the change are durable, or with their failure.

// commitPipelined commits a small file whose deferred change waits for its
// data (see above) in one round trip when the server orders the calls.
// commit carries on after it: with nothing left to do, or with the file in
// the state the WRITE (if sent) left it.
//
// A server that has REGIONFS_CLOSE (proto.ProcRegionFSClose) is sent the
// three as that one call, when the WRITE and the SETATTR are made with the
// same credential: one request and one reply where the batch took three of
// each, and on the server one worker's wake-up instead of three, two of
// them waiting in the order gate for the call before. The server serves
// the three parts as it serves the calls, each with its result, and the
// results are taken as the batch's are. Unlike the batch, the call goes
// through the session, which sends it again on a new connection when it
// gets no reply: each part does the same again (data at its offset,
// attributes set to the values given, a COMMIT).
func (n *node) commitPipelined(ctx context.Context) {
	eligible := func(w *wstate) bool {
		return w.attrs != nil && len(w.pending) > 0 && len(w.pending) <= n.f.o.IOSize &&
			len(w.inflight) == 0 && len(w.sent) == 0 && w.err == nil
	}
	n.mu.Lock()
	ok := eligible(n.wLocked())
	n.mu.Unlock()
	if !ok {
		return
	}
	conn, ordered := n.f.sess.Ordered(ctx)
	if !ordered {
		return
	}
	n.mu.Lock()
	w := n.wLocked()
	if !eligible(w) {
		n.mu.Unlock()
		return
	}
	data, off := w.pending, w.pendOff
	w.pending = nil
	sp := span{off, off + int64(len(data))}
	w.inflight = append(w.inflight, sp)
	w.inflightBytes += int64(len(data))
	auth, d, sa := w.auth, w.attrs, w.attrs.sa
	epoch := n.f.sess.Epoch()
	n.mu.Unlock()

	wres, ares, cres := &proto.WriteRes{}, &proto.SetAttrRes{}, &proto.CommitRes{}
	calls := []*client.Call{
		{Auth: auth, Proc: proto.ProcWrite, Args: &proto.WriteArgs{FH: n.fh, Offset: uint64(off), Count: uint32(len(data)), Stable: proto.Unstable, Data: data}, Res: wres, Status: &wres.Status},
		{Auth: d.auth, Proc: proto.ProcSetAttr, Args: &proto.SetAttrArgs{FH: n.fh, Attr: sa}, Res: ares, Status: &ares.Status},
		{Auth: auth, Proc: proto.ProcCommit, Args: &proto.CommitArgs{FH: n.fh}, Res: cres, Status: &cres.Status},
	}
	if !n.closeCall(ctx, conn, calls, off, data, sa) {
		n.f.sess.Batch(ctx, conn, calls)
	}
	werr := calls[0].Err
	if calls[0].Transport() {
		// No reply: the data may or may not be on the server. Written
		// again through the session (which retries), as a WRITE of the
		// close always was; the change and the COMMIT follow below.
		var verf [proto.WriteVerfSize]byte
		var stable bool
		verf, stable, werr = n.writeRange(context.Background(), auth, off, data, proto.Unstable)
		wres.Count, wres.Verf, wres.Committed = uint32(len(data)), verf, proto.Unstable
		if stable {
			wres.Committed = proto.FileSync
		}
	}
	ok = werr == nil && calls[1].Err == nil && calls[2].Err == nil && !calls[0].Transport() &&
		int(wres.Count) == len(data) && wres.Verf == cres.Verf && n.f.sess.Epoch() == epoch
	n.mu.Lock()
	if !ok {
		// As the WRITE left it: commit goes on from here.
		var verf [proto.WriteVerfSize]byte
		switch {
		case werr == nil && int(wres.Count) != len(data):
			werr = fmt.Errorf("%w: server wrote %d of %d bytes", syscall.EIO, wres.Count, len(data))
		case werr == nil:
			verf = wres.Verf
		}
		n.writeDone(sp, data, verf, werr == nil && wres.Committed == proto.FileSync, epoch, werr)
		n.mu.Unlock()
		return
	}
	for i, s := range w.inflight {
		if s == sp {
			w.inflight = append(w.inflight[:i], w.inflight[i+1:]...)
			break
		}
	}
	w.inflightBytes -= int64(len(data))
	if w.attrs == d && w.attrs.sa == sa {
		w.attrs = nil // else changed meanwhile: sent by the next fsync or close
	}
	n.unsynced = false // the COMMIT answered: the create is durable too
	w.cond.Broadcast()
	n.mu.Unlock()
	n.f.reuse(data)
	after := cres.Wcc.After
	if after == nil {
		after = ares.Wcc.After
	}
	n.fileAttr(after)
}

// closeCall makes calls (commitPipelined's WRITE, SETATTR and COMMIT of
// data at off and the change sa) as one REGIONFS_CLOSE when conn's server
// has it and one credential makes all three, filling in their results and
// errors as Session.Batch does; it reports whether it did.
func (n *node) closeCall(ctx context.Context, conn *client.Conn, calls []*client.Call, off int64, data []byte, sa proto.Sattr) bool {
	auth := calls[0].Auth
	if n.f.noClose.Load() == conn || auth.Flavor != calls[1].Auth.Flavor || !bytes.Equal(auth.Body, calls[1].Auth.Body) {
		return false
	}
	res, err := n.f.sess.Client(auth).CloseFile(ctx, n.fh, uint64(off), data, proto.Unstable, sa)
	if errors.Is(err, client.ErrNoProc) {
		// A regionfs server older than the procedure (it did nothing):
		// not asked again on this connection.
		n.f.noClose.Store(conn)
		return false
	}
	*calls[0].Res.(*proto.WriteRes) = res.Write
	*calls[1].Res.(*proto.SetAttrRes) = res.SetAttr
	*calls[2].Res.(*proto.CommitRes) = res.Commit
	for _, c := range calls {
		c.Err = err // no reply: none of the three is known to be done
		if err == nil && *c.Status != proto.OK {
			c.Err = *c.Status
		}
	}
	return true
}
