package nfs

import (
	"context"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/testkit"
)

// failingListener fails its first fails accepts as a process out of file
// descriptors does.
type failingListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestAcceptErrorsDoNotStopServing: a failed accept (EMFILE: a client had
// opened connections up to the process's open-file limit) made Serve
// return, so the mount target served no new connection until a restart
// (`regionfs nfs serve` exited). The server now waits and accepts again.
func TestAcceptErrorsDoNotStopServing(t *testing.T) {
	var fl *failingListener
	v := newEnv(t, envOpt{wrapListener: func(ln net.Listener) net.Listener {
		fl = &failingListener{Listener: ln}
		fl.fails.Store(3)
		return fl
	}})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cc, err := client.Dial(ctx, v.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, _, err := cc.WithAuth(client.Unix("test", 0, 0)).Mount(ctx, "/"); err != nil {
		t.Fatalf("MOUNT after failed accepts: %v", err)
	}
	select {
	case err := <-v.done:
		t.Fatalf("Serve returned: %v", err)
	default:
	}
	if n := testutil.ToFloat64(v.srv.met.acceptErrors); n != 3 {
		t.Fatalf("accept errors counted %v, want 3", n)
	}
}

// TestConnectionLimit: at the limit of connections a new one closes the
// connection idle longest; connections with requests in flight and one
// in use are kept. Without a limit a client opening connections took
// every file descriptor of the process (a Go server raises its soft limit
// to the hard one; 20 000 here), and with them the engine's.
func TestConnectionLimit(t *testing.T) {
	const limit = 6
	b := NewBudgets(0, 0)
	b.Conns = NewConnLimit(limit)
	v := newEnv(t, envOpt{opts: Options{Budgets: b, WriteTimeout: 10 * time.Minute}})
	c := v.dial()
	root := v.mount(c, "/")
	cr, err := c.Create(t.Context(), root, "big", proto.Unchecked, proto.Sattr{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(t.Context(), cr.FH, 0, make([]byte, 1<<20), proto.FileSync); err != nil {
		t.Fatal(err)
	}
	c.Close()
	served := func() int {
		v.srv.mu.Lock()
		defer v.srv.mu.Unlock()
		return len(v.srv.conns)
	}
	busy := func() int {
		v.srv.mu.Lock()
		defer v.srv.mu.Unlock()
		n := 0
		for c := range v.srv.conns {
			if !c.idle() {
				n++
			}
		}
		return n
	}
	testkit.WaitFor(t, "the first client gone", time.Minute, func() bool { return served() == 0 })
	// Two connections whose replies wait for them (requests in flight).
	for range 2 {
		slowReader(t, v, cr.FH, 40, 1<<20)
	}
	testkit.WaitFor(t, "two busy connections", time.Minute, func() bool { return busy() == 2 })
	// Four idle ones fill the limit.
	idle := make([]*rawConn, 4)
	for i := range idle {
		idle[i] = v.rawDial(t)
		testkit.WaitFor(t, "the connection served", time.Minute, func() bool { return served() == 3+i })
	}
	null := func(r *rawConn, xid uint32) {
		t.Helper()
		r.send(rawCall(xid, proto.ProgNFS, proto.VersNFS, proto.ProcNull, client.Unix("t", 0, 0), nil))
		r.reply()
	}
	// A client in use takes the place of the one idle longest, and keeps
	// its own while newer ones come.
	a := v.rawDial(t)
	null(a, 1)
	idle[0].closed()
	for i := 1; i < 3; i++ {
		v.rawDial(t)
		null(a, uint32(1+i))
		idle[i].closed()
		testkit.WaitFor(t, "the connection served", time.Minute, func() bool { return served() == limit })
	}
	null(a, 10)
	if n := testutil.ToFloat64(v.srv.met.shedIdle); n != 3 {
		t.Fatalf("idle connections shed: %v, want 3", n)
	}
	// (a's last request leaves its slot just after its reply is written.)
	testkit.WaitFor(t, "the two busy connections kept, a idle", time.Minute, func() bool { return busy() == 2 })
	if n := served(); n > limit {
		t.Fatalf("%d connections served, limit %d", n, limit)
	}
}

// TestConnLimitNoneIdle: when every connection has a request in flight,
// a new connection is not counted (the server closes it).
func TestConnLimitNoneIdle(t *testing.T) {
	l := NewConnLimit(2)
	mk := func(inflight int) *conn {
		c := &conn{sem: make(chan struct{}, 4)}
		c.inflight.Store(int32(inflight))
		c.active()
		return c
	}
	b1, b2 := mk(2), mk(1)
	for _, c := range []*conn{b1, b2} {
		if ev, ok := l.add(c); !ok || ev != nil {
			t.Fatalf("add under the limit: evicted %v, ok %v", ev, ok)
		}
	}
	if ev, ok := l.add(mk(0)); ok || ev != nil {
		t.Fatalf("add at the limit with none idle: evicted %v, ok %v", ev, ok)
	}
	b2.inflight.Add(-1) // b2's request answered: idle
	if ev, ok := l.add(mk(0)); !ok || ev != b2 {
		t.Fatalf("add at the limit with one idle: evicted %v (want the idle one), ok %v", ev, ok)
	}
	l.remove(b1)
	if ev, ok := l.add(mk(1)); !ok || ev != nil {
		t.Fatalf("add after a remove: evicted %v, ok %v", ev, ok)
	}
}

// TestConnLimitKeepsRequestWaitingForSlot: a connection whose request
// has been read but waits for a processing slot (all of them taken, as
// when the server is loaded) has a request in flight: the connection
// limit must not close it as idle. It did: the connection held only the
// request slot the reader reads with, which idle took for "waiting for a
// record", so a new connection closed it and the request read ran with
// nobody to answer. (The same holds for a request waiting for the reply
// budget.)
func TestConnLimitKeepsRequestWaitingForSlot(t *testing.T) {
	b := NewBudgets(0, 0)
	b.Conns = NewConnLimit(2)
	v := newEnv(t, envOpt{opts: Options{Budgets: b, MaxInflight: 1}})
	// b's NULL (xid 99) takes the one processing slot until released.
	release := make(chan struct{})
	defer close(release)
	var holding atomic.Bool
	v.srv.testHook = func(r *request) {
		if r.h.XID == 99 {
			holding.Store(true)
			<-release
		}
	}
	null := func(xid uint32) []byte {
		return rawCall(xid, proto.ProgNFS, proto.VersNFS, proto.ProcNull, client.Unix("t", 0, 0), nil)
	}
	bc := v.rawDial(t)
	bc.send(null(99))
	testkit.WaitFor(t, "b's NULL holding the processing slot", time.Minute, holding.Load)
	// a's NULL is read and waits for the slot: its record is held.
	a := v.rawDial(t)
	a.send(null(1))
	reading := func() bool {
		v.srv.mu.Lock()
		defer v.srv.mu.Unlock()
		for c := range v.srv.conns {
			if c.remote.String() == a.nc.LocalAddr().String() {
				return c.request.Used() > 0
			}
		}
		return false
	}
	testkit.WaitFor(t, "a's NULL read, waiting for a processing slot", time.Minute, reading)
	// At the limit, with no connection idle, the new one is closed.
	d := v.rawDial(t)
	shed := func() float64 {
		return testutil.ToFloat64(v.srv.met.shedIdle) + testutil.ToFloat64(v.srv.met.shedNew)
	}
	testkit.WaitFor(t, "a connection shed", time.Minute, func() bool { return shed() == 1 })
	if n := testutil.ToFloat64(v.srv.met.shedIdle); n != 0 {
		t.Fatalf("%v connections shed as idle: a, with its NULL waiting, was closed", n)
	}
	d.closed()
	release <- struct{}{}
	for _, r := range []*rawConn{bc, a} {
		r.reply()
	}
}

// TestConnLimitKeepsRecordBeingReceived: a connection in the middle of
// receiving a record (a large WRITE) is not the one idle longest, even if
// it was accepted first: its client would have to send it all again.
func TestConnLimitKeepsRecordBeingReceived(t *testing.T) {
	b := NewBudgets(0, 0)
	b.Conns = NewConnLimit(2)
	v := newEnv(t, envOpt{opts: Options{Budgets: b}})
	served := func() int {
		v.srv.mu.Lock()
		defer v.srv.mu.Unlock()
		return len(v.srv.conns)
	}
	uploading := v.rawDial(t)
	testkit.WaitFor(t, "the first connection served", time.Minute, func() bool { return served() == 1 })
	other := v.rawDial(t)
	testkit.WaitFor(t, "the second connection served", time.Minute, func() bool { return served() == 2 })
	call := rawCall(7, proto.ProgNFS, proto.VersNFS, proto.ProcNull, client.Unix("t", 0, 0), nil)
	// The record's header and part of its body: the server grants it
	// and waits for the rest.
	uploading.send(call[:len(call)-4])
	testkit.WaitFor(t, "the record's bytes granted", time.Minute, func() bool { return v.srv.requests.Used() > 0 })
	v.rawDial(t)
	other.closed()
	uploading.send(call[len(call)-4:])
	uploading.reply()
}
