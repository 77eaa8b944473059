package rpc

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"testing"
)

// bufConn is a net.Conn whose writes go to a buffer (a TLSWriter's
// output, for seeds).
type bufConn struct {
	net.Conn
	w bytes.Buffer
}

func (c *bufConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// fuzzKey is one direction's key of a fixed TLS 1.3 AES-128-GCM secret.
func fuzzKey(t testing.TB) trafficKey {
	t.Helper()
	k := trafficKey{newH: sha256.New, secret: bytes.Repeat([]byte{7}, sha256.Size)}
	if err := k.set(); err != nil {
		t.Fatal(err)
	}
	return k
}

// sealed returns the records a TLSWriter of fuzzKey writes for the
// contents (application data, then a close_notify when closed).
func sealed(t testing.TB, contents [][]byte, closed bool) []byte {
	t.Helper()
	c := &bufConn{}
	w := &TLSWriter{BC: &BatchConn{Conn: c}, key: fuzzKey(t)}
	for _, p := range contents {
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if closed {
		if err := w.CloseNotify(); err != nil {
			t.Fatal(err)
		}
	}
	return c.w.Bytes()
}

// FuzzTLSReader: whatever bytes arrive, TLSReader never panics, never
// returns more than the reader asked for, and returns only bytes that a
// holder of the key sealed: of a sealed stream (the input as plaintext,
// with KeyUpdates) changed at one byte, the application data it returns
// before its first error is a prefix of what was sealed, never other
// data. The seeds, read as they are, include KeyUpdates, well and badly
// formed.
func FuzzTLSReader(f *testing.F) {
	msgs := [][]byte{[]byte("hello"), bytes.Repeat([]byte{0xab}, MaxTLSPlaintext), {}, bytes.Repeat([]byte{1}, MaxTLSPlaintext+1)}
	f.Add(sealed(f, msgs, true), uint16(0), byte(0), uint16(100))
	f.Add(sealed(f, msgs[:1], false), uint16(3), byte(1), uint16(7))
	f.Add(sealed(f, nil, true), uint16(10), byte(0x80), uint16(1))
	f.Add([]byte{23, 3, 3, 0, 17}, uint16(0), byte(0), uint16(64))
	// KeyUpdates: a writer moving to its next key every other record,
	// one asking for the reader's side to move too, and malformed ones.
	ku := func(v byte) []byte { return []byte{tlsMsgKeyUpdate, 0, 0, 1, v} }
	f.Add(keyUpdateStream(f, func(w *TLSWriter) {
		w.limit = 2
		for _, m := range msgs {
			_, _ = w.Write(m)
		}
		_ = w.CloseNotify()
	}), uint16(40), byte(4), uint16(5000))
	f.Add(keyUpdateStream(f, func(w *TLSWriter) {
		_, _ = w.Write(msgs[0])
		handshakeRecord(w, ku(1))
		_ = w.key.update()
		_, _ = w.Write(msgs[1])
		handshakeRecord(w, append(ku(0), ku(0)...))
		_ = w.key.update()
		_, _ = w.Write(msgs[0])
	}), uint16(0), byte(0), uint16(300))
	f.Add(keyUpdateStream(f, func(w *TLSWriter) {
		for range maxUselessRecords + 1 {
			handshakeRecord(w, ku(0))
			_ = w.key.update()
		}
		_, _ = w.Write(msgs[0])
	}), uint16(2), byte(0x10), uint16(10))
	f.Fuzz(func(t *testing.T, in []byte, at uint16, flip byte, readSize uint16) {
		// Whatever arrives: no panic, and the reads end in an error.
		readAll(t, in, readSize)
		// in as the plaintext of a stream a holder of the key sealed
		// (records cut at readSize, a KeyUpdate every few records,
		// a close_notify), changed at one byte: what is read of it
		// is a prefix of in (a change ends the stream there). (A
		// changed copy of in itself proves nothing: in need not be
		// sealed, and the change may be what makes it so.)
		cut := 1 + int(readSize)%MaxTLSPlaintext
		stream := keyUpdateStream(t, func(w *TLSWriter) {
			w.limit = 1 + uint64(flip%5)
			for p := in; len(p) > 0; {
				k := min(len(p), cut)
				if _, err := w.Write(p[:k]); err != nil {
					t.Fatal(err)
				}
				p = p[k:]
			}
			if err := w.CloseNotify(); err != nil {
				t.Fatal(err)
			}
		})
		if got := readAll(t, stream, readSize); !bytes.Equal(got, in) {
			t.Fatalf("read %d bytes of a sealed stream of %d", len(got), len(in))
		}
		if flip != 0 {
			stream[int(at)%len(stream)] ^= flip
		}
		// Bytes that pass the tag are what the key's holder sealed,
		// in order.
		if got := readAll(t, stream, readSize); !bytes.HasPrefix(in, got) {
			t.Fatalf("read %d bytes from a changed stream that are not a prefix of the %d sealed", len(got), len(in))
		}
	})
}

// readAll reads in through a TLSReader of fuzzKey with reads of size
// bytes until an error, and returns what it read.
func readAll(t *testing.T, in []byte, size uint16) []byte {
	// The writer beside it takes the peer's requests for a KeyUpdate.
	w := &TLSWriter{BC: &BatchConn{Conn: &bufConn{}}, key: fuzzKey(t)}
	r := &TLSReader{r: bufio.NewReaderSize(bytes.NewReader(in), TLSReadBufferMin), key: fuzzKey(t), w: w, spare: make([]byte, 0, tlsMaxCiphertext)}
	buf := make([]byte, 1+int(size))
	var out []byte
	for range len(in) + 2 {
		n, err := r.Read(buf)
		if n < 0 || n > len(buf) {
			t.Fatalf("read returned %d for a buffer of %d", n, len(buf))
		}
		out = append(out, buf[:n]...)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errTLS) {
				return out
			}
			t.Fatalf("unexpected error %v", err)
		}
		if n == 0 {
			t.Fatal("read returned 0 bytes and no error")
		}
	}
	t.Fatal("the reader did not end")
	return nil
}

// TestTLSReaderSealedStream: what a TLSWriter seals (records of the
// largest size, empty writes, a close_notify), a TLSReader of the same key
// reads back exactly, with io.EOF at the close_notify.
func TestTLSReaderSealedStream(t *testing.T) {
	msgs := [][]byte{[]byte("a"), bytes.Repeat([]byte{2}, 3*MaxTLSPlaintext+5), {}, []byte("end")}
	in := sealed(t, msgs, true)
	for _, size := range []uint16{0, 99, MaxTLSPlaintext - 1, 65535} {
		got := readAll(t, in, size)
		if want := bytes.Join(msgs, nil); !bytes.Equal(got, want) {
			t.Fatalf("reads of %d: %d bytes back, want %d", size+1, len(got), len(want))
		}
	}
	// A stream cut short ends in io.ErrUnexpectedEOF, having returned
	// only whole records' data.
	got := readAll(t, in[:len(in)-10], 65535)
	if !bytes.HasPrefix(bytes.Join(msgs, nil), got) {
		t.Fatal("a cut stream returned data not sealed")
	}
}
