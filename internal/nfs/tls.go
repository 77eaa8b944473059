package nfs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"log/slog"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// NFS over TLS (RFC 9289). A client either sends a NULL call with an
// AUTH_TLS credential (the probe); the server answers it with the
// STARTTLS verifier and both run a TLS handshake on the same connection,
// after which RPC records flow inside TLS. Or it starts the connection
// with a TLS ClientHello (stunnel, as efs-utils uses it). Without
// Options.TLS the probe is refused with AUTH_ERROR AUTH_BADCRED, like any
// unknown flavor, and a ClientHello is not a valid record (connection
// closed). A probe inside a TLS session is answered as a NULL call,
// without the STARTTLS token (handleIn).

// tlsHandshakeRecord is the first byte of a TLS handshake record; an RPC
// record mark starts with the last-fragment bit set (0x80 or more) for
// any record under 2 GiB, so the two never collide.
const tlsHandshakeRecord = 0x16

// ALPNSunRPC is the ALPN protocol id RFC 9289 assigns to RPC-with-TLS.
const ALPNSunRPC = "sunrpc"

// isTLSProbe reports whether rec is an RFC 9289 probe: a call to
// procedure 0 with an AUTH_TLS credential.
func isTLSProbe(rec []byte) bool {
	// xid, msg_type, rpcvers, prog, vers, proc, cred flavor
	if len(rec) < 28 || binary.BigEndian.Uint32(rec[4:]) != rpc.Call {
		return false
	}
	return binary.BigEndian.Uint32(rec[20:]) == 0 && binary.BigEndian.Uint32(rec[24:]) == rpc.AuthTLS
}

// answerProbe answers an AUTH_TLS probe and, when TLS is offered, starts
// it. It returns the reader to continue with, nil when the connection is
// done.
func (c *conn) answerProbe(br *bufio.Reader, rec []byte) *bufio.Reader {
	xid := binary.BigEndian.Uint32(rec)
	e := xdr.NewEncoder(nil)
	e.Reserve(rpc.RecordHeaderSize)
	if c.s.o.TLS == nil {
		rpc.AppendAuthError(e, xid, rpc.AuthBadCred)
		b := e.Bytes()
		rpc.FinishRecord(b)
		c.send(b)
		return br
	}
	rpc.AppendStartTLS(e, xid)
	b := e.Bytes()
	rpc.FinishRecord(b)
	c.send(b)
	// A ClientHello is due (RFC 9289 §4.1): a TLS handshake record. A
	// plain call instead (a record mark, first fragment or last) or
	// anything else is neither run nor answered with an RPC reply; the
	// client learns what happened from a TLS unexpected_message alert,
	// and the log says it, where crypto/tls would report an
	// "unsupported SSLv2 handshake" (a last fragment's mark) or a record
	// that does not look like a handshake, and answer protocol_version.
	c.setReadDeadline(time.Now().Add(c.s.o.HandshakeTimeout))
	if p, err := br.Peek(1); err == nil && p[0] != tlsHandshakeRecord {
		msg := "nfs data that is not a TLS ClientHello after the AUTH_TLS probe: closing the connection"
		attrs := []any{"remote", c.remote}
		if br.Buffered() >= 12 {
			p, _ := br.Peek(12) // record mark, xid, msg_type
			if binary.BigEndian.Uint32(p[8:]) == rpc.Call {
				msg = "nfs plain-text call after the AUTH_TLS probe, where a TLS ClientHello was due: closing the connection"
				attrs = append(attrs, "xid", binary.BigEndian.Uint32(p[4:]))
			}
		}
		c.s.logRefusal(slog.LevelInfo, msg, attrs...)
		c.s.met.tlsHandshakes.WithLabelValues("failed").Inc()
		c.send([]byte(alertUnexpectedMessage))
		c.nc.Close()
		return nil
	}
	return c.startTLS(br)
}

// certRequired reports whether the server's TLS requires client
// certificates (nfs.tls_client_auth: require): then it serves NFS over TLS
// only, since a plain-text client presents no certificate.
func (s *Server) certRequired() bool {
	return s.o.TLS != nil && (s.o.TLS.ClientAuth == tls.RequireAnyClientCert || s.o.TLS.ClientAuth == tls.RequireAndVerifyClientCert)
}

// refusePlain answers a plain-text call on a server that requires client
// certificates with AUTH_ERROR AUTH_TOOWEAK ("rejected for security
// reasons"), logs it (once a second with a count: any client the security
// group admits can repeat it) and closes the connection. A record that is
// not a call is not answered.
func (c *conn) refusePlain(rec []byte) {
	attrs := []any{"remote", c.remote}
	if len(rec) >= 8 && binary.BigEndian.Uint32(rec[4:]) == rpc.Call {
		xid := binary.BigEndian.Uint32(rec)
		attrs = append(attrs, "xid", xid)
		e := xdr.NewEncoder(nil)
		e.Reserve(rpc.RecordHeaderSize)
		rpc.AppendAuthError(e, xid, rpc.AuthTooWeak)
		b := e.Bytes()
		rpc.FinishRecord(b)
		c.send(b)
	}
	c.s.logRefusal(slog.LevelWarn, "nfs plain-text client refused: client certificates are required (nfs.tls_client_auth: require), so only NFS over TLS is served; closing the connection", attrs...)
	c.nc.Close()
}

// alertUnexpectedMessage is a TLS record with a fatal unexpected_message
// alert (RFC 8446 §6: content type 21, legacy record version 3.3, two
// bytes: level 2, description 10).
const alertUnexpectedMessage = "\x15\x03\x03\x00\x02\x02\x0a"

// startTLS runs the server side of a TLS handshake on the connection,
// reading what br has buffered first. It returns the reader of the TLS
// session, nil when the handshake failed (the connection is closed).
func (c *conn) startTLS(br *bufio.Reader) *bufio.Reader {
	cfg := c.s.o.TLS.Clone()
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{ALPNSunRPC}
	}
	// Full TLS records from the start: RecordWriter packs them.
	cfg.DynamicRecordSizingDisabled = true
	// Under the session: reads in large pieces (what br read ahead
	// first), and the TLS records of a reply written together.
	// The handshake is read a record at a time, so that the calls after
	// it are rpc.TLSReader's to decrypt straight into their buffers.
	ahead, _ := br.Peek(br.Buffered())
	raw := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), c.nc), tlsReadBufferBytes)
	bc := &rpc.BatchConn{Conn: c.nc, R: &rpc.HandshakeReader{R: raw}, FlushBytes: rpc.BatchWholeReply,
		Bufs: c.s.o.Budgets.TLSReplies}
	log := &rpc.KeyLog{Next: cfg.KeyLogWriter}
	defer log.Clear() // a failed handshake's secrets too
	cfg.KeyLogWriter = log
	// No session tickets: they would be the first records under the
	// traffic key, written by crypto/tls before rpc.TLSWriter takes
	// over. (A reconnecting client runs a full handshake.)
	cfg.SessionTicketsDisabled = true
	tc := tls.Server(bc, cfg)
	// Bounded by HandshakeTimeout, and ended at once by stopReading
	// (Shutdown): rctx's cancellation closes the connection, and the
	// read deadline is not moved past stopReading's.
	ctx, cancel := context.WithTimeout(c.rctx, c.s.o.HandshakeTimeout)
	defer cancel()
	c.setReadDeadline(time.Now().Add(c.s.o.HandshakeTimeout))
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.o.HandshakeTimeout))
	err := tc.HandshakeContext(ctx)
	c.setReadDeadline(time.Time{})
	_ = c.nc.SetWriteDeadline(time.Time{})
	if err != nil {
		c.s.logRefusal(slog.LevelInfo, "nfs tls handshake failed", "remote", c.remote, "err", err)
		c.s.met.tlsHandshakes.WithLabelValues("failed").Inc()
		c.nc.Close()
		return nil
	}
	// Calls read and replies sealed straight into their buffers by
	// rpc.TLSReader and rpc.TLSWriter, or, when they decline, crypto/tls
	// all along. After the takeover tc is not kept: crypto/tls writing
	// anything would reuse the writer's nonces (the connection is
	// closed on the socket, c.nc).
	tr, tw, err := rpc.TakeOver(tc, raw, bc, log, false, cfg.SessionTicketsDisabled)
	if err != nil {
		c.s.logRefusal(slog.LevelInfo, "nfs tls handshake failed", "remote", c.remote, "err", err)
		c.s.met.tlsHandshakes.WithLabelValues("failed").Inc()
		c.nc.Close()
		return nil
	}
	bc.R = raw // crypto/tls reads on only when it keeps the session
	var out io.Writer = tc
	if tw != nil {
		out = tw
	}
	st := tc.ConnectionState()
	c.wmu.Lock()
	c.out = &rpc.RecordWriter{W: out, BC: bc}
	// Replies sealed outside wmu, in parallel, each written in its turn
	// (rpc.TLSWriter.WriteRecord).
	c.tlsOut = tw
	c.wmu.Unlock()
	c.tls = true
	if len(st.PeerCertificates) > 0 {
		c.peer = st.PeerCertificates[0].Subject.String()
	}
	c.s.met.tlsHandshakes.WithLabelValues("ok").Inc()
	c.s.log.Debug("nfs tls", "remote", c.remote, "version", tls.VersionName(st.Version), "client_cert", c.peer)
	if tr != nil {
		c.tlsIn.Store(tr)
		return bufio.NewReaderSize(tr, readerBufferBytes)
	}
	return bufio.NewReaderSize(tc, readerBufferBytes)
}

// tlsReadBufferBytes is how much a TLS connection reads from the socket
// at once (crypto/tls would otherwise read about one TLS record, 16 KiB,
// per system call).
const tlsReadBufferBytes = 64 << 10
