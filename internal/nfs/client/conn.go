package client

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// ErrClosed is returned by calls on a closed connection.
var ErrClosed = errors.New("nfs client: connection closed")

// MaxRecordBytes bounds a reply record.
const MaxRecordBytes = 4 << 20

// Conn is one RPC connection. It is safe for concurrent use.
type Conn struct {
	nc   net.Conn
	xid  atomic.Uint32
	wmu  sync.Mutex // serialises writes
	mu   sync.Mutex // guards the fields below
	wait map[uint32]chan reply
	err  error // why the connection ended
	done chan struct{}
	// bufs, when set, gives large replies their buffers.
	bufs atomic.Pointer[Buffers]
	// turns, when set, counts the calls sent while no other call of
	// this connection was waiting for its reply (Session.Turns).
	turns atomic.Pointer[atomic.Uint64]
	// writes, when set, counts the writes of calls to the connection
	// (Session.Writes).
	writes atomic.Pointer[atomic.Uint64]
	// limits are the server's transfer sizes once known (limits.go),
	// for a Client on the connection alone (a Session keeps its own).
	limits atomic.Pointer[ioLimits]
	// ordered is what the server answered to proto.ProgRegionFS
	// (orderedYes, orderedNo; 0 before it is asked).
	ordered atomic.Int32
}

const (
	orderedYes = 1
	orderedNo  = 2
)

// Ordered reports whether the server promises to run the WRITEs,
// SETATTRs and COMMITs of one file in the order it reads them from this
// connection (it answers proto.ProgRegionFS), asking it at the first
// call. Any other answer, or none within orderedAskTimeout, is no for the
// connection; a caller that gave up (ctx), or a connection that failed,
// is told no and asks again next time.
func (c *Conn) Ordered(ctx context.Context) bool {
	switch c.ordered.Load() {
	case orderedYes:
		return true
	case orderedNo:
		return false
	}
	actx, cancel := context.WithTimeout(ctx, orderedAskTimeout)
	defer cancel()
	_, err := c.CallRaw(actx, rpc.CallHeader{Prog: proto.ProgRegionFS, Vers: proto.VersRegionFS, Proc: proto.ProcNull}, nil)
	c.mu.Lock()
	failed := c.err != nil
	c.mu.Unlock()
	switch {
	case err == nil:
		c.ordered.Store(orderedYes)
	case ctx.Err() == nil && !failed:
		c.ordered.Store(orderedNo)
	}
	return err == nil
}

// orderedAskTimeout bounds Ordered's question (a server that drops calls
// to programs it does not know).
const orderedAskTimeout = 5 * time.Second

type reply struct {
	msg []byte
	err error
}

// Dial connects to addr ("host:port").
func Dial(ctx context.Context, addr string) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return NewConn(nc), nil
}

// NewConn runs the client protocol on an established connection.
func NewConn(nc net.Conn) *Conn {
	c := &Conn{nc: nc, wait: map[uint32]chan reply{}, done: make(chan struct{})}
	var seed [4]byte
	_, _ = rand.Read(seed[:]) // never fails (crypto/rand)
	c.xid.Store(uint32(seed[0])<<24 | uint32(seed[1])<<16 | uint32(seed[2])<<8 | uint32(seed[3]))
	go c.read()
	return c
}

// UseBuffers makes large replies come in buffers of b (handed back
// with b.Put once their data is no longer needed).
func (c *Conn) UseBuffers(b *Buffers) { c.bufs.Store(b) }

// Close closes the connection and waits for its reader.
func (c *Conn) Close() error {
	err := c.nc.Close()
	<-c.done
	return err
}

func (c *Conn) read() {
	defer close(c.done)
	br := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		var buf []byte
		if b := c.bufs.Load(); b != nil {
			if h, err := br.Peek(4); err == nil && int(binary.BigEndian.Uint32(h)&^(1<<31)) >= recycleMin {
				buf = b.get()
			}
		}
		rec, err := rpc.ReadRecord(br, buf, MaxRecordBytes)
		if err != nil {
			c.fail(err)
			return
		}
		if len(rec) < 4 {
			c.fail(fmt.Errorf("nfs client: short reply record"))
			return
		}
		xid := uint32(rec[0])<<24 | uint32(rec[1])<<16 | uint32(rec[2])<<8 | uint32(rec[3])
		c.mu.Lock()
		ch := c.wait[xid]
		delete(c.wait, xid)
		c.mu.Unlock()
		if ch != nil {
			ch <- reply{msg: rec}
		}
	}
}

func (c *Conn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
	case errors.Is(err, rpc.ErrRecordTooLarge):
		// Kept visible: a reply this client cannot read is the call's,
		// not the path's (Session gives such a call up).
		c.err = fmt.Errorf("%w: %w", ErrClosed, err)
	default:
		c.err = fmt.Errorf("%w: %v", ErrClosed, err)
	}
	for x, ch := range c.wait {
		ch <- reply{err: c.err}
		delete(c.wait, x)
	}
}

// NextXID takes an XID from the connection's sequence.
func (c *Conn) NextXID() uint32 { return c.xid.Add(1) }

// CallRaw sends a call with the given header and encoded arguments, and
// returns the results of a successful reply. A reply that is not a
// success is a *rpc.ReplyError. A zero XID is assigned from the
// connection's sequence (a retransmission passes its first attempt's).
func (c *Conn) CallRaw(ctx context.Context, h rpc.CallHeader, args []byte) ([]byte, error) {
	return c.CallRawBuffers(ctx, h, [][]byte{args})
}

// CallRawBuffers is CallRaw with the encoded arguments in pieces, which
// are sent one after the other.
func (c *Conn) CallRawBuffers(ctx context.Context, h rpc.CallHeader, args [][]byte) ([]byte, error) {
	if h.XID == 0 {
		h.XID = c.NextXID()
	}
	msg, err := c.roundTrip(ctx, h.XID, encodeCall(h, args)...)
	if err != nil {
		return nil, err
	}
	_, res, err := rpc.ParseReply(msg)
	return res, err
}

// encodeCall returns the record of a call with header h (its XID set)
// and the encoded arguments args, in pieces to write in order.
func encodeCall(h rpc.CallHeader, args [][]byte) [][]byte {
	n := 0
	for _, a := range args {
		n += len(a)
	}
	if n <= copyArgsBytes {
		e := xdr.NewEncoder(make([]byte, 0, rpc.RecordHeaderSize+callHeaderBytes+len(h.Cred.Body)+n))
		e.Reserve(rpc.RecordHeaderSize)
		h.Encode(e)
		rec := e.Bytes()
		for _, a := range args {
			rec = append(rec, a...)
		}
		rpc.FinishRecord(rec)
		return [][]byte{rec}
	}
	// Large arguments (a WRITE's data) are not copied behind the
	// header: they leave with it in one writev.
	e := xdr.NewEncoder(make([]byte, 0, rpc.RecordHeaderSize+callHeaderBytes+len(h.Cred.Body)+len(args[0])))
	e.Reserve(rpc.RecordHeaderSize)
	h.Encode(e)
	hdr := e.Bytes()
	rest := args
	if len(args[0]) <= copyArgsBytes {
		hdr = append(hdr, args[0]...) // a small head goes with the header
		rest = args[1:]
	}
	tail := 0
	for _, a := range rest {
		tail += len(a)
	}
	rpc.FinishRecordWithTail(hdr, tail)
	return append([][]byte{hdr}, rest...)
}

// Encoding a call: arguments up to copyArgsBytes are copied behind the
// header (one buffer); callHeaderBytes is the header without the
// credential's body.
const (
	copyArgsBytes   = 16 << 10
	callHeaderBytes = 64
)

// buffersWriter is a connection that writes several buffers as one write
// (the TLS connection: its records leave together).
type buffersWriter interface {
	WriteBuffers(bufs [][]byte) error
}

// SendRecord writes raw bytes on the connection and waits for the reply
// with the given XID (tests of malformed calls).
func (c *Conn) SendRecord(ctx context.Context, xid uint32, raw []byte) ([]byte, error) {
	return c.roundTrip(ctx, xid, raw)
}

func (c *Conn) roundTrip(ctx context.Context, xid uint32, rec ...[]byte) ([]byte, error) {
	chs, err := c.send(ctx, []uint32{xid}, rec)
	if err != nil {
		return nil, err
	}
	return c.await(ctx, xid, chs[0])
}

// send writes records (pieces of the calls with XIDs xids, in order) in
// one write, each call's reply to come on its channel (await).
func (c *Conn) send(ctx context.Context, xids []uint32, rec [][]byte) ([]chan reply, error) {
	chs := make([]chan reply, len(xids))
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	for i, xid := range xids {
		chs[i] = make(chan reply, 1)
		c.wait[xid] = chs[i]
	}
	if t := c.turns.Load(); t != nil && len(c.wait) == len(xids) {
		t.Add(1)
	}
	c.mu.Unlock()
	c.wmu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetWriteDeadline(dl)
	} else {
		_ = c.nc.SetWriteDeadline(time.Time{})
	}
	var err error
	switch w, ok := c.nc.(buffersWriter); {
	case len(rec) == 1:
		_, err = c.nc.Write(rec[0])
	case ok:
		err = w.WriteBuffers(rec)
	default:
		bufs := net.Buffers(rec)
		_, err = bufs.WriteTo(c.nc) // writev on a TCP connection
	}
	c.wmu.Unlock()
	if w := c.writes.Load(); w != nil {
		w.Add(1)
	}
	if err != nil {
		c.mu.Lock()
		for _, xid := range xids {
			delete(c.wait, xid)
		}
		c.mu.Unlock()
		if ctx.Err() != nil {
			return nil, ctx.Err() // the write deadline was the context's
		}
		return nil, err
	}
	if f, _ := ctx.Value(sentKey{}).(func(*Conn)); f != nil {
		f(c)
	}
	return chs, nil
}

// await waits for the reply to the call xid sent with send.
func (c *Conn) await(ctx context.Context, xid uint32, ch chan reply) ([]byte, error) {
	select {
	case r := <-ch:
		return r.msg, r.err
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.wait, xid)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

type sentKey struct{}

// WithSent returns ctx carrying f, which a call made with it runs as soon
// as its request is written to the connection, before the reply (on each
// attempt: f must allow being run again). A caller uses it to send a
// second call that the server must read after the first one.
func WithSent(ctx context.Context, f func()) context.Context {
	return WithSentOn(ctx, func(*Conn) { f() })
}

// WithSentOn is WithSent for an f that is told the connection the
// request was written to.
func WithSentOn(ctx context.Context, f func(*Conn)) context.Context {
	return context.WithValue(ctx, sentKey{}, f)
}

// Client is a connection (or a reconnecting Session) with a credential.
type Client struct {
	*Conn // nil for a Session's client
	Auth  rpc.OpaqueAuth
	sess  *Session
}

// WithAuth returns a client using auth on the same connection.
func (c *Conn) WithAuth(auth rpc.OpaqueAuth) *Client { return &Client{Conn: c, Auth: auth} }

// Unix returns an AUTH_UNIX credential.
func Unix(host string, uid, gid uint32, groups ...uint32) rpc.OpaqueAuth {
	return rpc.UnixCred{MachineName: host, UID: uid, GID: gid, GIDs: groups}.Auth()
}

// Call runs one procedure: args are encoded, the result decoded into res.
func (c *Client) Call(ctx context.Context, prog, vers, proc uint32, args, res proto.Message) error {
	_, err := c.callResent(ctx, prog, vers, proc, args, res)
	return err
}

// callResent is Call that also reports whether a session sent a change
// again on a new connection.
func (c *Client) callResent(ctx context.Context, prog, vers, proc uint32, args, res proto.Message) (bool, error) {
	if c.sess != nil {
		return c.sess.callResent(ctx, c.Auth, prog, vers, proc, args, res)
	}
	return false, c.callConn(ctx, prog, vers, proc, args, res)
}

func (c *Client) callConn(ctx context.Context, prog, vers, proc uint32, args, res proto.Message) error {
	out, err := c.CallRawBuffers(ctx, rpc.CallHeader{Prog: prog, Vers: vers, Proc: proc, Cred: c.Auth}, encodeArgs(args))
	if err != nil {
		return err
	}
	return decodeReply(out, res, prog, vers, proc)
}

// decodeReply decodes the reply out of procedure prog/vers/proc into res.
func decodeReply(out []byte, res proto.Message, prog, vers, proc uint32) error {
	d := xdr.NewDecoder(out)
	res.Decode(d)
	if err := d.Done(); err != nil {
		return fmt.Errorf("nfs client: decode reply of %d/%d/%d: %w", prog, vers, proc, err)
	}
	return nil
}
