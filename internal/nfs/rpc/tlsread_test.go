package rpc

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/tlsca/tlscatest"
)

// tlsPair returns a TLS session's server side (crypto/tls) and the
// client's reader of it (a TLSReader, or crypto/tls when TakeOver
// declines), the handshake read through HandshakeReader as the NFS client
// does. tw is the client's writer after a takeover.
func tlsPair(t *testing.T, set func(*tls.Config)) (server *tls.Conn, client io.Reader, tr *TLSReader, nc net.Conn) {
	server, client, tr, _, nc = tlsPairW(t, set)
	return server, client, tr, nc
}

func tlsPairW(t *testing.T, set func(*tls.Config)) (server *tls.Conn, client io.Reader, tr *TLSReader, tw *TLSWriter, nc net.Conn) {
	t.Helper()
	ca, cert, ln := tlscatest.Listener(t)
	defer ln.Close()
	scfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	var keys bytes.Buffer
	ccfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
	if set != nil {
		set(scfg)
		set(ccfg)
	}
	log := &KeyLog{Next: &keys}
	ccfg.KeyLogWriter = log
	srv := make(chan *tls.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			srv <- nil
			return
		}
		tc := tls.Server(nc, scfg)
		if err := tc.Handshake(); err != nil {
			nc.Close()
			tc = nil
		}
		srv <- tc
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	br := bufio.NewReaderSize(nc, 64<<10)
	bc := &BatchConn{Conn: nc, R: &HandshakeReader{R: br}}
	tc := tls.Client(bc, ccfg)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	server = <-srv
	if server == nil {
		t.Fatal("server handshake failed")
	}
	t.Cleanup(func() { server.Close() })
	if keys.Len() == 0 {
		t.Error("the configuration's own key log was not written")
	}
	tr, tw, err = TakeOver(tc, br, bc, log, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if n := log.held(); n != 0 {
		t.Errorf("the key log holds %d secrets after TakeOver", n)
	}
	bc.R = br
	if tr == nil {
		if tw != nil {
			t.Fatal("TakeOver returned a writer without a reader")
		}
		return server, tc, nil, nil, nc
	}
	return server, tr, tr, tw, nc
}

// TestTLSReader: what crypto/tls writes (after its session ticket),
// read back with buffers of every size in any mix with records, equals
// what was written; a close_notify ends it with io.EOF. Reads that a
// whole record's plaintext fits are decrypted in place.
func TestTLSReader(t *testing.T) {
	server, r, tr, _ := tlsPair(t, nil)
	if tr == nil {
		t.Fatal("TLS 1.3 with AES-GCM read by crypto/tls")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	want := make([]byte, 3<<20)
	for i := range want {
		want[i] = byte(rng.Uint32())
	}
	go func() {
		p := want
		for len(p) > 0 {
			n := min(len(p), 1+rng.IntN(200<<10))
			if _, err := server.Write(p[:n]); err != nil {
				return
			}
			p = p[n:]
		}
		server.Close()
	}()
	var got []byte
	buf := make([]byte, 1<<20)
	for {
		n := 1 + rand.IntN(len(buf))
		if rand.IntN(4) == 0 {
			n = 1 + rand.IntN(64)
		}
		k, err := r.Read(buf[:n])
		got = append(got, buf[:k]...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d written", len(got), len(want))
	}
	d, s := tr.Direct.Load(), tr.Staged.Load()
	t.Logf("%d bytes decrypted in place, %d staged", d, s)
	if d+s != uint64(len(want)) || d == 0 || s == 0 {
		t.Errorf("%d bytes decrypted in place and %d staged, want both and %d in all", d, s, len(want))
	}
}

// TestTLSReaderDeclines: a TLS 1.2 session stays crypto/tls's.
func TestTLSReaderDeclines(t *testing.T) {
	server, r, tr, _ := tlsPair(t, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 })
	if tr != nil {
		t.Fatal("TLS 1.2 read by TLSReader")
	}
	go server.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

// TestTLSReaderTampered: a changed byte of a record fails the read.
func TestTLSReaderTampered(t *testing.T) {
	server, r, tr, _ := tlsPair(t, nil)
	if tr == nil {
		t.Fatal("TLS 1.3 with AES-GCM read by crypto/tls")
	}
	// Flip a byte of the next record (the session ticket's or the
	// data's) in the reader's buffer, which holds it once peeked.
	go server.Write(bytes.Repeat([]byte("x"), 100))
	rec, err := tr.r.Peek(tlsRecordHeader + 40)
	if err != nil {
		t.Fatal(err)
	}
	rec[tlsRecordHeader+20] ^= 1
	buf := make([]byte, 200)
	if _, err := io.ReadFull(r, buf[:100]); err == nil || !errors.Is(err, errTLS) {
		t.Fatalf("read of a tampered record: %v", err)
	}
}

// TestTLSWriter: what TLSWriter seals (through RecordWriter, RPC records
// of every size) crypto/tls reads back unchanged, and its close_notify
// ends crypto/tls's stream with io.EOF.
func TestTLSWriter(t *testing.T) {
	ca, cert, ln := tlscatest.Listener(t)
	defer ln.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	var want []byte
	var recs [][]byte
	for range 40 {
		n := rng.IntN(300 << 10)
		rec := make([]byte, RecordHeaderSize+n)
		for i := range rec {
			rec[i] = byte(rng.Uint32())
		}
		FinishRecord(rec)
		recs = append(recs, rec)
		want = append(want, rec...)
	}
	errc := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer nc.Close()
		br := bufio.NewReaderSize(nc, 64<<10)
		bc := &BatchConn{Conn: nc, R: &HandshakeReader{R: br}}
		log := &KeyLog{}
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}, KeyLogWriter: log, SessionTicketsDisabled: true}
		tc := tls.Server(bc, cfg)
		if err := tc.Handshake(); err != nil {
			errc <- err
			return
		}
		_, tw, err := TakeOver(tc, br, bc, log, false, true)
		if err != nil || tw == nil {
			errc <- fmt.Errorf("TakeOver: %v, %v", tw, err)
			return
		}
		rw := &RecordWriter{W: tw, BC: bc}
		for _, rec := range recs {
			// In two pieces, as a reply's header and data.
			k := rng.IntN(len(rec) + 1)
			if _, err := rw.Write(rec[:k]); err != nil {
				errc <- err
				return
			}
			if _, err := rw.Write(rec[k:]); err != nil {
				errc <- err
				return
			}
		}
		errc <- tw.CloseNotify()
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	tc := tls.Client(nc, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	got, err := io.ReadAll(tc)
	if err != nil {
		t.Fatalf("crypto/tls read %d bytes: %v", len(got), err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d written", len(got), len(want))
	}
}

// TestTLSReaderDeadline: a read deadline that passes (the NFS server
// steps its deadlines while it waits for a call's body) fails that read
// only; the stream goes on.
func TestTLSReaderDeadline(t *testing.T) {
	server, r, tr, nc := tlsPair(t, nil)
	if tr == nil {
		t.Fatal("TLS 1.3 with AES-GCM read by crypto/tls")
	}
	buf := make([]byte, 100)
	_ = nc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	_ = nc.SetReadDeadline(time.Time{})
	go server.Write([]byte("after"))
	if _, err := io.ReadFull(r, buf[:5]); err != nil || string(buf[:5]) != "after" {
		t.Fatalf("read after the deadline: %q, %v", buf[:5], err)
	}
}
