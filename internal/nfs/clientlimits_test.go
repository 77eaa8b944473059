package nfs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// TestClientHonoursServerIOLimits is the regression test of a WRITE
// larger than the server's record limit being sent again forever: the
// server closed the connection on the oversized record, the session
// reconnected and sent the same record again. Now the client splits
// WRITEs (and bounds READs) to the server's FSINFO wtmax (rtmax), and a
// call the server keeps closing the connection on fails with
// client.ErrRejected after a few attempts.
func TestClientHonoursServerIOLimits(t *testing.T) {
	v := newEnv(t, envOpt{opts: Options{MaxRecordBytes: 128 << 10}})
	var dials atomic.Int32
	sess := client.NewSession(client.SessionOptions{Logger: testLogger(t), Dial: func(ctx context.Context) (client.Dialed, error) {
		dials.Add(1)
		c, err := client.Dial(ctx, v.addr)
		return client.Dialed{Conn: c, Addr: v.addr}, err
	}})
	t.Cleanup(func() { sess.Close() })
	c := sess.Client(client.Unix("t", 0, 0))
	// Generous: a hang detector, not a timing test.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	root, _, err := c.Mount(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	cr, err := c.Create(ctx, root, "big", proto.Unchecked, proto.Sattr{})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 600<<10+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	// No FSINFO asked yet: the client asks it before a large WRITE.
	w, err := c.Write(ctx, cr.FH, 0, data, proto.FileSync)
	if err != nil || w.Count != uint32(len(data)) || w.Wcc.After == nil || w.Wcc.After.Size != uint64(len(data)) {
		t.Fatalf("WRITE of %d bytes to a server with wtmax %d: %+v, %v", len(data), v.srv.maxIO, w, err)
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("the WRITE took %d connections, want 1", n)
	}
	// A READ asks for at most rtmax; the data reads back.
	var got []byte
	for uint64(len(got)) < uint64(len(data)) {
		rd, err := c.Read(ctx, cr.FH, uint64(len(got)), 4<<20)
		if err != nil || len(rd.Data) == 0 || len(rd.Data) > int(v.srv.maxIO) {
			t.Fatalf("READ at %d: %d bytes (rtmax %d), %v", len(got), len(rd.Data), v.srv.maxIO, err)
		}
		got = append(got, rd.Data...)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the data read back differs")
	}
	// A call made without the splitting (the raw WRITE procedure) that
	// the server closes the connection on fails after a few attempts.
	before := dials.Load()
	var res proto.WriteRes
	err = c.Call(ctx, proto.ProgNFS, proto.VersNFS, proto.ProcWrite,
		&proto.WriteArgs{FH: cr.FH, Count: uint32(len(data)), Stable: proto.FileSync, Data: data}, &res)
	if !errors.Is(err, client.ErrRejected) {
		t.Fatalf("an oversized WRITE sent as is: %v, want ErrRejected", err)
	}
	if n := dials.Load() - before; n > 8 {
		t.Fatalf("the oversized WRITE was sent on %d new connections", n)
	}
	// The session still works.
	if _, err := c.GetAttr(ctx, cr.FH); err != nil {
		t.Fatal(err)
	}
}

// TestClientWaitsOutClosingPath: a small call under which connections
// keep ending is not given up with ErrRejected (a hard mount waits): the
// path in front of the server (here a listener that reads the call and
// closes, as a proxy or TLS terminator does while the server is away)
// ends more connections in a row than maxRejects, and the call is
// answered once the dials reach the server again.
func TestClientWaitsOutClosingPath(t *testing.T) {
	v := newEnv(t, envOpt{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				// Read the call's record mark and some of it, then close.
				io.ReadFull(c, make([]byte, 8))
				c.Close()
			}()
		}
	}()
	const closing = 8 // more than the client's maxRejects (5)
	var dials atomic.Int32
	sess := client.NewSession(client.SessionOptions{Logger: testLogger(t), Dial: func(ctx context.Context) (client.Dialed, error) {
		addr := v.addr
		if dials.Add(1) <= closing {
			addr = ln.Addr().String()
		}
		c, err := client.Dial(ctx, addr)
		return client.Dialed{Conn: c, Addr: addr}, err
	}})
	t.Cleanup(func() { sess.Close() })
	c := sess.Client(client.Unix("t", 0, 0))
	// Generous: a hang detector, not a timing test.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	root, _, err := c.Mount(ctx, "/")
	if err != nil {
		t.Fatalf("MNT through %d closed connections: %v (a small call must wait, not fail)", closing, err)
	}
	if _, err := c.GetAttr(ctx, root); err != nil {
		t.Fatal(err)
	}
	if n := dials.Load(); n != closing+1 {
		t.Fatalf("%d dials, want %d: %d into the closing path, then the server", n, closing+1, closing)
	}
}
