package client

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// TestChangeRetransmittedWithItsXID: a call that changes the file system
// ends when its caller gives up, and when its connection is lost before
// the reply it is retransmitted with the same XID, so the server's
// duplicate request cache can answer it.
func TestChangeRetransmittedWithItsXID(t *testing.T) {
	s, next, dials := pipeSession(t)
	reply := func(c pipeCall, v uint32) {
		e := xdr.NewEncoder(nil)
		e.Reserve(rpc.RecordHeaderSize)
		rpc.AppendAccepted(e, c.h.XID, rpc.Success)
		e.Uint32(v)
		b := e.Bytes()
		rpc.FinishRecord(b)
		c.out.Write(b)
	}
	type result struct {
		v   uint32
		err error
	}
	run := func(ctx context.Context) chan result {
		done := make(chan result, 1)
		go func() {
			var r proto.Uint32Res
			err := s.call(ctx, Unix("t", 0, 0), proto.ProgNFS, proto.VersNFS, proto.ProcRemove, proto.Void{}, &r)
			done <- result{r.V, err}
		}()
		return done
	}

	// The caller gives up once the call is out (a mount's caller being
	// killed): the call ends with its context's error.
	ctx, cancel := context.WithCancel(context.Background())
	done := run(ctx)
	next()
	cancel()
	select {
	case r := <-done:
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("REMOVE whose caller gave up: %+v, want context.Canceled", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a REMOVE whose caller gave up did not end")
	}

	// The connection is lost before the reply: the retransmission on
	// the next connection carries the first attempt's XID.
	done = run(context.Background())
	first := next()
	first.out.Close()
	again := next()
	if again.h.XID != first.h.XID {
		t.Fatalf("retransmitted REMOVE has XID %#x, the first attempt %#x", again.h.XID, first.h.XID)
	}
	reply(again, 9)
	if r := <-done; r.err != nil || r.v != 9 {
		t.Fatalf("retransmitted REMOVE: %+v", r)
	}
	if n := dials.Load(); n != 2 {
		t.Fatalf("%d dials, want 2", n)
	}

	// A read-only call still ends with its caller.
	ctx, cancel = context.WithCancel(context.Background())
	d := make(chan error, 1)
	go func() {
		var r proto.Uint32Res
		d <- s.call(ctx, Unix("t", 0, 0), proto.ProgNFS, proto.VersNFS, proto.ProcGetAttr, proto.Void{}, &r)
	}()
	next()
	cancel()
	select {
	case err := <-d:
		if err == nil {
			t.Fatal("an abandoned GETATTR succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a GETATTR outlived its caller")
	}
}

// pipeCall is a call a pipeSession's server read, and the connection to
// answer it on.
type pipeCall struct {
	h   rpc.CallHeader
	out net.Conn
}

// pipeSession is a session whose connections are pipes to a server that
// hands the test each call it reads (next, which fails the test after
// 10 s without one), to answer or not; dials counts the connections made.
func pipeSession(t *testing.T) (s *Session, next func() pipeCall, dials *atomic.Int32) {
	t.Helper()
	calls := make(chan pipeCall, 4)
	dials = new(atomic.Int32)
	s = NewSession(SessionOptions{Dial: func(ctx context.Context) (Dialed, error) {
		dials.Add(1)
		cs, ss := net.Pipe()
		go func() {
			for {
				rec, err := rpc.ReadRecord(ss, nil, 1<<20)
				if err != nil {
					return
				}
				h, _, err := rpc.ParseCall(rec)
				if err != nil {
					return
				}
				calls <- pipeCall{h, ss}
			}
		}()
		return Dialed{Conn: NewConn(cs), Addr: "pipe"}, nil
	}})
	t.Cleanup(func() { s.Close() })
	next = func() pipeCall {
		t.Helper()
		select {
		case c := <-calls:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("no call reached the server")
			return pipeCall{}
		}
	}
	return s, next, dials
}
