package rpc

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"strings"
	"sync"
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
// Writes stay crypto/tls's. Anything but TLS 1.3 with AES-GCM stays wholly
// crypto/tls's (NewTLSReader says no).
//
// After the handshake it understands application data, alerts (a
// close_notify ends the stream), and the post-handshake messages a peer may
// send: NewSessionTicket (ignored) and KeyUpdate (the read key is
// updated; one asking for ours to be updated too ends the connection,
// since the writing side is crypto/tls's: regionfs's server and client
// never ask, Go's crypto/tls only answers).

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

// TLSReadBufferMin is the smallest buffer under a TLSReader (one whole
// record must fit in it).
const TLSReadBufferMin = tlsRecordHeader + tlsMaxCiphertext

// KeyLog collects the traffic secrets of one handshake (set it as the
// connection's Config.KeyLogWriter). Next, when set, is given every line
// too (a key log the configuration had).
type KeyLog struct {
	Next io.Writer

	mu      sync.Mutex
	secrets map[string][]byte
}

// Write takes one NSS key log line ("LABEL client_random secret").
func (k *KeyLog) Write(line []byte) (int, error) {
	if k.Next != nil {
		if _, err := k.Next.Write(line); err != nil {
			return 0, err
		}
	}
	f := bytes.Fields(line)
	if len(f) == 3 {
		s := make([]byte, hex.DecodedLen(len(f[2])))
		if _, err := hex.Decode(s, f[2]); err == nil {
			k.mu.Lock()
			if k.secrets == nil {
				k.secrets = map[string][]byte{}
			}
			k.secrets[string(f[0])] = s
			k.mu.Unlock()
		}
	}
	return len(line), nil
}

// take returns the secret with the label and forgets it, and the
// handshake's secrets.
func (k *KeyLog) take(label string) []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.secrets[label]
	delete(k.secrets, label)
	for l, v := range k.secrets {
		if strings.Contains(l, "HANDSHAKE") {
			clear(v)
			delete(k.secrets, l)
		}
	}
	return s
}

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
	r     *bufio.Reader
	key   trafficKey
	plain []byte // plaintext of the last record not yet returned
	spare []byte // storage of plain
	err   error

	// Direct counts the application data bytes decrypted straight into
	// a caller's buffer; Staged those that went through the reader's own
	// buffer (a record larger than what the caller asked for).
	Direct, Staged atomic.Uint64
}

// NewTLSReader returns a reader of tc's application data from r (which
// tc's handshake was read from through a HandshakeReader over r, with
// log as its key log), or nil when the session is not one it reads
// (not TLS 1.3 with AES-GCM, no secret logged): crypto/tls then reads as
// usual. client says which side this is (it reads the server's data).
func NewTLSReader(tc *tls.Conn, r *bufio.Reader, log *KeyLog, client bool) (*TLSReader, error) {
	label := "CLIENT_TRAFFIC_SECRET_0"
	if client {
		label = "SERVER_TRAFFIC_SECRET_0"
	}
	if r.Size() < TLSReadBufferMin {
		return nil, nil
	}
	k, ok, err := newTrafficKey(tc, log.take(label), label)
	if !ok || err != nil {
		return nil, err
	}
	return &TLSReader{r: r, key: k, spare: make([]byte, 0, tlsMaxCiphertext)}, nil
}

// trafficKey is one direction's record protection (RFC 8446 7.3).
type trafficKey struct {
	newH   func() hash.Hash
	secret []byte
	aead   cipher.AEAD
	iv     [12]byte
	seq    uint64
}

// newTrafficKey is the key of secret for tc's cipher suite; not ok when
// the session is not TLS 1.3 with AES-GCM or there is no secret.
func newTrafficKey(tc *tls.Conn, secret []byte, label string) (trafficKey, bool, error) {
	st := tc.ConnectionState()
	k := trafficKey{secret: secret}
	if st.Version != tls.VersionTLS13 || secret == nil {
		return k, false, nil
	}
	switch st.CipherSuite {
	case tls.TLS_AES_128_GCM_SHA256:
		k.newH = sha256.New
	case tls.TLS_AES_256_GCM_SHA384:
		k.newH = sha512.New384
	default:
		return k, false, nil
	}
	if len(secret) != k.newH().Size() {
		return k, false, fmt.Errorf("rpc: tls: %s of %d bytes", label, len(secret))
	}
	if err := k.set(); err != nil {
		return k, false, err
	}
	return k, true, nil
}

// set derives the record key and IV of k.secret and starts its sequence.
func (k *trafficKey) set() error {
	keyLen := 16
	if k.newH().Size() == 48 {
		keyLen = 32
	}
	key, err := expandLabel(k.newH, k.secret, "key", keyLen)
	if err != nil {
		return err
	}
	iv, err := expandLabel(k.newH, k.secret, "iv", len(k.iv))
	if err != nil {
		return err
	}
	block, err := aes.NewCipher(key)
	clear(key)
	if err != nil {
		return err
	}
	k.aead, err = cipher.NewGCM(block)
	copy(k.iv[:], iv)
	k.seq = 0
	return err
}

// update moves to the next traffic secret (a KeyUpdate).
func (k *trafficKey) update() error {
	next, err := expandLabel(k.newH, k.secret, "traffic upd", len(k.secret))
	if err != nil {
		return err
	}
	clear(k.secret)
	k.secret = next
	return k.set()
}

// nonce is the nonce of the next record.
func (k *trafficKey) nonce() [12]byte {
	n := k.iv
	for i := range 8 {
		n[4+i] ^= byte(k.seq >> (56 - 8*i))
	}
	return n
}

// expandLabel is HKDF-Expand-Label with an empty context.
func expandLabel(h func() hash.Hash, secret []byte, label string, n int) ([]byte, error) {
	full := "tls13 " + label
	info := make([]byte, 0, 4+len(full))
	info = binary.BigEndian.AppendUint16(info, uint16(n))
	info = append(info, byte(len(full)))
	info = append(info, full...)
	info = append(info, 0) // context
	return hkdf.Expand(h, secret, string(info), n)
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
	end := len(out)
	for end > 0 && out[end-1] == 0 {
		end-- // padding
	}
	if end == 0 {
		return 0, fmt.Errorf("%w: record without a content type", errTLS)
	}
	typ, content := out[end-1], out[:end-1]
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
			if msg[0] == 1 {
				return fmt.Errorf("%w: the peer asks for a key update of this side", errTLS)
			}
			if err := t.key.update(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: handshake message %d after the handshake", errTLS, b[0])
		}
		b = b[4+n:]
	}
	return nil
}
