package rpc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
)

// The receiving side of a TLS 1.3 session, after crypto/tls's handshake.
//
// crypto/tls reads a record into its own buffer (a copy from the bytes
// read off the socket), decrypts it there and copies the plaintext into
// the caller's buffer: two copies of every byte beside the cipher, which
// in a 1 MiB READ reply went to the reply buffer cold (a quarter of the
// mount's extra CPU over TLS, bench/mount README). TLSReader decrypts each
// record straight from the bytes read off the socket into the caller's
// buffer (the reply or request buffer), so the cipher's own pass is the
// only one. It learns the peer's traffic secret through the handshake's
// key log (Config.KeyLogWriter, the one interface crypto/tls offers for
// it) and takes over from the first application data record: a
// handshake read through HandshakeReader stops at the end of the
// handshake's last record, so crypto/tls reads nothing of what follows.
// Writes are TLSWriter's (TakeOver returns both or neither). Anything but
// TLS 1.3 with AES-GCM stays wholly crypto/tls's (TakeOver says no).
//
// After the handshake it understands application data, alerts (a
// close_notify ends the stream; any other alert is an error), and the
// post-handshake messages a peer may send: NewSessionTicket (ignored) and
// KeyUpdate (RFC 8446 4.6.3: the read key moves to the next secret; one
// with update_requested makes the writer send a KeyUpdate of its own
// before its next record). When it has opened keyUpdateRecords records
// under one key it has the writer's next KeyUpdate ask the peer to move
// too (Go's crypto/tls never starts one, but answers). Anything else
// (another handshake message, a KeyUpdate not ending its record, more
// than maxUselessRecords records in a row without application data) is
// an error that ends the stream.

// TLS record layer constants (RFC 8446).
const (
	tlsRecordHeader  = 5
	tlsMaxCiphertext = MaxTLSPlaintext + 256
	tlsTypeAlert     = 21
	tlsTypeHandshake = 22
	tlsTypeAppData   = 23
	tlsMsgTicket     = 4
	tlsMsgKeyUpdate  = 24
)

// maxUselessRecords is how many records in a row may bring no
// application data (empty ones, tickets, KeyUpdates: each costs a
// decryption, a KeyUpdate a key schedule), as crypto/tls allows.
const maxUselessRecords = 16

// TLSReadBufferMin is the smallest buffer under a TLSReader (one whole
// record must fit in it).
const TLSReadBufferMin = tlsRecordHeader + tlsMaxCiphertext

// HandshakeReader is what crypto/tls reads a handshake from: R's bytes,
// never past the end of a TLS record, so that crypto/tls, which reads as
// much as it is given, takes no bytes of the records after the handshake.
type HandshakeReader struct {
	R    *bufio.Reader
	left int // bytes of the current record not yet read
}

// Read reads at most the rest of the current record.
func (h *HandshakeReader) Read(p []byte) (int, error) {
	if h.left == 0 {
		hdr, err := h.R.Peek(tlsRecordHeader)
		if err != nil {
			if len(hdr) == 0 {
				return 0, err
			}
			// A short header: let crypto/tls see it and the error.
			h.left = len(hdr)
		} else {
			h.left = tlsRecordHeader + int(binary.BigEndian.Uint16(hdr[3:]))
		}
	}
	n, err := h.R.Read(p[:min(len(p), h.left)])
	h.left -= n
	return n, err
}

// TLSReader reads the application data of a TLS 1.3 session from R (see
// above). It is not safe for concurrent use.
type TLSReader struct {
	r       *bufio.Reader
	key     trafficKey
	w       *TLSWriter // this side's writer: answers the peer's KeyUpdates
	limit   uint64     // records opened under one key before the peer is asked to move (0: keyUpdateRecords)
	useless int        // records in a row without application data
	plain   []byte     // plaintext of the last record not yet returned
	spare   []byte     // storage of plain
	err     error

	// Direct counts the application data bytes decrypted straight into
	// a caller's buffer; Staged those that went through the reader's own
	// buffer (a record larger than what the caller asked for).
	Direct, Staged atomic.Uint64
	// KeyUpdates counts the peer's KeyUpdates followed.
	KeyUpdates atomic.Uint64
}

// errTLS wraps the reader's protocol failures.
var errTLS = errors.New("rpc: tls")

// Read returns application data: decrypted into p directly when the
// record's plaintext fits, then as many further whole records as are
// already buffered and fit.
func (t *TLSReader) Read(p []byte) (int, error) {
	if len(t.plain) > 0 {
		n := copy(p, t.plain)
		t.plain = t.plain[n:]
		return n, nil
	}
	if t.err != nil {
		return 0, t.err
	}
	n := 0
	for len(p) > 0 {
		if n > 0 {
			// More only if a whole record is here already.
			if t.r.Buffered() < tlsRecordHeader {
				break
			}
			hdr, _ := t.r.Peek(tlsRecordHeader)
			if t.r.Buffered() < tlsRecordHeader+int(binary.BigEndian.Uint16(hdr[3:])) {
				break
			}
		}
		k, err := t.record(p)
		if err != nil {
			// A deadline's timeout leaves the stream whole (nothing
			// of the record was consumed): the next Read tries again.
			if ne := net.Error(nil); !errors.As(err, &ne) || !ne.Timeout() {
				t.err = err
				t.key.wipe() // the stream is over: its secret is not needed
			}
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		n += k
		p = p[k:]
		if len(t.plain) > 0 {
			k := copy(p, t.plain)
			t.plain = t.plain[k:]
			n += k
			break
		}
	}
	return n, nil
}

// record reads one record; application data goes into p when its
// plaintext fits (the count returned), else to t.plain.
func (t *TLSReader) record(p []byte) (int, error) {
	hdr, err := t.r.Peek(tlsRecordHeader)
	if err != nil {
		if err == io.EOF && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	size := int(binary.BigEndian.Uint16(hdr[3:]))
	if hdr[0] != tlsTypeAppData || size > tlsMaxCiphertext || size <= t.key.aead.Overhead() {
		return 0, fmt.Errorf("%w: record type %d of %d bytes", errTLS, hdr[0], size)
	}
	rec, err := t.r.Peek(tlsRecordHeader + size)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	nonce := t.key.nonce()
	direct := len(p) >= size-t.key.aead.Overhead()
	dst := t.spare[:0]
	if direct {
		dst = p[:0]
	}
	out, err := t.key.aead.Open(dst, nonce[:], rec[tlsRecordHeader:], rec[:tlsRecordHeader])
	_, _ = t.r.Discard(tlsRecordHeader + size)
	if err != nil {
		return 0, fmt.Errorf("%w: record %d: %v", errTLS, t.key.seq, err)
	}
	t.key.seq++
	if t.key.seq == t.keyLimit() && t.w != nil {
		t.w.ask.Store(true)
	}
	end := len(out)
	for end > 0 && out[end-1] == 0 {
		end-- // padding
	}
	if end == 0 {
		return 0, fmt.Errorf("%w: record without a content type", errTLS)
	}
	typ, content := out[end-1], out[:end-1]
	if typ == tlsTypeAppData && len(content) > 0 {
		t.useless = 0
	} else if t.useless++; t.useless > maxUselessRecords {
		return 0, fmt.Errorf("%w: %d records in a row without application data", errTLS, t.useless)
	}
	switch typ {
	case tlsTypeAppData:
		if direct {
			t.Direct.Add(uint64(len(content)))
			return len(content), nil
		}
		t.Staged.Add(uint64(len(content)))
		t.plain = content
		return 0, nil
	case tlsTypeAlert:
		if len(content) == 2 && content[1] == 0 {
			return 0, io.EOF // close_notify
		}
		return 0, fmt.Errorf("%w: alert %v", errTLS, content)
	case tlsTypeHandshake:
		return 0, t.handshake(content)
	}
	return 0, fmt.Errorf("%w: content type %d", errTLS, typ)
}

// handshake handles post-handshake messages (each whole in its record:
// NewSessionTicket and KeyUpdate are small).
func (t *TLSReader) handshake(b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty handshake record", errTLS)
	}
	for len(b) > 0 {
		if len(b) < 4 {
			return fmt.Errorf("%w: short handshake message", errTLS)
		}
		n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		if len(b) < 4+n {
			return fmt.Errorf("%w: handshake message split across records", errTLS)
		}
		switch msg := b[4 : 4+n]; b[0] {
		case tlsMsgTicket:
		case tlsMsgKeyUpdate:
			if len(msg) != 1 || msg[0] > 1 {
				return fmt.Errorf("%w: bad key update", errTLS)
			}
			// RFC 8446 5.1: a message before a key change ends its
			// record.
			if len(b) != 4+n {
				return fmt.Errorf("%w: key update not at the end of its record", errTLS)
			}
			if msg[0] == 1 && t.w == nil {
				return fmt.Errorf("%w: the peer asks for a key update of a side this reader does not write", errTLS)
			}
			if err := t.key.update(); err != nil {
				return err
			}
			t.KeyUpdates.Add(1)
			if t.w != nil {
				// Asking the peer to move its key is moot now.
				t.w.ask.Store(false)
				if msg[0] == 1 {
					t.w.answer.Store(true)
				}
			}
		default:
			return fmt.Errorf("%w: handshake message %d after the handshake", errTLS, b[0])
		}
		b = b[4+n:]
	}
	return nil
}

// keyLimit is how many records the reader opens under one key before it
// asks the peer to move to its next.
func (t *TLSReader) keyLimit() uint64 {
	if t.limit == 0 {
		return keyUpdateRecords
	}
	return t.limit
}
