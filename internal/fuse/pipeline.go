package fuse

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// A small file closed with an attribute change waiting for its data (cp -a:
// attrs.go) costs, in commit, a WRITE UNSTABLE, then (after its reply) the
// SETATTR with the COMMIT right behind it: two round trips. A server that
// runs the WRITEs, SETATTRs and COMMITs of a file in the order it reads them
// (regionfs: it answers proto.ProgRegionFS) is sent the three back to back:
// one round trip. The order is the server's promise on one connection only,
// so the result is trusted when each call went out exactly once, all on
// that connection (a reconnection retries calls in any order), the data
// was written whole and the COMMIT's verifier is the WRITE's. Anything else
// (a failure, a retry, another verifier) leaves the file as the WRITE left
// it, and commit goes on as without this: it commits again (now after the
// WRITE's reply), writes again what the server may have lost, and sends the
// change again after the data. close still returns once the data and the
// change are durable, or with their failure.

// sentOnce records the connections a call's request was written to.
type sentOnce struct {
	mu    sync.Mutex // guards the fields below
	n     int
	conn  *client.Conn
	first chan struct{} // closed at the first send
}

func newSentOnce() *sentOnce { return &sentOnce{first: make(chan struct{})} }

func (s *sentOnce) sent(c *client.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n++; s.n == 1 {
		close(s.first)
	}
	s.conn = c
}

// onlyOn reports whether the call went out once, on c.
func (s *sentOnce) onlyOn(c *client.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n == 1 && s.conn == c
}

// commitPipelined commits a small file whose deferred change waits for its
// data (see above) in one round trip when the server orders the calls.
// commit carries on after it: with nothing left to do, or with the file in
// the state the WRITE (if sent) left it.
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

	type writeOut struct {
		res *proto.WriteRes
		err error
	}
	type attrOut struct {
		res *proto.SetAttrRes
		err error
	}
	ws, as, cs := newSentOnce(), newSentOnce(), newSentOnce()
	wdone, adone := make(chan writeOut, 1), make(chan attrOut, 1)
	go func() {
		res, err := n.f.sess.Client(auth).Write(client.WithSentOn(context.Background(), ws.sent), n.fh, uint64(off), data, proto.Unstable)
		wdone <- writeOut{res, err}
	}()
	var (
		wo      writeOut
		ao      attrOut
		cres    *proto.CommitRes
		cerr    error
		settled bool // wo is in
	)
	select {
	case <-ws.first:
	case wo = <-wdone:
		settled = true
	}
	if !settled || wo.err == nil {
		go func() {
			res, err := n.f.sess.Client(d.auth).SetAttr(client.WithSentOn(ctx, as.sent), n.fh, sa, nil)
			adone <- attrOut{res, err}
		}()
		select {
		case <-as.first:
			cres, cerr = n.f.sess.Client(auth).Commit(client.WithSentOn(ctx, cs.sent), n.fh, 0, 0)
		case ao = <-adone:
			adone <- ao
			cerr = errNotSent
		}
		ao = <-adone
	} else {
		ao.err, cerr = errNotSent, errNotSent
	}
	if !settled {
		wo = <-wdone
	}

	ok = wo.err == nil && ao.err == nil && cerr == nil &&
		int(wo.res.Count) == len(data) && wo.res.Verf == cres.Verf &&
		ws.onlyOn(conn) && as.onlyOn(conn) && cs.onlyOn(conn) && n.f.sess.Epoch() == epoch
	n.mu.Lock()
	if !ok {
		// As the WRITE left it: commit goes on from here.
		var verf [proto.WriteVerfSize]byte
		werr := wo.err
		switch {
		case werr == nil && int(wo.res.Count) != len(data):
			werr = fmt.Errorf("%w: server wrote %d of %d bytes", syscall.EIO, wo.res.Count, len(data))
		case werr == nil:
			verf = wo.res.Verf
		}
		n.writeDone(sp, data, verf, werr == nil && wo.res.Committed == proto.FileSync, epoch, werr)
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
	w.cond.Broadcast()
	n.mu.Unlock()
	n.f.reuse(data)
	after := cres.Wcc.After
	if after == nil {
		after = ao.res.Wcc.After
	}
	n.fileAttr(after)
}

// errNotSent stands for a call not made (one before it failed).
var errNotSent = errors.New("not sent")
