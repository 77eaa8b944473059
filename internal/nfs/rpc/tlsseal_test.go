package rpc

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/tlsca/tlscatest"
	"github.com/regionfs/regionfs/internal/testkit"
)

// rpcRecord returns an RPC record (its mark included) of n bytes of
// body: writer and index first, then bytes of a seed of them.
func rpcRecord(writer, index, n int) []byte {
	n = max(n, 8)
	rec := make([]byte, RecordHeaderSize+n)
	binary.BigEndian.PutUint32(rec[4:], uint32(writer))
	binary.BigEndian.PutUint32(rec[8:], uint32(index))
	rng := rand.New(rand.NewPCG(uint64(writer), uint64(index)))
	for i := 12; i < len(rec); i++ {
		rec[i] = byte(rng.Uint32())
	}
	FinishRecord(rec)
	return rec
}

// pieces cuts rec into up to three pieces at random places.
func pieces(rng *rand.Rand, rec []byte) [][]byte {
	a := rng.IntN(len(rec) + 1)
	b := a + rng.IntN(len(rec)-a+1)
	return [][]byte{rec[:a], rec[a:b], rec[b:]}
}

// TestWriteRecordSameStreamAsWrite: WriteRecord seals the same bytes
// Write does for the same records, with the KeyUpdates at the same
// places (at a limit of 3 records a key, and the peer's request to
// update, and this side's wish that the peer updates, met before the
// next record) — the sequence numbers and key changes of one path are
// the other's.
func TestWriteRecordSameStreamAsWrite(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var recs [][]byte
	for i := range 12 {
		recs = append(recs, rpcRecord(0, i, rng.IntN(5*MaxTLSPlaintext)))
	}
	stream := func(seal func(w *TLSWriter, rec []byte)) ([]byte, uint64) {
		c := &bufConn{}
		w := &TLSWriter{BC: &BatchConn{Conn: c}, key: fuzzKey(t), limit: 3}
		for i, rec := range recs {
			switch i {
			case 4:
				w.answer.Store(true)
			case 7:
				w.ask.Store(true)
			}
			seal(w, rec)
		}
		if err := w.CloseNotify(); err != nil {
			t.Fatal(err)
		}
		return c.w.Bytes(), w.KeyUpdates.Load()
	}
	want, wantUpdates := stream(func(w *TLSWriter, rec []byte) {
		if _, err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	})
	got, gotUpdates := stream(func(w *TLSWriter, rec []byte) {
		if err := w.WriteRecord(pieces(rng, rec), 0); err != nil {
			t.Fatal(err)
		}
	})
	if !bytes.Equal(got, want) {
		t.Fatalf("WriteRecord sealed %d bytes unlike Write's %d", len(got), len(want))
	}
	if gotUpdates != wantUpdates || gotUpdates < 10 {
		t.Fatalf("KeyUpdates: WriteRecord %d, Write %d (want the same, at least 10)", gotUpdates, wantUpdates)
	}
	if back := readAll(t, got, 65535); !bytes.Equal(back, bytes.Join(recs, nil)) {
		t.Fatalf("read %d bytes back, want %d", len(back), len(bytes.Join(recs, nil)))
	}
	if err := (&TLSWriter{BC: &BatchConn{Conn: &bufConn{}}, key: fuzzKey(t), err: errWriterClosed}).WriteRecord([][]byte{[]byte("x")}, 0); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteRecord after close_notify: %v", err)
	}
}

// TestWriteRecordConcurrentWithCryptoTLS: writers sealing RPC records at
// once with WriteRecord (and one with whole-record Writes), the key
// moving every 5 records, are read by crypto/tls as a stream in which
// every record is whole and each writer's records come in the order it
// wrote them; crypto/tls follows every KeyUpdate.
func TestWriteRecordConcurrentWithCryptoTLS(t *testing.T) {
	ca, cert, ln := tlscatest.Listener(t)
	defer ln.Close()
	const writers, each = 6, 25
	errc := make(chan error, 1)
	var tw *TLSWriter
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
		tc := tls.Server(bc, &tls.Config{Certificates: []tls.Certificate{cert}, KeyLogWriter: log, SessionTicketsDisabled: true})
		if err := tc.Handshake(); err != nil {
			errc <- err
			return
		}
		_, tw, err = TakeOver(tc, br, bc, log, false, true)
		if err != nil || tw == nil {
			errc <- fmt.Errorf("TakeOver: %v, %v", tw, err)
			return
		}
		tw.limit = 5
		var wg sync.WaitGroup
		werr := make(chan error, writers)
		for g := range writers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), 99))
				for i := range each {
					rec := rpcRecord(g, i, rng.IntN(200<<10))
					var err error
					if g == 0 {
						_, err = tw.Write(rec) // one whole record under the lock
					} else {
						err = tw.WriteRecord(pieces(rng, rec), time.Minute)
					}
					if err != nil {
						werr <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(werr)
		if err := <-werr; err != nil {
			errc <- err
			return
		}
		errc <- tw.CloseNotify()
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(2 * time.Minute))
	tc := tls.Client(nc, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	next := make([]int, writers)
	var buf []byte
	for {
		rec, err := ReadRecord(tc, buf, 1<<20)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("crypto/tls read: %v", err)
		}
		g, i := int(binary.BigEndian.Uint32(rec)), int(binary.BigEndian.Uint32(rec[4:]))
		if g >= writers || i != next[g] {
			t.Fatalf("record %d of writer %d, want %v", i, g, next)
		}
		if want := rpcRecord(g, i, len(rec)); !bytes.Equal(rec, want[RecordHeaderSize:]) {
			t.Fatalf("record %d of writer %d (%d bytes) changed", i, g, len(rec))
		}
		next[g]++
		buf = rec
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for g, n := range next {
		if n != each {
			t.Errorf("writer %d: %d records read, want %d", g, n, each)
		}
	}
	if n := tw.KeyUpdates.Load(); n < writers*each*2/5 {
		t.Errorf("%d KeyUpdates at 5 records a key", n)
	}
}

// gateConn is a connection whose writes wait until open is closed (the
// first one signals entered), then go to a buffer or fail.
type gateConn struct {
	net.Conn
	entered chan struct{}
	open    chan struct{}
	fail    error

	mu sync.Mutex
	w  bytes.Buffer
	n  int // writes
}

func (c *gateConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.n++
	first := c.n == 1
	c.mu.Unlock()
	if first {
		close(c.entered)
		<-c.open
	}
	if c.fail != nil {
		return 0, c.fail
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.Write(p)
}

func (c *gateConn) SetWriteDeadline(time.Time) error { return nil }

// TestWriteRecordSealsWhileEarlierWrites: while one reply's write is
// blocked on the socket, the next reply is sealed (outside the lock),
// and waits for its turn; it is written after the first, and the stream
// reads back in that order. Before, replies were sealed under the
// connection's write lock, one after the other's write.
func TestWriteRecordSealsWhileEarlierWrites(t *testing.T) {
	c := &gateConn{entered: make(chan struct{}), open: make(chan struct{})}
	w := &TLSWriter{BC: &BatchConn{Conn: c}, key: fuzzKey(t)}
	first, second := rpcRecord(1, 0, 3*MaxTLSPlaintext), rpcRecord(2, 0, 100)
	errs := make(chan error, 2)
	go func() { errs <- w.WriteRecord([][]byte{first}, 0) }()
	<-c.entered
	go func() { errs <- w.WriteRecord([][]byte{second}, 0) }()
	testkit.WaitFor(t, "the second reply sealed while the first is written", time.Minute, func() bool {
		w.BC.mu.Lock()
		defer w.BC.mu.Unlock()
		return w.tickets.sealed == 2
	})
	c.mu.Lock()
	if c.n != 1 {
		t.Errorf("%d writes while the first is blocked, want 1", c.n)
	}
	c.mu.Unlock()
	close(c.open)
	for range 2 {
		if err := testkit.Recv(t, "a write", time.Minute, errs); err != nil {
			t.Fatal(err)
		}
	}
	if got := readAll(t, c.w.Bytes(), 65535); !bytes.Equal(got, append(bytes.Clone(first), second...)) {
		t.Fatalf("read %d bytes back, not the two records in order", len(got))
	}
}

// TestWriteRecordFailedWriteEndsStream: a write that fails fails the
// replies sealed behind it without writing them, and every later one;
// Write fails too.
func TestWriteRecordFailedWriteEndsStream(t *testing.T) {
	broken := errors.New("broken pipe")
	c := &gateConn{entered: make(chan struct{}), open: make(chan struct{}), fail: broken}
	w := &TLSWriter{BC: &BatchConn{Conn: c}, key: fuzzKey(t)}
	errs := make(chan error, 2)
	go func() { errs <- w.WriteRecord([][]byte{rpcRecord(1, 0, 10)}, 0) }()
	<-c.entered
	go func() { errs <- w.WriteRecord([][]byte{rpcRecord(2, 0, 10)}, 0) }()
	testkit.WaitFor(t, "the second reply sealed", time.Minute, func() bool {
		w.BC.mu.Lock()
		defer w.BC.mu.Unlock()
		return w.tickets.sealed == 2
	})
	close(c.open)
	for range 2 {
		if err := testkit.Recv(t, "a write", time.Minute, errs); !errors.Is(err, broken) {
			t.Fatalf("write: %v, want %v", err, broken)
		}
	}
	if c.n != 1 {
		t.Errorf("%d writes reached the connection, want 1", c.n)
	}
	if err := w.WriteRecord([][]byte{rpcRecord(3, 0, 10)}, 0); !errors.Is(err, broken) {
		t.Errorf("a later WriteRecord: %v", err)
	}
	if _, err := w.Write(rpcRecord(4, 0, 10)); !errors.Is(err, broken) {
		t.Errorf("a later Write: %v", err)
	}
	if w.key.secret != nil {
		t.Error("the secret outlives the stream")
	}
}
