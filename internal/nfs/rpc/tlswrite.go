package rpc

import (
	"crypto/tls"
	"fmt"
	"slices"
)

// TLSWriter seals a TLS 1.3 session's application data itself, straight
// into its BatchConn's gathering buffer: crypto/tls copies the plaintext
// into its record buffer, seals it there and writes each record, which
// BatchConn must copy again (crypto/tls reuses its buffer); here the
// plaintext is copied once, into the record it becomes, and sealed in
// place. Like TLSReader it learns its traffic secret through the
// handshake's key log, and takes over from the first application data
// record: the side using it must have written none under the traffic
// key during the handshake (a client never does; a server must not send
// session tickets: NewTLSWriter checks the setting). Alerts and
// close_notify stay crypto/tls's: it no longer writes, so Close only
// closes the connection. It is used by RecordWriter, whose writers are
// serialised.
type TLSWriter struct {
	BC  *BatchConn
	key trafficKey
	err error // a failed write ends the stream (records may be lost)
}

// NewTLSWriter returns a writer of tc's application data onto bc, or nil
// when the session is not one it writes (see NewTLSReader). client says
// which side this is; a server's configuration must disable session
// tickets (else nil).
func NewTLSWriter(tc *tls.Conn, bc *BatchConn, log *KeyLog, client bool, ticketsDisabled bool) (*TLSWriter, error) {
	label := "SERVER_TRAFFIC_SECRET_0"
	if client {
		label = "CLIENT_TRAFFIC_SECRET_0"
	} else if !ticketsDisabled {
		return nil, nil
	}
	secret := log.take(label)
	k, ok, err := newTrafficKey(tc, secret, label)
	if !ok || err != nil {
		return nil, err
	}
	return &TLSWriter{BC: bc, key: k}, nil
}

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
// write, under a key it no longer has).
func (w *TLSWriter) CloseNotify() error {
	b := w.BC
	b.mu.Lock()
	defer b.mu.Unlock()
	return w.sealLocked(tlsTypeAlert, []byte{1, 0})
}

// sealLocked appends one record of content p (at most MaxTLSPlaintext
// bytes) of type typ to BC's buffer, and writes the buffer out unless BC
// is held and the buffer is not full.
func (w *TLSWriter) sealLocked(typ byte, p []byte) error {
	b := w.BC
	if w.err != nil {
		return w.err
	}
	if w.key.seq == 1<<63 {
		return fmt.Errorf("%w: too many records on one key", errTLS)
	}
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
	if !b.held || len(b.buf) >= batchFlushBytes {
		w.err = b.flushLocked()
		return w.err
	}
	return nil
}
