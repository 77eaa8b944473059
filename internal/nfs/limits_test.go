package nfs

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestBudget: grants in arrival order, small grants in the headroom,
// cancellation gives nothing away.
func TestBudget(t *testing.T) {
	ctx := t.Context()
	b := NewBudget(1 << 20)
	g, err := b.acquire(ctx, 900<<10)
	if err != nil || g != 900<<10 {
		t.Fatal(g, err)
	}
	// A large grant waits; a later one waits behind it even when it
	// would fit.
	got := make(chan int64, 2)
	go func() { g, _ := b.acquire(ctx, 500<<10); got <- g }()
	testkit.WaitFor(t, "a contended budget", time.Minute, func() bool { return b.Contended() })
	go func() { g, _ := b.acquire(ctx, 100<<10); got <- g }()
	testkit.WaitFor(t, "two waiters", time.Minute, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.waiters) == 2 })
	// A small one passes them, in the headroom.
	if g, err := b.acquire(ctx, 4<<10); err != nil || g != 4<<10 {
		t.Fatal(g, err)
	}
	b.release(900 << 10)
	<-got
	<-got
	if u := b.Used(); u != 604<<10 {
		t.Fatalf("used %d", u)
	}
	b.release(100 << 10)
	// A canceled wait takes nothing.
	c, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { _, err := b.acquire(c, 1<<20); done <- err }()
	testkit.WaitFor(t, "a contended budget", time.Minute, func() bool { return b.Contended() })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("canceled acquire succeeded")
	}
	b.release(504 << 10)
	if u, w := b.Used(), b.Contended(); u != 0 || w {
		t.Fatalf("used %d, waiters %v after everything was returned", u, w)
	}
	// A grant larger than the budget is capped.
	if g, _ := b.acquire(ctx, 4<<20); g != 1<<20 {
		t.Fatalf("grant of %d", g)
	}
}

func TestReplyEstimate(t *testing.T) {
	fh := proto.FH(bytes.Repeat([]byte{1}, 36))
	for _, c := range []struct {
		proc uint32
		args proto.Message
		want int64
	}{
		{proto.ProcRead, &proto.ReadArgs{FH: fh, Offset: 7, Count: 65536}, minReplyBytes + 65536},
		{proto.ProcRead, &proto.ReadArgs{FH: fh, Count: 1 << 30}, minReplyBytes + 1<<20},
		{proto.ProcReadDir, &proto.ReadDirArgs{FH: fh, Count: 8192}, minReplyBytes + 8192},
		{proto.ProcReadDirPlus, &proto.ReadDirPlusArgs{FH: fh, DirCount: 4096, MaxCount: 32768}, minReplyBytes + 32768},
		{proto.ProcGetAttr, &proto.GetAttrArgs{FH: fh}, minReplyBytes},
	} {
		rec := rawCall(1, proto.ProgNFS, proto.VersNFS, c.proc, client.Unix("t", 0, 0), c.args)
		h, args, err := rpcParseCall(rec[4:])
		if err != nil {
			t.Fatal(err)
		}
		if got := replyEstimate(&h, args, 1<<20); got != c.want {
			t.Errorf("proc %d: estimate %d, want %d", c.proc, got, c.want)
		}
	}
	// Truncated arguments: no data assumed.
	if got := u32After([]byte{0, 0, 0, 40, 1, 2}, 8); got != 0 {
		t.Fatalf("u32After of a cut handle: %d", got)
	}
}

// slowReader opens a connection that asks for n READs of count bytes of
// fh and never reads the replies.
func slowReader(t *testing.T, v *testEnv, fh proto.FH, n int, count uint32) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", v.addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.(*net.TCPConn).SetReadBuffer(4 << 10)
	var calls []byte
	for i := range n {
		calls = append(calls, rawCall(uint32(1000+i), proto.ProgNFS, proto.VersNFS, proto.ProcRead, client.Unix("t", 0, 0),
			&proto.ReadArgs{FH: fh, Count: count})...)
	}
	go func() {
		_ = nc.SetWriteDeadline(time.Now().Add(time.Minute))
		nc.Write(calls) // may block: the server stops reading it
	}()
	return nc
}

// TestSlowReadersDoNotStallOthers is the regression test of issue 9 §3:
// connections that pipeline large READs and never read the replies used
// to hold every server-wide slot while their replies waited for the
// socket (up to WriteTimeout), stalling every other client. Now a reply
// waiting for its socket holds only its own connection's share.
func TestSlowReadersDoNotStallOthers(t *testing.T) {
	v := newEnv(t, envOpt{opts: Options{MaxInflight: 32, WriteTimeout: 10 * time.Minute}})
	c := v.dial()
	root := v.mount(c, "/")
	ctx := t.Context()
	cr, err := c.Create(ctx, root, "big", proto.Unchecked, proto.Sattr{})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("r"), 1<<20)
	if _, err := c.Write(ctx, cr.FH, 0, data, proto.FileSync); err != nil {
		t.Fatal(err)
	}
	const slow = 8
	for range slow {
		slowReader(t, v, cr.FH, 40, 1<<20)
	}
	// Every slow connection gets what its share allows, then is not read.
	perConn := v.srv.o.MaxConnReplyBytes
	testkit.WaitFor(t, "the slow readers' replies held", time.Minute, func() bool { return v.srv.replies.Used() >= slow*(perConn-(1<<20)) })
	// Another client is served at once, again and again.
	other := v.dial()
	for i := range 50 {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if _, err := other.GetAttr(octx, cr.FH); err != nil {
			t.Fatalf("GETATTR %d of another client with slow readers connected: %v", i, err)
		}
		rd, err := other.Read(octx, cr.FH, 0, 1<<20)
		cancel()
		if err != nil || len(rd.Data) != 1<<20 {
			t.Fatalf("READ %d of another client with slow readers connected: %v", i, err)
		}
	}
	// The slow readers hold no processing slot and at most their share.
	testkit.WaitFor(t, "no call in progress", time.Minute, func() bool { return len(v.srv.sem) == 0 })
	if used := v.srv.replies.Used(); used > slow*perConn {
		t.Fatalf("slow readers hold %d reply bytes, more than %d connections × %d", used, slow, perConn)
	}
}

// TestIncompleteRecordClosed: a record that does not arrive whole within
// RecordTimeout closes its connection and returns its memory.
func TestIncompleteRecordClosed(t *testing.T) {
	v := newEnv(t, envOpt{opts: Options{RecordTimeout: 300 * time.Millisecond}})
	r := v.rawDial(t)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 1<<31|64<<10)
	r.send(hdr[:])
	r.send(make([]byte, 1<<10))
	r.closed()
	testkit.WaitFor(t, "no request bytes held", time.Minute, func() bool { return v.srv.requests.Used() == 0 })
}

// TestPartialRecordFlood is the regression test of issue 9 §4: many
// connections each sending most of a large record and stopping used to
// make the server hold every byte (the fd limit × the maximum record).
// Now the bytes read are bounded by the request budget, stalled records
// are dropped when others wait, other clients keep being served, and the
// memory is returned.
func TestPartialRecordFlood(t *testing.T) {
	const budget = 8 << 20
	v := newEnv(t, envOpt{opts: Options{
		Budgets:       NewBudgets(budget, 0),
		RecordTimeout: 3 * time.Second,
	}})
	c := v.dial()
	root := v.mount(c, "/")
	runtime.GC()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	const conns = 48
	const record = 1 << 20
	var wg sync.WaitGroup
	flood := make([]net.Conn, conns)
	for i := range flood {
		// Generous timeouts: this checks memory and liveness, not latency
		// (test/faults measures that), and CI machines can be loaded.
		nc, err := net.DialTimeout("tcp", v.addr, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		flood[i] = nc
		wg.Add(1)
		go func() {
			defer wg.Done()
			var hdr [4]byte
			binary.BigEndian.PutUint32(hdr[:], 1<<31|record)
			_ = nc.SetWriteDeadline(time.Now().Add(time.Minute))
			nc.Write(append(hdr[:], make([]byte, record-4<<10)...))
		}()
	}
	// While the flood is on, other clients are served and the server
	// never holds more than its budget.
	var peak int64
	var ms runtime.MemStats
	start := time.Now()
	for time.Since(start) < 2*time.Second {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		_, err := c.GetAttr(ctx, root)
		cancel()
		if err != nil {
			t.Fatalf("GETATTR during the flood: %v", err)
		}
		if u := v.srv.requests.Used(); u > peak {
			peak = u
		}
		time.Sleep(20 * time.Millisecond) // a sample every 20 ms during the flood
	}
	runtime.GC()
	runtime.GC() // and the buffer pool's victims
	runtime.ReadMemStats(&ms)
	grown := int64(ms.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d connections × %d bytes of a %d-byte record: request bytes held at most %d (budget %d), live heap grew %d bytes",
		conns, record-4<<10, record, peak, budget, grown)
	if peak > budget+budget/8 {
		t.Fatalf("request bytes held %d, over the budget %d", peak, budget)
	}
	if grown > 4*budget {
		t.Fatalf("live heap grew %d bytes under the flood, budget %d", grown, budget)
	}
	// Every flood connection is closed by the server.
	for i, nc := range flood {
		_ = nc.SetReadDeadline(time.Now().Add(time.Minute))
		var b [1]byte
		if n, err := nc.Read(b[:]); n != 0 || err == nil || isTimeout(err) {
			t.Fatalf("flood connection %d still open: %d %v", i, n, err)
		}
	}
	wg.Wait()
	testkit.WaitFor(t, "no request bytes held", time.Minute, func() bool { return v.srv.requests.Used() == 0 })
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func rpcParseCall(rec []byte) (rpc.CallHeader, []byte, error) { return rpc.ParseCall(rec) }
