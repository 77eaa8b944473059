package rpc

import (
	"fmt"
	"net"
	"slices"
	"sync/atomic"
)

// TLSWriter seals a TLS 1.3 session's application data itself, straight
// into its BatchConn's gathering buffer: crypto/tls copies the plaintext
// into its record buffer, seals it there and writes each record, which
// BatchConn must copy again (crypto/tls reuses its buffer); here the
// plaintext is copied once, into the record it becomes, and sealed in
// place. Like TLSReader it learns its traffic secret through the
// handshake's key log (TakeOver), and takes over from the first
// application data record: the side using it must have written none
// under the traffic key during the handshake (a client never does; a
// server must not send session tickets: TakeOver checks the setting).
//
// It moves to its next traffic secret (a KeyUpdate record first, RFC 8446
// 4.6.3) after keyUpdateRecords records under one key, before the next
// record after the peer asked for it (TLSReader sets answer), and asks
// the peer to move too when TLSReader has opened that many under the
// peer's key (ask). CloseNotify writes the close_notify alert crypto/tls
// can no longer write; after it, or after a failed write, it writes
// nothing and its secret is wiped. Write is used by RecordWriter, whose
// writers are serialised (the client); WriteRecord seals whole RPC
// records outside the lock, several at once, and writes them in the
// order it reserved their sequence numbers (the server's replies,
// tlsseal.go). BC's lock guards its key and sequence.
type TLSWriter struct {
	BC    *BatchConn
	key   trafficKey
	limit uint64 // records sealed under one key (0: keyUpdateRecords)
	err   error  // a failed write ends the stream (records may be lost)

	tickets ticketState // WriteRecord's reservations (tlsseal.go)

	// answer: the peer sent a KeyUpdate with update_requested; ask: the
	// reader wants the peer's key to move (set by the TLSReader).
	answer, ask atomic.Bool

	// KeyUpdates counts the KeyUpdates sent.
	KeyUpdates atomic.Uint64
}

// errWriterClosed is the writer's error after CloseNotify.
var errWriterClosed = fmt.Errorf("%w: closed: %w", errTLS, net.ErrClosed)

// Write seals p as application data records of up to MaxTLSPlaintext
// bytes each and hands them to BC.
func (w *TLSWriter) Write(p []byte) (int, error) {
	n := len(p)
	b := w.BC
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(p) > 0 {
		k := min(len(p), MaxTLSPlaintext)
		if err := w.sealLocked(tlsTypeAppData, p[:k]); err != nil {
			return 0, err
		}
		p = p[k:]
	}
	return n, nil
}

// CloseNotify writes a close_notify alert (what crypto/tls's Close would
// write, under a key it no longer has) and ends the stream: further
// writes fail.
func (w *TLSWriter) CloseNotify() error {
	b := w.BC
	b.mu.Lock()
	defer b.mu.Unlock()
	err := w.sealLocked(tlsTypeAlert, []byte{1, 0})
	if err == nil {
		err = b.flushLocked()
	}
	w.endLocked(errWriterClosed)
	return err
}

// endLocked ends the stream with err and wipes the key.
func (w *TLSWriter) endLocked(err error) {
	if w.err == nil {
		w.err = err
	}
	w.key.wipe()
}

// sealLocked appends one record of content p (at most MaxTLSPlaintext
// bytes) of type typ to BC's buffer, a KeyUpdate first when one is due,
// and writes the buffer out unless BC is held and the buffer is not
// full.
func (w *TLSWriter) sealLocked(typ byte, p []byte) error {
	// Records reserved by WriteRecord go first (their sequence numbers
	// are lower).
	w.waitTicketsLocked()
	if w.err != nil {
		return w.err
	}
	if req, due := w.updateDueLocked(); due {
		w.appendLocked(tlsTypeHandshake, []byte{tlsMsgKeyUpdate, 0, 0, 1, req})
		if err := w.key.update(); err != nil {
			w.endLocked(err)
			return err
		}
		w.KeyUpdates.Add(1)
	}
	w.appendLocked(typ, p)
	b := w.BC
	if b.holds == 0 || len(b.buf) >= b.flushBytes() {
		if err := b.flushLocked(); err != nil {
			w.endLocked(err)
			return err
		}
	}
	return nil
}

// appendLocked seals one record of content p and type typ onto BC's
// buffer under the current key.
func (w *TLSWriter) appendLocked(typ byte, p []byte) {
	b := w.BC
	size := len(p) + 1 + w.key.aead.Overhead()
	start := len(b.buf)
	b.buf = slices.Grow(b.buf, tlsRecordHeader+size)
	b.buf = append(b.buf, tlsTypeAppData, 3, 3, byte(size>>8), byte(size))
	b.buf = append(b.buf, p...)
	b.buf = append(b.buf, typ)
	rec := b.buf[start:]
	nonce := w.key.nonce()
	w.key.seq++
	w.key.aead.Seal(rec[tlsRecordHeader:tlsRecordHeader], nonce[:], rec[tlsRecordHeader:], rec[:tlsRecordHeader])
	b.buf = b.buf[:start+tlsRecordHeader+size]
}

// keyLimit is how many records the writer seals under one key.
func (w *TLSWriter) keyLimit() uint64 {
	if w.limit == 0 {
		return keyUpdateRecords
	}
	return w.limit
}
