package rpc

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/tlsca/tlscatest"
)

// randomBytes returns n bytes of a seeded generator.
func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestTLSKeyUpdateWithCryptoTLS: against crypto/tls, the writer moves to
// its next key every few records (the limit lowered) and crypto/tls
// reads on; the reader, past its limit, has the writer's next KeyUpdate
// ask crypto/tls to move too, and follows crypto/tls's answer. Data in
// both directions arrives unchanged. Before, the writer sealed 2^63
// records under one key, and the reader ended the connection at a
// KeyUpdate asking for an update.
func TestTLSKeyUpdateWithCryptoTLS(t *testing.T) {
	server, r, tr, tw, _ := tlsPairW(t, nil)
	if tr == nil || tw == nil {
		t.Fatal("TLS 1.3 with AES-GCM not taken over")
	}
	tw.limit, tr.limit = 4, 3
	up := randomBytes(1, 40*MaxTLSPlaintext+123)
	down := randomBytes(2, 30*MaxTLSPlaintext+45)

	// The server echoes nothing: it reads all of up, then writes down.
	srvErr := make(chan error, 1)
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, len(up))
		if _, err := io.ReadFull(server, buf); err != nil {
			srvErr <- err
			return
		}
		got <- buf
		_, err := server.Write(down)
		srvErr <- err
	}()
	// First half of down's direction: the server must write before the
	// reader's limit matters, so send up in two halves around a read.
	if _, err := tw.Write(up[:len(up)/2]); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(up[len(up)/2:]); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, up) {
		t.Fatal("crypto/tls read other data than the writer sealed")
	}
	buf := make([]byte, len(down))
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	if err := <-srvErr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, down) {
		t.Fatal("read other data than crypto/tls wrote")
	}
	// The reader is past its limit now: the next write asks crypto/tls
	// to move its key, and crypto/tls answers before its next record.
	go func() {
		b := make([]byte, 5)
		if _, err := io.ReadFull(server, b); err != nil {
			srvErr <- err
			return
		}
		_, err := server.Write([]byte("after"))
		srvErr <- err
	}()
	if _, err := tw.Write([]byte("ping!")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, buf[:5]); err != nil || string(buf[:5]) != "after" {
		t.Fatalf("read after the update: %q, %v", buf[:5], err)
	}
	if err := <-srvErr; err != nil {
		t.Fatal(err)
	}
	if n := tw.KeyUpdates.Load(); n < 10 {
		t.Errorf("the writer sent %d KeyUpdates for %d records at 4 a key", n, len(up)/MaxTLSPlaintext)
	}
	if n := tr.KeyUpdates.Load(); n != 1 {
		t.Errorf("the reader followed %d KeyUpdates of crypto/tls, want 1 (its answer)", n)
	}
}

// ownPair is a loopback TLS session taken over on both ends.
type ownPair struct {
	cr, sr *TLSReader
	cw, sw *TLSWriter
}

func newOwnPair(t *testing.T) ownPair {
	t.Helper()
	ca, cert, ln := tlscatest.Listener(t)
	defer ln.Close()
	type side struct {
		r   *TLSReader
		w   *TLSWriter
		err error
	}
	srv := make(chan side, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			srv <- side{err: err}
			return
		}
		br := bufio.NewReaderSize(nc, 64<<10)
		bc := &BatchConn{Conn: nc, R: &HandshakeReader{R: br}}
		log := &KeyLog{}
		tc := tls.Server(bc, &tls.Config{Certificates: []tls.Certificate{cert}, KeyLogWriter: log, SessionTicketsDisabled: true})
		if err := tc.Handshake(); err != nil {
			nc.Close()
			srv <- side{err: err}
			return
		}
		r, w, err := TakeOver(tc, br, bc, log, false, true)
		bc.R = br
		srv <- side{r, w, err}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	br := bufio.NewReaderSize(nc, 64<<10)
	bc := &BatchConn{Conn: nc, R: &HandshakeReader{R: br}}
	log := &KeyLog{}
	tc := tls.Client(bc, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", KeyLogWriter: log})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	cr, cw, err := TakeOver(tc, br, bc, log, true, false)
	bc.R = br
	s := <-srv
	if err != nil || s.err != nil || cr == nil || s.r == nil {
		t.Fatalf("TakeOver: client %v, server %v", err, s.err)
	}
	t.Cleanup(func() { s.w.BC.Close() })
	return ownPair{cr: cr, cw: cw, sr: s.r, sw: s.w}
}

// TestTLSKeyUpdateRequested: both ends taken over; the server's reader,
// past its limit, asks the client to move its key; the client's reader
// follows the server's KeyUpdate and its writer answers with one of its
// own before its next record, which the server's reader follows.
func TestTLSKeyUpdateRequested(t *testing.T) {
	p := newOwnPair(t)
	p.sr.limit = 2
	up := randomBytes(3, 3*MaxTLSPlaintext)
	buf := make([]byte, len(up))
	if _, err := p.cw.Write(up); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(p.sr, buf); err != nil || !bytes.Equal(buf, up) {
		t.Fatalf("server read: %v", err)
	}
	// The server's next record comes after a KeyUpdate asking the
	// client to move.
	if _, err := p.sw.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(p.cr, buf[:5]); err != nil || string(buf[:5]) != "reply" {
		t.Fatalf("client read: %q, %v", buf[:5], err)
	}
	if !p.cw.answer.Load() {
		t.Fatal("the client's writer has no KeyUpdate to answer with")
	}
	if _, err := p.cw.Write([]byte("next")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(p.sr, buf[:4]); err != nil || string(buf[:4]) != "next" {
		t.Fatalf("server read after the update: %q, %v", buf[:4], err)
	}
	for name, n := range map[string]uint64{
		"server writer sent":     p.sw.KeyUpdates.Load(),
		"client reader followed": p.cr.KeyUpdates.Load(),
		"client writer sent":     p.cw.KeyUpdates.Load(),
		"server reader followed": p.sr.KeyUpdates.Load(),
	} {
		if n != 1 {
			t.Errorf("%s %d KeyUpdates, want 1", name, n)
		}
	}
}

// keyUpdateStream returns what build has a writer of fuzzKey seal.
func keyUpdateStream(t testing.TB, build func(w *TLSWriter)) []byte {
	t.Helper()
	c := &bufConn{}
	w := &TLSWriter{BC: &BatchConn{Conn: c}, key: fuzzKey(t)}
	build(w)
	return c.w.Bytes()
}

// handshakeRecord seals one handshake record of content msg.
func handshakeRecord(w *TLSWriter, msg []byte) {
	w.BC.mu.Lock()
	defer w.BC.mu.Unlock()
	w.appendLocked(tlsTypeHandshake, msg)
	_ = w.BC.flushLocked()
}

// TestTLSReaderKeyUpdateRefused: the reader ends the stream with an error
// (never data) at a KeyUpdate not ending its record, one with a value
// other than 0 or 1, an empty handshake record, more than
// maxUselessRecords records without data, and a requested update with
// no writer to answer it.
func TestTLSReaderKeyUpdateRefused(t *testing.T) {
	ku := func(v byte) []byte { return []byte{tlsMsgKeyUpdate, 0, 0, 1, v} }
	cases := map[string]func(w *TLSWriter){
		"not at the end of its record": func(w *TLSWriter) {
			handshakeRecord(w, append(ku(0), tlsMsgTicket, 0, 0, 0))
		},
		"value 2":       func(w *TLSWriter) { handshakeRecord(w, ku(2)) },
		"long":          func(w *TLSWriter) { handshakeRecord(w, []byte{tlsMsgKeyUpdate, 0, 0, 2, 0, 0}) },
		"empty record":  func(w *TLSWriter) { handshakeRecord(w, nil) },
		"requested":     func(w *TLSWriter) { handshakeRecord(w, ku(1)) },
		"other message": func(w *TLSWriter) { handshakeRecord(w, []byte{13, 0, 0, 0}) },
		"too many updates": func(w *TLSWriter) {
			for range maxUselessRecords + 1 {
				handshakeRecord(w, ku(0))
				_ = w.key.update()
			}
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			in := keyUpdateStream(t, func(w *TLSWriter) {
				build(w)
				if _, err := w.Write([]byte("data")); err != nil {
					t.Fatal(err)
				}
			})
			r := &TLSReader{r: bufio.NewReaderSize(bytes.NewReader(in), TLSReadBufferMin), key: fuzzKey(t), spare: make([]byte, 0, tlsMaxCiphertext)}
			n, err := r.Read(make([]byte, 100))
			if n != 0 || !errors.Is(err, errTLS) {
				t.Fatalf("read %d bytes, %v; want an error", n, err)
			}
			if r.key.secret != nil {
				t.Error("the secret outlives the stream")
			}
		})
	}
	// As many updates as allowed, with data after them, read fine.
	in := keyUpdateStream(t, func(w *TLSWriter) {
		for range maxUselessRecords {
			handshakeRecord(w, ku(0))
			_ = w.key.update()
		}
		_, _ = w.Write([]byte("data"))
	})
	if got := readAll(t, in, 100); string(got) != "data" {
		t.Fatalf("read %q after %d KeyUpdates", got, maxUselessRecords)
	}
}

// TestTLSSealedStreamKeyUpdates: a writer at a limit of 3 records per key
// seals a KeyUpdate every third record; a reader of the first key reads
// all of it back.
func TestTLSSealedStreamKeyUpdates(t *testing.T) {
	msgs := [][]byte{randomBytes(5, 10*MaxTLSPlaintext+1), []byte("tail")}
	c := &bufConn{}
	w := &TLSWriter{BC: &BatchConn{Conn: c}, key: fuzzKey(t), limit: 3}
	for _, m := range msgs {
		if _, err := w.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.CloseNotify(); err != nil {
		t.Fatal(err)
	}
	if n := w.KeyUpdates.Load(); n != 4 {
		t.Errorf("%d KeyUpdates for 13 records at 3 a key, want 4", n)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("a write after close_notify")
	}
	if got := readAll(t, c.w.Bytes(), 65535); !bytes.Equal(got, bytes.Join(msgs, nil)) {
		t.Fatalf("read %d bytes back, want %d", len(got), len(bytes.Join(msgs, nil)))
	}
}

// TestTakeOverClearsSecrets: whatever TakeOver decides, the key log
// holds no secret afterwards and the ones it held are zeroed (before, a
// declined takeover left both traffic secrets in the log, which the
// connection's configuration keeps for its life).
func TestTakeOverClearsSecrets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		readBuf int
		taken   bool
	}{
		{"taken", 64 << 10, true},
		{"declined: read buffer too small", 4 << 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, cert, ln := tlscatest.Listener(t)
			defer ln.Close()
			go func() {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				defer nc.Close()
				s := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{cert}})
				_ = s.Handshake()
				_, _ = io.Copy(io.Discard, s)
			}()
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			br := bufio.NewReaderSize(nc, tc.readBuf)
			bc := &BatchConn{Conn: nc, R: &HandshakeReader{R: br}}
			log := &KeyLog{}
			c := tls.Client(bc, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", KeyLogWriter: log})
			if err := c.Handshake(); err != nil {
				t.Fatal(err)
			}
			var held [][]byte
			log.mu.Lock()
			for _, s := range log.secrets {
				held = append(held, s)
			}
			log.mu.Unlock()
			if len(held) != 2 {
				t.Fatalf("the key log holds %d secrets after the handshake, want the 2 traffic secrets", len(held))
			}
			tr, tw, err := TakeOver(c, br, bc, log, true, false)
			if err != nil {
				t.Fatal(err)
			}
			if (tr != nil) != tc.taken || (tw != nil) != tc.taken {
				t.Fatalf("taken over: reader %v, writer %v, want %v", tr != nil, tw != nil, tc.taken)
			}
			if n := log.held(); n != 0 {
				t.Errorf("the key log holds %d secrets after TakeOver", n)
			}
			if !tc.taken {
				for _, s := range held {
					if !bytes.Equal(s, make([]byte, len(s))) {
						t.Error("a declined secret was not zeroed")
					}
				}
				return
			}
			if err := tw.CloseNotify(); err != nil {
				t.Fatal(err)
			}
			if tw.key.secret != nil {
				t.Error("the writer's secret outlives its close_notify")
			}
		})
	}
}
