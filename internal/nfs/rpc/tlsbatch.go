package rpc

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
)

// RPC over TLS (RFC 9289) carries each RPC record as TLS records of at
// most 16 KiB of plaintext, and crypto/tls writes every TLS record with a
// system call of its own: a 1 MiB READ reply would take 64 writes (and
// wake the reader as often), where plain TCP takes one. BatchConn and
// RecordWriter put the TLS records of one RPC record on the wire together.

// MaxTLSPlaintext is the most plaintext one TLS record carries.
const MaxTLSPlaintext = 16 << 10

// batchFlushBytes bounds what a BatchConn gathers before it writes,
// unless its FlushBytes says otherwise.
const batchFlushBytes = 256 << 10

// BatchWholeReply is a FlushBytes that holds a whole 1 MiB READ reply
// (65 TLS records of its data and header) for one write: the NFS
// server's. Sent in 256 KiB writes, a reply cost the server and the
// mount more CPU in system calls and wake-ups (bench/mount README,
// tls15) than the earlier start of the client's decryption saved.
const BatchWholeReply = 1<<20 + 64<<10

// BatchConn is the connection under a TLS session. Between Hold and
// Release the session's writes are gathered in memory and leave in
// writes of up to FlushBytes; otherwise they go straight through (the
// handshake's flights). Reads come from R when it is set (bytes read
// ahead before the handshake, then the connection).
type BatchConn struct {
	net.Conn
	R io.Reader
	// FlushBytes is what is gathered before a write while held (0:
	// 256 KiB).
	FlushBytes int
	// Bufs, when set, lends the gathering buffer: taken at the outermost
	// Hold, given back at its Release, so that a server's idle
	// connections hold none (and TLSWriter.WriteRecord seals into its
	// buffers). Without it the connection keeps its own.
	Bufs *Buffers

	mu    sync.Mutex // guards the fields below
	holds int        // Holds not yet Released: gathering while > 0
	buf   []byte
}

// Read reads from R, or from the connection.
func (b *BatchConn) Read(p []byte) (int, error) {
	if b.R != nil {
		return b.R.Read(p)
	}
	return b.Conn.Read(p)
}

// Write gathers p while held, else writes it.
func (b *BatchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.holds == 0 {
		return b.Conn.Write(p)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= b.flushBytes() {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Hold starts gathering writes. Holds nest: the gathered writes leave at
// the Release of the outermost (a client's batch of calls, each RPC
// record held by RecordWriter, in one write).
func (b *BatchConn) Hold() {
	b.mu.Lock()
	b.holds++
	if b.buf == nil && b.Bufs != nil {
		b.buf = b.Bufs.take()
	}
	b.mu.Unlock()
}

// Release ends a Hold; the outermost writes what was gathered and lets
// writes through again.
func (b *BatchConn) Release() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.holds--; b.holds > 0 {
		return nil
	}
	b.holds = 0
	err := b.flushLocked()
	if b.buf != nil && b.Bufs != nil {
		b.Bufs.give(b.buf)
		b.buf = nil
	}
	return err
}

// Buffers is a free list of the large buffers a server's TLS connections
// gather (BatchConn.Bufs) and seal (TLSWriter.WriteRecord) their replies
// in, kept between RPC records: a server makes one for all its
// connections (the NFS server's is in its Budgets, which the mount
// targets of a region share). A free list rather than a sync.Pool,
// which the garbage collector empties (a fresh 1 MiB buffer costs its
// page faults) and the race detector drops from at random. A nil
// *Buffers keeps nothing.
type Buffers struct {
	free chan []byte
}

// NewBuffers returns a free list that keeps at most n buffers.
func NewBuffers(n int) *Buffers {
	return &Buffers{free: make(chan []byte, n)}
}

// Len is how many buffers l keeps now.
func (l *Buffers) Len() int {
	if l == nil {
		return 0
	}
	return len(l.free)
}

// take returns a kept buffer, emptied, or nil.
func (l *Buffers) take() []byte {
	if l == nil {
		return nil
	}
	select {
	case b := <-l.free:
		return b
	default:
		return nil
	}
}

// give keeps b, unless l is full (dropped: enough are kept).
func (l *Buffers) give(b []byte) {
	if l == nil {
		return
	}
	select {
	case l.free <- b[:0]:
	default:
	}
}

func (b *BatchConn) flushBytes() int {
	if b.FlushBytes > 0 {
		return b.FlushBytes
	}
	return batchFlushBytes
}

func (b *BatchConn) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// RecordWriter writes RPC records, handed over whole or in pieces (a
// reply's header, then its data), to a TLS session W running over BC:
// the pieces are packed into full TLS records, and the TLS records of one
// RPC record leave together when its last fragment is complete. It reads
// the record marks of what it is given to know where a record ends. It is
// not safe for concurrent use (writers of a connection are serialised).
type RecordWriter struct {
	W  io.Writer // the TLS session
	BC *BatchConn

	stage   []byte // plaintext not yet handed to W (< MaxTLSPlaintext)
	mark    [RecordHeaderSize]byte
	nmark   int   // bytes of the current fragment header seen
	left    int64 // bytes of the current fragment body not yet seen
	last    bool  // the current fragment ends its record
	holding bool
}

// Write passes p on; the RPC record it completes (if any) is written out.
func (r *RecordWriter) Write(p []byte) (int, error) {
	n := len(p)
	if !r.holding {
		r.BC.Hold()
		r.holding = true
	}
	for len(p) > 0 {
		if r.nmark < RecordHeaderSize {
			k := copy(r.mark[r.nmark:], p)
			if err := r.put(p[:k]); err != nil {
				return 0, r.fail(err)
			}
			r.nmark += k
			p = p[k:]
			if r.nmark < RecordHeaderSize {
				break
			}
			h := binary.BigEndian.Uint32(r.mark[:])
			r.left, r.last = int64(h&^lastFragment), h&lastFragment != 0
		} else {
			k := int(min(r.left, int64(len(p))))
			if err := r.put(p[:k]); err != nil {
				return 0, r.fail(err)
			}
			r.left -= int64(k)
			p = p[k:]
		}
		if r.left == 0 {
			r.nmark = 0 // the fragment is complete
			if r.last {
				if err := r.endRecord(); err != nil {
					return 0, err
				}
				if len(p) > 0 {
					r.BC.Hold()
					r.holding = true
				}
			}
		}
	}
	return n, nil
}

// put hands q to the TLS session in whole TLS records, keeping the rest.
func (r *RecordWriter) put(q []byte) error {
	if len(r.stage)+len(q) < MaxTLSPlaintext {
		r.stage = append(r.stage, q...)
		return nil
	}
	if len(r.stage) > 0 {
		k := MaxTLSPlaintext - len(r.stage)
		r.stage = append(r.stage, q[:k]...)
		q = q[k:]
		if _, err := r.W.Write(r.stage); err != nil {
			return err
		}
		r.stage = r.stage[:0]
	}
	if whole := len(q) - len(q)%MaxTLSPlaintext; whole > 0 {
		if _, err := r.W.Write(q[:whole]); err != nil {
			return err
		}
		q = q[whole:]
	}
	r.stage = append(r.stage, q...)
	return nil
}

// endRecord writes the staged tail and the gathered TLS records.
func (r *RecordWriter) endRecord() error {
	var err error
	if len(r.stage) > 0 {
		_, err = r.W.Write(r.stage)
		r.stage = r.stage[:0]
	}
	r.holding = false
	if rerr := r.BC.Release(); err == nil {
		err = rerr
	}
	return err
}

func (r *RecordWriter) fail(err error) error {
	r.holding = false
	r.stage = r.stage[:0]
	r.BC.Release()
	return err
}
