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
	"fmt"
	"hash"
	"io"
	"sync"
)

// The takeover of a TLS 1.3 session from crypto/tls (TakeOver), and the
// keys of its two directions.
//
// After the takeover crypto/tls must never seal another record: its
// write key and sequence number are the ones TLSWriter goes on from, so
// anything it wrote (a close_notify from tls.Conn.Close or CloseWrite, a
// KeyUpdate answered by tls.Conn.Read) would reuse an AES-GCM nonce. The
// caller drops the *tls.Conn once TakeOver has returned a reader and a
// writer (and closes the TCP connection, after TLSWriter.CloseNotify).

// Traffic secret labels of the NSS key log format.
const (
	labelClient = "CLIENT_TRAFFIC_SECRET_0"
	labelServer = "SERVER_TRAFFIC_SECRET_0"
)

// KeyLog collects the application traffic secrets of one handshake (set
// it as the connection's Config.KeyLogWriter). Next, when set, is given
// every line too (a key log the configuration had). It keeps only the
// two application traffic secrets (the handshake's are not kept at all),
// and only until TakeOver consumes them or Clear wipes them.
type KeyLog struct {
	Next io.Writer

	mu      sync.Mutex // guards secrets
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
	if len(f) != 3 {
		return len(line), nil
	}
	label := string(f[0])
	if label != labelClient && label != labelServer {
		return len(line), nil
	}
	s := make([]byte, hex.DecodedLen(len(f[2])))
	if _, err := hex.Decode(s, f[2]); err != nil {
		clear(s)
		return len(line), nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.secrets == nil {
		k.secrets = map[string][]byte{}
	}
	clear(k.secrets[label])
	k.secrets[label] = s
	return len(line), nil
}

// take returns the secret with the label and forgets it (the caller
// wipes it).
func (k *KeyLog) take(label string) []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.secrets[label]
	delete(k.secrets, label)
	return s
}

// Clear wipes and forgets every secret held. TakeOver calls it whatever
// it decides; a caller whose handshake failed calls it too.
func (k *KeyLog) Clear() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for l, s := range k.secrets {
		clear(s)
		delete(k.secrets, l)
	}
}

// held reports how many secrets k holds (tests).
func (k *KeyLog) held() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.secrets)
}

// TakeOver takes tc's session from crypto/tls after its handshake: it
// returns a reader of the peer's records from r (which the handshake was
// read from through a HandshakeReader over r) and a writer of this
// side's records onto bc, or neither, when the session is not one they
// handle (not TLS 1.3 with AES-GCM, a read buffer too small for a
// record, a secret not logged, or — on a server — session tickets
// enabled, which crypto/tls would write under the traffic key): then
// crypto/tls keeps the session, reads and writes. Never one without the
// other: a KeyUpdate the peer asks for must be answered by the side that
// writes. client says which side this is. Whatever it returns, log holds
// no secret afterwards.
//
// Once it has returned a reader and a writer, nothing may reach tc's
// write path (Write, Close, CloseWrite, or Read, which answers a
// KeyUpdate): drop tc.
func TakeOver(tc *tls.Conn, r *bufio.Reader, bc *BatchConn, log *KeyLog, client, ticketsDisabled bool) (*TLSReader, *TLSWriter, error) {
	defer log.Clear()
	readLabel, writeLabel := labelClient, labelServer
	if client {
		readLabel, writeLabel = labelServer, labelClient
	}
	rs, ws := log.take(readLabel), log.take(writeLabel)
	if r.Size() < TLSReadBufferMin || (!client && !ticketsDisabled) {
		clear(rs)
		clear(ws)
		return nil, nil, nil
	}
	rk, rok, rerr := newTrafficKey(tc, rs, readLabel)
	wk, wok, werr := newTrafficKey(tc, ws, writeLabel)
	if rerr != nil || werr != nil || !rok || !wok {
		rk.wipe()
		wk.wipe()
		if rerr == nil {
			rerr = werr
		}
		return nil, nil, rerr
	}
	w := &TLSWriter{BC: bc, key: wk, limit: keyUpdateRecords}
	t := &TLSReader{r: r, key: rk, w: w, limit: keyUpdateRecords, spare: make([]byte, 0, tlsMaxCiphertext)}
	return t, w, nil
}

// keyUpdateRecords is how many records one direction seals under one
// key before it moves to the next (a KeyUpdate, RFC 8446 4.6.3), and how
// many a reader opens under one key before it asks the peer to move.
// RFC 8446 5.5 bounds AES-GCM at 2^24.5 full-size records per key; this
// is QUIC's tighter confidentiality limit for AES-GCM (RFC 9001 6.6),
// 128 GiB of 16 KiB records.
const keyUpdateRecords = 1 << 23

// trafficKey is one direction's record protection (RFC 8446 7.3).
type trafficKey struct {
	newH   func() hash.Hash
	secret []byte
	aead   cipher.AEAD
	iv     [12]byte
	seq    uint64
}

// newTrafficKey is the key of secret for tc's cipher suite; not ok when
// the session is not TLS 1.3 with AES-GCM or there is no secret (the
// secret is then wiped).
func newTrafficKey(tc *tls.Conn, secret []byte, label string) (trafficKey, bool, error) {
	st := tc.ConnectionState()
	k := trafficKey{secret: secret}
	if st.Version != tls.VersionTLS13 || secret == nil {
		k.wipe()
		return k, false, nil
	}
	switch st.CipherSuite {
	case tls.TLS_AES_128_GCM_SHA256:
		k.newH = sha256.New
	case tls.TLS_AES_256_GCM_SHA384:
		k.newH = sha512.New384
	default:
		k.wipe()
		return k, false, nil
	}
	if len(secret) != k.newH().Size() {
		k.wipe()
		return k, false, fmt.Errorf("rpc: tls: %s of %d bytes", label, len(secret))
	}
	if err := k.set(); err != nil {
		k.wipe()
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
		clear(key)
		return err
	}
	block, err := aes.NewCipher(key)
	clear(key)
	if err != nil {
		clear(iv)
		return err
	}
	k.aead, err = cipher.NewGCM(block)
	copy(k.iv[:], iv)
	clear(iv)
	k.seq = 0
	return err
}

// update moves to the next traffic secret (a KeyUpdate, RFC 8446 7.2),
// wiping the one before.
func (k *trafficKey) update() error {
	next, err := expandLabel(k.newH, k.secret, "traffic upd", len(k.secret))
	if err != nil {
		return err
	}
	clear(k.secret)
	k.secret = next
	return k.set()
}

// wipe clears the secret and the key: nothing can be sealed or opened
// with k afterwards (the AES key schedule inside aead is the crypto
// package's and is dropped, not cleared).
func (k *trafficKey) wipe() {
	clear(k.secret)
	k.secret = nil
	k.aead = nil
	clear(k.iv[:])
}

// nonce is the nonce of the next record.
func (k *trafficKey) nonce() [12]byte { return seqNonce(k.iv, k.seq) }

// seqNonce is the nonce of the record at seq under a key of IV iv (RFC
// 8446 5.3).
func seqNonce(iv [12]byte, seq uint64) [12]byte {
	for i := range 8 {
		iv[4+i] ^= byte(seq >> (56 - 8*i))
	}
	return iv
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
