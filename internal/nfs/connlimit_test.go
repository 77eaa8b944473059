package nfs

import (
	"context"
	"net"
	"os"
	"sync"
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

// rawDialFrom is rawDial from the loopback address ip (a client of its
// own).
func (v *testEnv) rawDialFrom(t *testing.T, ip string) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	nc, err := d.Dial("tcp", v.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

// TestConnLimitPerClient: the connection limit was the region's alone, so
// one client opening connections closed the idle ones of every other
// client, oldest first. Now a client address at its share (3 of 4 here)
// closes its own idle longest; at the limit a new connection closes the
// idle longest of the client holding the most connections; and a client
// at its share with none of its own idle is refused, whatever the others
// hold. Clients are 127.0.0.2 (x, opening many) and 127.0.0.3 (y).
func TestConnLimitPerClient(t *testing.T) {
	const x, y = "127.0.0.2", "127.0.0.3"
	null := func(r *rawConn, xid uint32) {
		t.Helper()
		r.send(rawCall(xid, proto.ProgNFS, proto.VersNFS, proto.ProcNull, client.Unix("t", 0, 0), nil))
		r.reply()
	}
	newEnvLimit := func(t *testing.T, limit, perClient int) (*testEnv, func() int) {
		b := NewBudgets(0, 0)
		b.Conns = newConnLimit(limit, perClient)
		v := newEnv(t, envOpt{opts: Options{Budgets: b}})
		return v, func() int {
			v.srv.mu.Lock()
			defer v.srv.mu.Unlock()
			return len(v.srv.conns)
		}
	}
	t.Run("evicts its own, then the largest client's", func(t *testing.T) {
		v, served := newEnvLimit(t, 4, 3)
		dial := func(ip string, want int) *rawConn {
			t.Helper()
			r := v.rawDialFrom(t, ip)
			testkit.WaitFor(t, "the connection served", time.Minute, func() bool { return served() == want })
			return r
		}
		y1 := dial(y, 1) // idle longest of all
		x1, x2 := dial(x, 2), dial(x, 3)
		dial(x, 4)
		// x at its share: its own idle longest goes, not y's older one.
		dial(x, 4)
		x1.closed()
		// y below its share at the limit: x, holding the most, gives way.
		dial(y, 4)
		x2.closed()
		null(y1, 1)
		if n := testutil.ToFloat64(v.srv.met.shedIdle); n != 2 {
			t.Fatalf("idle connections shed: %v, want 2", n)
		}
	})
	t.Run("refused at its share with none idle", func(t *testing.T) {
		v, served := newEnvLimit(t, 4, 2)
		release := make(chan struct{})
		unblock := sync.OnceFunc(func() { close(release) })
		defer unblock() // also when the test fails: the server's shutdown waits for the NULLs
		var held atomic.Int32
		v.srv.testHook = func(r *request) {
			if r.h.XID == 99 {
				held.Add(1)
				<-release
			}
		}
		y1 := v.rawDialFrom(t, y)
		testkit.WaitFor(t, "y's connection served", time.Minute, func() bool { return served() == 1 })
		var busy []*rawConn
		for range 2 {
			r := v.rawDialFrom(t, x)
			r.send(rawCall(99, proto.ProgNFS, proto.VersNFS, proto.ProcNull, client.Unix("t", 0, 0), nil))
			busy = append(busy, r)
		}
		testkit.WaitFor(t, "x's two NULLs in flight", time.Minute, func() bool { return held.Load() == 2 })
		// Below the limit (3 of 4), but x is at its share, all busy.
		v.rawDialFrom(t, x).closed()
		if n := testutil.ToFloat64(v.srv.met.shedNew); n != 1 {
			t.Fatalf("new connections refused: %v, want 1", n)
		}
		null(y1, 1)
		// y still gets the last place.
		y2 := v.rawDialFrom(t, y)
		null(y2, 2)
		unblock()
		for _, r := range busy {
			r.reply()
		}
	})
}
