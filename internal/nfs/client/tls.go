package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// ErrNoTLS: the server does not offer RPC-with-TLS.
var ErrNoTLS = errors.New("nfs client: server does not offer TLS")

// DialTLS connects to addr and protects the connection with TLS the RFC
// 9289 way: an AUTH_TLS probe, then a handshake on the same connection
// (ALPN "sunrpc"). cfg names the CA and, for mutual TLS, the client
// certificate; its ServerName defaults to addr's host.
func DialTLS(ctx context.Context, addr string, cfg *tls.Config) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			nc.Close()
			return nil, err
		}
		cfg.ServerName = host
	}
	return NewTLSConn(ctx, nc, cfg)
}

// NewTLSConn is DialTLS on an established connection nc (closed when it
// fails); cfg names the server (ServerName) and the CA.
func NewTLSConn(ctx context.Context, nc net.Conn, cfg *tls.Config) (*Conn, error) {
	cfg = cfg.Clone()
	// Under the session: reads in large pieces, and the TLS records of
	// a call written together. The handshake is read a record at a
	// time, so that the replies after it are rpc.TLSReader's to decrypt
	// straight into their buffers.
	br := bufio.NewReaderSize(nc, tlsReadBufferBytes)
	bc := &rpc.BatchConn{Conn: nc, R: &rpc.HandshakeReader{R: br}}
	log := &rpc.KeyLog{Next: cfg.KeyLogWriter}
	defer log.Clear() // a failed handshake's secrets too
	cfg.KeyLogWriter = log
	tc, err := startTLS(ctx, nc, bc, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	tr, tw, err := rpc.TakeOver(tc, br, bc, log, true, false)
	if err != nil {
		// Nothing sealed under the traffic keys yet, but crypto/tls
		// must not write either: close the socket.
		nc.Close()
		return nil, fmt.Errorf("nfs client: tls: %w", err)
	}
	bc.R = br // crypto/tls reads on only when it keeps the session
	if tr == nil {
		return NewConn(&tlsConn{nc: nc, tc: tc, rw: &rpc.RecordWriter{W: tc, BC: bc}}), nil
	}
	// Read and sealed straight into the buffers; tc is dropped (its
	// write path would reuse the writer's nonces).
	return NewConn(&tlsConn{nc: nc, rw: &rpc.RecordWriter{W: tw, BC: bc}, tr: tr, tw: tw}), nil
}

// tlsReadBufferBytes is how much a TLS connection reads from the socket
// at once (crypto/tls would otherwise read about one TLS record, 16 KiB,
// per system call).
const tlsReadBufferBytes = 256 << 10

// tlsConn is a TLS session whose writes (each one whole RPC record, or its
// pieces: Conn writes a call at once) are packed into full TLS records
// that leave together, in as few system calls as they can. Either
// crypto/tls runs the session (tc), or rpc.TLSReader and rpc.TLSWriter
// do (tr, tw) and no *tls.Conn is left to reach: crypto/tls writing
// anything (a close_notify, a KeyUpdate) after the takeover would seal
// with the writer's key and sequence number, reusing an AES-GCM nonce.
// So tlsConn embeds nothing: it has net.Conn's methods and WriteBuffers.
type tlsConn struct {
	nc net.Conn          // the TCP connection: addresses, deadlines, Close
	tc *tls.Conn         // crypto/tls's session; nil after the takeover
	rw *rpc.RecordWriter // over tc or tw
	tr *rpc.TLSReader    // nil: crypto/tls's session
	tw *rpc.TLSWriter    // nil: crypto/tls's session
}

var _ net.Conn = (*tlsConn)(nil)

// Close ends the session (close_notify) and closes the connection.
func (t *tlsConn) Close() error {
	if t.tc != nil {
		return t.tc.Close()
	}
	_ = t.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_ = t.tw.CloseNotify()
	return t.nc.Close()
}

func (t *tlsConn) Write(p []byte) (int, error) { return t.rw.Write(p) }

// Read reads the server's replies, decrypted into p where they fit.
func (t *tlsConn) Read(p []byte) (int, error) {
	if t.tr != nil {
		return t.tr.Read(p)
	}
	return t.tc.Read(p)
}

func (t *tlsConn) LocalAddr() net.Addr                { return t.nc.LocalAddr() }
func (t *tlsConn) RemoteAddr() net.Addr               { return t.nc.RemoteAddr() }
func (t *tlsConn) SetDeadline(d time.Time) error      { return t.nc.SetDeadline(d) }
func (t *tlsConn) SetReadDeadline(d time.Time) error  { return t.nc.SetReadDeadline(d) }
func (t *tlsConn) SetWriteDeadline(d time.Time) error { return t.nc.SetWriteDeadline(d) }

// WriteBuffers writes the buffers (one or more whole RPC records: a
// call, or a batch of them) in as few writes as one Write of them all
// would take.
func (t *tlsConn) WriteBuffers(bufs [][]byte) error {
	t.rw.BC.Hold()
	for _, b := range bufs {
		if _, err := t.rw.Write(b); err != nil {
			_ = t.rw.BC.Release()
			return err
		}
	}
	return t.rw.BC.Release()
}

// StartTLS runs the AUTH_TLS probe on nc and, when the server accepts it,
// the client side of the TLS handshake.
func StartTLS(ctx context.Context, nc net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	return startTLS(ctx, nc, nc, cfg)
}

// startTLS probes on nc, then runs TLS over under (nc, or a wrapper of
// it).
func startTLS(ctx context.Context, nc, under net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	} else {
		_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	}
	defer nc.SetDeadline(time.Time{})
	xid := uint32(time.Now().UnixNano())
	e := xdr.NewEncoder(nil)
	e.Reserve(rpc.RecordHeaderSize)
	h := rpc.CallHeader{XID: xid, Prog: proto.ProgNFS, Vers: proto.VersNFS, Proc: 0, Cred: rpc.OpaqueAuth{Flavor: rpc.AuthTLS}}
	h.Encode(e)
	rec := e.Bytes()
	rpc.FinishRecord(rec)
	if _, err := nc.Write(rec); err != nil {
		return nil, fmt.Errorf("nfs client: tls probe: %w", err)
	}
	// Read exactly one record without buffering past it: the TLS
	// handshake follows on the same bytes.
	msg, err := rpc.ReadRecord(bufio.NewReaderSize(&oneByOne{nc}, 16), nil, 4096)
	if err != nil {
		return nil, fmt.Errorf("nfs client: tls probe reply: %w", err)
	}
	rx, _, rerr := rpc.ParseReply(msg)
	if rx != xid {
		return nil, fmt.Errorf("nfs client: tls probe: reply to another call")
	}
	v, ok := rpc.ParseReplyVerifier(msg)
	if rerr != nil || !ok || string(v.Body) != rpc.StartTLS {
		return nil, fmt.Errorf("%w (probe answered %v)", ErrNoTLS, rerr)
	}
	cfg = cfg.Clone()
	if !slices.Contains(cfg.NextProtos, "sunrpc") {
		cfg.NextProtos = append(cfg.NextProtos, "sunrpc")
	}
	cfg.DynamicRecordSizingDisabled = true
	tc := tls.Client(under, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("nfs client: tls handshake: %w", err)
	}
	return tc, nil
}

// oneByOne reads at most what the record needs: bufio asks for up to its
// size; this hands out the bytes of the record header and body without
// reading the peer's next message.
type oneByOne struct{ nc net.Conn }

func (o *oneByOne) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.nc.Read(p)
}

// TLSRead reports what the connection's TLS session decrypted straight
// into the buffers the replies were read into (direct) and what it
// copied out of its own record buffer (staged); both are 0 when
// crypto/tls reads the session (then every byte is staged).
func (c *Conn) TLSRead() (direct, staged uint64) {
	if t, ok := c.nc.(*tlsConn); ok && t.tr != nil {
		return t.tr.Direct.Load(), t.tr.Staged.Load()
	}
	return 0, 0
}
