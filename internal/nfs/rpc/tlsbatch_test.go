package rpc

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"
)

// countingConn records the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

// fakeTLS stands for a TLS session: each Write becomes TLS records of at
// most MaxTLSPlaintext bytes, each written to the connection by itself
// (as crypto/tls does), framed as a 4-byte length and the plaintext.
type fakeTLS struct {
	under   *BatchConn
	records []int
}

func (f *fakeTLS) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), MaxTLSPlaintext)
		rec := binary.BigEndian.AppendUint32(nil, uint32(k))
		rec = append(rec, p[:k]...)
		if _, err := f.under.Write(rec); err != nil {
			return 0, err
		}
		f.records = append(f.records, k)
		p = p[k:]
	}
	return n, nil
}

// unframe joins the plaintext of fakeTLS records.
func unframe(t *testing.T, b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		n := int(binary.BigEndian.Uint32(b))
		out = append(out, b[4:4+n]...)
		b = b[4+n:]
	}
	return out
}

func TestRecordWriterPacksAndFlushesPerRecord(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 100, MaxTLSPlaintext - 4, MaxTLSPlaintext, 3*MaxTLSPlaintext + 7, 1<<20 + 12} {
		cc := &countingConn{}
		bc := &BatchConn{Conn: cc}
		tls := &fakeTLS{under: bc}
		w := &RecordWriter{W: tls, BC: bc}
		// Two records: the second in two fragments; handed over in
		// random pieces, the way a reply's header and data are.
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		var stream []byte
		stream = binary.BigEndian.AppendUint32(stream, uint32(size)|lastFragment)
		stream = append(stream, msg...)
		half := size / 2
		stream = binary.BigEndian.AppendUint32(stream, uint32(half))
		stream = append(stream, msg[:half]...)
		stream = binary.BigEndian.AppendUint32(stream, uint32(size-half)|lastFragment)
		stream = append(stream, msg[half:]...)
		first := 4 + size
		for rest := stream; len(rest) > 0; {
			k := min(len(rest), 1+rng.IntN(3*MaxTLSPlaintext))
			if _, err := w.Write(rest[:k]); err != nil {
				t.Fatal(err)
			}
			rest = rest[k:]
		}
		var got []byte
		for _, wr := range cc.writes {
			got = append(got, wr...)
		}
		if !bytes.Equal(unframe(t, got), stream) {
			t.Fatalf("size %d: the stream changed on the way", size)
		}
		// Every TLS record is full but the last of each RPC record.
		total, recs := 0, 0
		for i, n := range tls.records {
			total += n
			if total == first || total == len(stream) {
				recs++
				continue
			}
			if n != MaxTLSPlaintext {
				t.Fatalf("size %d: TLS record %d has %d bytes, want full records inside an RPC record (%v)", size, i, n, tls.records)
			}
		}
		if recs != 2 {
			t.Fatalf("size %d: TLS records do not end at the RPC records' ends: %v", size, tls.records)
		}
		// One socket write per 256 KiB of each RPC record, not one per
		// TLS record.
		if want := 2 * (1 + (len(stream)/2)/batchFlushBytes); len(cc.writes) > want {
			t.Fatalf("size %d: %d socket writes for %d TLS records, want at most %d", size, len(cc.writes), len(tls.records), want)
		}
	}
}

func TestBatchConnPassesThroughWhenNotHeld(t *testing.T) {
	cc := &countingConn{}
	bc := &BatchConn{Conn: cc}
	bc.Write([]byte("hello"))
	bc.Write([]byte("world"))
	if len(cc.writes) != 2 {
		t.Fatalf("%d writes, want 2 (handshake flights go straight through)", len(cc.writes))
	}
	bc.Hold()
	bc.Write([]byte("a"))
	bc.Write([]byte("b"))
	if len(cc.writes) != 2 {
		t.Fatalf("held writes reached the socket")
	}
	if err := bc.Release(); err != nil {
		t.Fatal(err)
	}
	if len(cc.writes) != 3 || string(cc.writes[2]) != "ab" {
		t.Fatalf("writes %q, want the held ones in one", cc.writes)
	}
}

// TestBatchWholeReplyOneWrite: the server's READ reply of 1 MiB, sealed by
// TLSWriter through RecordWriter, leaves in one socket write with
// FlushBytes = BatchWholeReply (in five at the default 256 KiB), and the
// gathering buffer goes back to its free list (Bufs) between records.
func TestBatchWholeReplyOneWrite(t *testing.T) {
	rec := make([]byte, RecordHeaderSize+120+1<<20)
	FinishRecord(rec)
	for _, tc := range []struct {
		flush, writes int
	}{{BatchWholeReply, 1}, {0, 5}} {
		cc := &countingConn{}
		bufs := NewBuffers(1)
		bc := &BatchConn{Conn: cc, FlushBytes: tc.flush}
		if tc.flush > 0 {
			bc.Bufs = bufs
		}
		w := &RecordWriter{W: &TLSWriter{BC: bc, key: fuzzKey(t)}, BC: bc}
		for range 3 {
			cc.writes = nil
			if _, err := w.Write(rec[:RecordHeaderSize+120]); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(rec[RecordHeaderSize+120:]); err != nil {
				t.Fatal(err)
			}
			if len(cc.writes) != tc.writes {
				t.Errorf("FlushBytes %d: %d socket writes for a 1 MiB reply, want %d", tc.flush, len(cc.writes), tc.writes)
			}
			if tc.flush > 0 && (bc.buf != nil || bufs.Len() != 1) {
				t.Errorf("FlushBytes %d: the buffer is kept between records (%d on the free list)", tc.flush, bufs.Len())
			}
		}
	}
}

// TestBatchConnNestedHolds: RPC records written through RecordWriter
// inside an outer Hold (a client's batch of calls) leave in one socket
// write at the outer Release, not one per record.
func TestBatchConnNestedHolds(t *testing.T) {
	cc := &countingConn{}
	bc := &BatchConn{Conn: cc}
	w := &RecordWriter{W: &TLSWriter{BC: bc, key: fuzzKey(t)}, BC: bc}
	bc.Hold()
	for _, n := range []int{100, 3000, 40} {
		rec := make([]byte, RecordHeaderSize+n)
		FinishRecord(rec)
		if _, err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if len(cc.writes) != 0 {
		t.Fatalf("%d socket writes inside the outer hold", len(cc.writes))
	}
	if err := bc.Release(); err != nil {
		t.Fatal(err)
	}
	if len(cc.writes) != 1 {
		t.Fatalf("%d socket writes for three records in one hold, want 1", len(cc.writes))
	}
	// And without the outer hold, one per record again.
	rec := make([]byte, RecordHeaderSize+10)
	FinishRecord(rec)
	for range 2 {
		if _, err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if len(cc.writes) != 3 {
		t.Fatalf("%d socket writes, want 3", len(cc.writes))
	}
}
