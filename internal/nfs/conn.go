package nfs

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/rpc"
)

// conn is one client connection: a reader that parses records and hands
// each to its own goroutine (at most MaxInflightPerConn at once), and
// replies written whole, in completion order, under wmu.
type conn struct {
	s      *Server
	nc     net.Conn  // the TCP connection (deadlines, Close)
	out    io.Writer // where replies go: nc, or the TLS session on it
	tls    bool      // the connection is protected by TLS (set before any request runs)
	peer   string    // the client certificate's subject, with mutual TLS
	remote netip.AddrPort
	local  netip.AddrPort
	ctx    context.Context // canceled when the listener's Serve ends
	sem    chan struct{}
	reqWG  sync.WaitGroup

	wmu    sync.Mutex // serialises replies
	broken bool       // a write failed; guarded by wmu

	stopMu  sync.Mutex // guards stopped
	stopped bool
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 4<<20 {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

func (s *Server) startConn(ctx context.Context, nc net.Conn) {
	c := &conn{s: s, nc: nc, out: nc, ctx: ctx, sem: make(chan struct{}, s.o.MaxInflightPerConn)}
	c.remote, _ = netip.ParseAddrPort(nc.RemoteAddr().String())
	c.local, _ = netip.ParseAddrPort(nc.LocalAddr().String())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	s.met.conns.Inc()
	go c.serve()
}

// stopReading makes the reader stop after the record it is reading; the
// requests in flight still get their replies.
func (c *conn) stopReading() {
	c.stopMu.Lock()
	c.stopped = true
	c.stopMu.Unlock()
	_ = c.nc.SetReadDeadline(time.Now())
}

func (c *conn) isStopped() bool {
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	return c.stopped
}

func (c *conn) serve() {
	defer func() {
		c.reqWG.Wait()
		c.nc.Close()
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		c.s.met.conns.Dec()
		c.s.connWG.Done()
	}()
	stop := context.AfterFunc(c.ctx, func() { c.nc.Close() })
	defer stop()
	br := bufio.NewReaderSize(c.nc, 64<<10)
	if c.s.o.TLS != nil {
		// A TLS ClientHello first (stunnel, efs-utils): TLS from the start.
		_ = c.nc.SetReadDeadline(time.Now().Add(c.s.o.IdleTimeout))
		if b, err := br.Peek(1); err == nil && b[0] == tlsHandshakeRecord {
			if br = c.startTLS(br); br == nil {
				return
			}
		}
	}
	for {
		if c.isStopped() {
			return
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(c.s.o.IdleTimeout))
		buf := getBuf()
		rec, err := rpc.ReadRecord(br, *buf, c.s.o.MaxRecordBytes)
		if err != nil {
			putBuf(buf)
			c.logReadError(err)
			return
		}
		*buf = rec
		if !c.tls && isTLSProbe(rec) {
			// RFC 9289: answer the AUTH_TLS probe, then TLS on this
			// connection. Replies still in flight go out first.
			c.reqWG.Wait()
			br = c.answerProbe(br, rec)
			putBuf(buf)
			if br == nil {
				return
			}
			continue
		}
		// Bound the requests of this connection, then of the server.
		c.sem <- struct{}{}
		select {
		case c.s.sem <- struct{}{}:
		case <-c.ctx.Done():
			<-c.sem
			putBuf(buf)
			return
		}
		c.reqWG.Add(1)
		go func() {
			defer func() {
				putBuf(buf)
				<-c.s.sem
				<-c.sem
				c.reqWG.Done()
			}()
			c.handle(rec)
		}()
	}
}

func (c *conn) logReadError(err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), c.isStopped():
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.s.log.Debug("nfs connection idle", "remote", c.remote)
	case errors.Is(err, rpc.ErrRecordTooLarge):
		c.s.log.Warn("nfs record too large, closing connection", "remote", c.remote, "err", err)
	default:
		c.s.log.Debug("nfs connection closed", "remote", c.remote, "err", err)
	}
}

// send writes one complete record (its header already in place), given
// in one or more pieces.
func (c *conn) send(rec ...[]byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.broken {
		return
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.o.WriteTimeout))
	var err error
	if len(rec) == 1 {
		_, err = c.out.Write(rec[0])
	} else {
		bufs := net.Buffers(rec)
		_, err = bufs.WriteTo(c.out)
	}
	if err != nil {
		c.broken = true
		c.s.log.Debug("nfs reply write failed", "remote", c.remote, "err", err)
		c.nc.Close()
	}
}
