package nfs

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/tlsca/tlscatest"
	"github.com/regionfs/regionfs/internal/race"
)

// callsConn counts the Read and Write calls made on a connection (each
// one system call or more: Go's Write loops over partial writes) and the
// smallest buffer a Read was given.
type callsConn struct {
	net.Conn
	reads, writes atomic.Uint64
	minRead       atomic.Int64 // 0: no read yet
}

func (c *callsConn) Read(p []byte) (int, error) {
	c.reads.Add(1)
	for {
		m := c.minRead.Load()
		if m != 0 && m <= int64(len(p)) || c.minRead.CompareAndSwap(m, int64(len(p))) {
			break
		}
	}
	return c.Conn.Read(p)
}

func (c *callsConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// callsListener wraps each accepted connection in a callsConn.
type callsListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*callsConn
}

func (l *callsListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &callsConn{Conn: nc}
	l.mu.Lock()
	l.conns = append(l.conns, c)
	l.mu.Unlock()
	return c, nil
}

// TestTLSReadSystemCalls counts what a 1 MiB READ over TLS costs in socket
// calls on both ends, beside the cipher: the server writes each reply (65
// TLS records) in one write and reads each call in one read at most; the
// client writes each call in one write and reads the socket in pieces of
// at least 64 KiB (its 256 KiB buffer, less what a record left in it). crypto/tls
// alone writes each 16 KiB record with a system call of its own and reads
// a record (its 5-byte header, then the rest) at a time: 64+ writes and
// 130 small reads per READ. How many reads the client makes depends on how
// much has arrived when it asks (timing): logged, not checked; the size it
// asks for is. Counted only without the race detector, as the other
// system-call guards (.ci/run runs it so).
func TestTLSReadSystemCalls(t *testing.T) {
	if race.Enabled {
		t.Skip("counts system calls: the race detector's runtime makes its own (.ci/run runs this test without -race)")
	}
	var ln *callsListener
	ca, cert := tlscatest.Cert(t)
	v := newEnv(t, envOpt{
		opts: Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}},
		wrapListener: func(l net.Listener) net.Listener {
			ln = &callsListener{Listener: l}
			return ln
		},
	})
	ctx := t.Context()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", v.addr)
	if err != nil {
		t.Fatal(err)
	}
	cc := &callsConn{Conn: nc}
	c, err := client.NewTLSConn(ctx, cc, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, bufs, f := tlsReadFile(t, c)
	const reads = 16
	data := make([]byte, 1<<20)
	for i := range reads {
		for j := range data {
			data[j] = byte(i + j)
		}
		if _, err := cl.Write(ctx, f, uint64(i)<<20, data, proto.FileSync); err != nil {
			t.Fatal(err)
		}
	}
	ln.mu.Lock()
	if len(ln.conns) != 1 {
		t.Fatalf("%d connections accepted, want 1", len(ln.conns))
	}
	sc := ln.conns[0]
	ln.mu.Unlock()
	read := func(i int) {
		r, err := cl.Read(ctx, f, uint64(i)<<20, 1<<20)
		if err != nil {
			t.Error(err)
			return
		}
		if len(r.Data) != 1<<20 || r.Data[1] != byte(i+1) {
			t.Errorf("READ %d: %d bytes, data[1]=%d", i, len(r.Data), r.Data[1])
		}
		bufs.Put(r.Data)
	}
	read(0) // the first READ takes the buffers the others reuse
	count := func(what string, f func()) {
		t.Helper()
		sr, sw, cr, cw := sc.reads.Load(), sc.writes.Load(), cc.reads.Load(), cc.writes.Load()
		cc.minRead.Store(0)
		f()
		sr, sw, cr, cw = sc.reads.Load()-sr, sc.writes.Load()-sw, cc.reads.Load()-cr, cc.writes.Load()-cw
		minRead := cc.minRead.Load()
		t.Logf("%s, %d READs of 1 MiB over TLS: server %d socket writes, %d reads; client %d writes, %d reads (the smallest asked for %d bytes)",
			what, reads, sw, sr, cw, cr, minRead)
		if sw > reads || cw > reads {
			t.Errorf("%s: %d socket writes on the server and %d on the client for %d READs of 1 MiB over TLS; want at most one each per READ (its reply, its call)", what, sw, cw, reads)
		}
		// A call is ~150 bytes: the server reads several in one read, or
		// one each (16 of 16 seen), never a call in pieces (a TLS
		// record's header, then its body: 2 per call). Half a read more
		// per call is allowed for a read that a deadline step ends.
		if sr > reads*3/2 {
			t.Errorf("%s: the server made %d socket reads for %d READ calls; want at most one per call (and a few more)", what, sr, reads)
		}
		if minRead < 64<<10 {
			t.Errorf("%s: the client read its socket in pieces as small as %d bytes; want at least 64 KiB per read", what, minRead)
		}
	}
	count("one at a time", func() {
		for i := range reads {
			read(i)
		}
	})
	count("4 in flight", func() {
		var wg sync.WaitGroup
		next := atomic.Int64{}
		for range 4 {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < reads; i = int(next.Add(1) - 1) {
					read(i)
				}
			})
		}
		wg.Wait()
	})
}
