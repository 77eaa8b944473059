package nfs

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

func decodeStatus(t *testing.T, rec []byte, res proto.Message) {
	t.Helper()
	_, body, err := rpcParse(rec)
	if err != nil {
		t.Fatal(err)
	}
	d := xdr.NewDecoder(body)
	res.Decode(d)
	if err := d.Done(); err != nil {
		t.Fatal(err)
	}
}

// TestDuplicateRequestCache: a retransmission of a non-idempotent call
// (same XID and arguments), even on a new connection, gets the original
// reply instead of running again.
func TestDuplicateRequestCache(t *testing.T) {
	f := newFixture(t, envOpt{})
	unix := client.Unix("t", 0, 0)
	create := rawCall(1000, proto.ProgNFS, 3, proto.ProcCreate, unix,
		&proto.CreateArgs{Where: proto.DirOp{Dir: f.root, Name: "dup"}, Mode: proto.Guarded})
	c1 := f.rawDial(t)
	c1.send(create)
	first := c1.reply()
	var res proto.CreateRes
	decodeStatus(t, first, &res)
	if res.Status != proto.OK {
		t.Fatalf("first create %v", res.Status)
	}
	// The client lost the reply and reconnects.
	c1.nc.Close()
	c2 := f.rawDial(t)
	c2.send(create)
	again := c2.reply()
	if !bytes.Equal(first, again) {
		decodeStatus(t, again, &res)
		t.Fatalf("retransmission answered %v, not the original reply", res.Status)
	}
	// The same XID with other arguments is another call: it runs.
	other := rawCall(1000, proto.ProgNFS, 3, proto.ProcCreate, unix,
		&proto.CreateArgs{Where: proto.DirOp{Dir: f.root, Name: "dup2"}, Mode: proto.Guarded})
	c2.send(other)
	decodeStatus(t, c2.reply(), &res)
	if res.Status != proto.OK {
		t.Fatalf("create dup2 %v", res.Status)
	}
	// A new XID for the same arguments runs again: EXIST.
	c2.send(rawCall(1001, proto.ProgNFS, 3, proto.ProcCreate, unix,
		&proto.CreateArgs{Where: proto.DirOp{Dir: f.root, Name: "dup"}, Mode: proto.Guarded}))
	decodeStatus(t, c2.reply(), &res)
	if res.Status != proto.ErrExist {
		t.Fatalf("new xid: %v", res.Status)
	}
	// REMOVE and RENAME retransmitted: OK both times, not NOENT.
	for i, args := range []proto.Message{
		&proto.RenameArgs{From: proto.DirOp{Dir: f.root, Name: "dup2"}, To: proto.DirOp{Dir: f.root, Name: "dup3"}},
		&proto.DirOp{Dir: f.root, Name: "dup3"},
	} {
		proc := uint32(proto.ProcRename)
		if i == 1 {
			proc = proto.ProcRemove
		}
		rec := rawCall(2000+uint32(i), proto.ProgNFS, 3, proc, unix, args)
		c2.send(rec)
		a := c2.reply()
		c2.send(rec)
		b := c2.reply()
		var st proto.Status
		if proc == proto.ProcRename {
			var wr proto.RenameRes
			decodeStatus(t, a, &wr)
			st = wr.Status
		} else {
			var wr proto.WccRes
			decodeStatus(t, a, &wr)
			st = wr.Status
		}
		if st != proto.OK || !bytes.Equal(a, b) {
			t.Fatalf("proc %d: first %v, retransmission differs: %v", proc, st, !bytes.Equal(a, b))
		}
	}
	// Idempotent procedures are not cached (a GETATTR runs each time).
	ga := rawCall(3000, proto.ProgNFS, 3, proto.ProcGetAttr, unix, &proto.FHArgs{FH: f.root})
	c2.send(ga)
	a := c2.reply()
	f.create(t, f.root, "changes-the-root", "")
	c2.send(ga)
	if bytes.Equal(a, c2.reply()) {
		t.Fatal("GETATTR answered from a cache")
	}
}

// TestDuplicateInProgress: a retransmission arriving while the original
// still runs waits for it and gets its reply.
func TestDuplicateInProgress(t *testing.T) {
	f := newFixture(t, envOpt{})
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	f.srv.testHook = func(r *request) {
		if r.h.Prog == proto.ProgNFS && r.h.Proc == proto.ProcMkdir {
			once.Do(func() { close(entered); <-release })
		}
	}
	unix := client.Unix("t", 0, 0)
	mk := rawCall(77, proto.ProgNFS, 3, proto.ProcMkdir, unix, &proto.MkdirArgs{Where: proto.DirOp{Dir: f.root, Name: "slow"}})
	c1, c2 := f.rawDial(t), f.rawDial(t)
	c1.send(mk)
	<-entered
	c2.send(mk)
	got := make(chan []byte, 1)
	go func() { got <- c2.reply() }()
	select {
	case <-got:
		t.Fatal("the retransmission was answered before the original finished")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	a, b := c1.reply(), <-got
	var res proto.CreateRes
	decodeStatus(t, b, &res)
	if !bytes.Equal(a, b) || res.Status != proto.OK {
		t.Fatalf("retransmission %v, equal %v", res.Status, bytes.Equal(a, b))
	}
}

// TestConcurrentRequests: requests of one connection run concurrently
// and replies come back out of order; the per-connection limit holds.
func TestConcurrentRequests(t *testing.T) {
	f := newFixture(t, envOpt{opts: Options{MaxInflightPerConn: 4}})
	block := make(chan struct{})
	entered := make(chan struct{}, 16)
	f.srv.testHook = func(r *request) {
		if r.h.Prog == proto.ProgNFS && r.h.Proc == proto.ProcGetAttr {
			entered <- struct{}{}
			<-block
		}
	}
	ctx := context.Background()
	done := make(chan error, 4)
	for range 3 {
		go func() { _, err := f.c.GetAttr(ctx, f.root); done <- err }()
	}
	for range 3 {
		<-entered
	}
	// The fourth slot is free: a NULL sent after the GETATTRs is answered
	// first.
	if err := f.c.Null(ctx, proto.ProgNFS, 3); err != nil {
		t.Fatal(err)
	}
	// Fill the last slot; now the connection is at its limit and the
	// server stops reading it.
	go func() { _, err := f.c.GetAttr(ctx, f.root); done <- err }()
	<-entered
	nullDone := make(chan error, 1)
	go func() { nullDone <- f.c.Null(ctx, proto.ProgNFS, 3) }()
	select {
	case err := <-nullDone:
		t.Fatalf("a fifth request was served beyond the limit of 4 (%v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	// Another connection is not affected.
	other := f.dial()
	if err := other.Null(ctx, proto.ProgNFS, 3); err != nil {
		t.Fatal(err)
	}
	close(block)
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := <-nullDone; err != nil {
		t.Fatal(err)
	}
	f.srv.testHook = nil
}

// TestConcurrentMixed: many goroutines share one connection for writes,
// reads and metadata; every reply matches its request.
func TestConcurrentMixed(t *testing.T) {
	f := newFixture(t, envOpt{})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := "g" + string(rune('a'+g))
			cr, err := f.c.Create(ctx, f.root, name, proto.Guarded, proto.Sattr{})
			if err != nil {
				errs <- err
				return
			}
			want := bytes.Repeat([]byte{byte(g)}, 10000+g)
			for off := 0; off < len(want); off += 1000 {
				end := min(off+1000, len(want))
				if _, err := f.c.Write(ctx, cr.FH, uint64(off), want[off:end], proto.Unstable); err != nil {
					errs <- err
					return
				}
			}
			if _, err := f.c.Commit(ctx, cr.FH, 0, 0); err != nil {
				errs <- err
				return
			}
			rd, err := f.c.Read(ctx, cr.FH, 0, 1<<20)
			if err != nil || !bytes.Equal(rd.Data, want) {
				errs <- err
				t.Errorf("%s: read %d bytes, want %d", name, len(rd.Data), len(want))
				return
			}
			lk, err := f.c.Lookup(ctx, f.root, name)
			if err != nil || !bytes.Equal(lk.FH, cr.FH) {
				t.Errorf("%s: lookup %v", name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestDRCKeyOfLargeArgs: a large call's key covers its start (handle,
// offset) and both ends of its data, and its length.
func TestDRCKeyOfLargeArgs(t *testing.T) {
	addr := netip.MustParseAddr("127.0.0.1")
	h := &rpc.CallHeader{XID: 7, Prog: proto.ProgNFS, Vers: proto.VersNFS, Proc: proto.ProcWrite}
	args := make([]byte, 1<<20)
	for i := range args {
		args[i] = byte(i * 7)
	}
	k := drcKeyOf(addr, false, h, args)
	if drcKeyOf(addr, false, h, bytes.Clone(args)) != k {
		t.Fatal("the same call has two keys")
	}
	for _, at := range []int{0, 40, drcSumEdge - 1, len(args) - drcSumEdge, len(args) - 1} {
		c := bytes.Clone(args)
		c[at]++
		if drcKeyOf(addr, false, h, c) == k {
			t.Errorf("a change at byte %d keeps the key", at)
		}
	}
	if drcKeyOf(addr, false, h, args[:len(args)-1]) == k {
		t.Error("a shorter call keeps the key")
	}
	small := []byte("handle, offset, a few bytes")
	c := bytes.Clone(small)
	c[len(c)/2]++
	if drcKeyOf(addr, false, h, small) == drcKeyOf(addr, false, h, c) {
		t.Error("a small call's key does not cover all of it")
	}
}

// TestDRCKeyReadsOnlyTheEnds: the key of a large call reads its ends
// only. Its middle here is a page the process may not read: a key that
// checksummed all of the arguments (as f88e193's did before overwriting
// that sum with the ends') faults there, and so cost every 1 MiB WRITE a
// checksum of all its data.
func TestDRCKeyReadsOnlyTheEnds(t *testing.T) {
	page := os.Getpagesize()
	mem, err := unix.Mmap(-1, 0, 3*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if err := unix.Mprotect(mem[page:2*page], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	h := &rpc.CallHeader{XID: 7, Prog: proto.ProgNFS, Vers: proto.VersNFS, Proc: proto.ProcWrite}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			t.Fatalf("the key of a %d-byte call read its middle: %v", len(mem), v)
		}
	}()
	drcKeyOf(netip.MustParseAddr("127.0.0.1"), false, h, mem)
}

// TestDRCKeepsCredentialsApart: the duplicate request cache does not
// answer one user's call with the reply of another's that has the same
// client address, XID and arguments (two processes behind one address,
// a NAT, or a guessed XID): a CREATE in a directory only root may write,
// sent again with the same XID by another user, runs and is refused,
// instead of handing that user root's reply (the new file's handle and
// attributes). A retransmission by the same user whose AUTH_UNIX stamp
// changed is still answered from the cache.
func TestDRCKeepsCredentialsApart(t *testing.T) {
	f := newFixture(t, envOpt{})
	dir := f.mkdir(t, f.root, "roots", 0o755)
	const xid = 0xd0c
	args := &proto.CreateArgs{Where: proto.DirOp{Dir: dir, Name: "mine"}, Mode: proto.Guarded}
	r := f.rawDial(t)
	r.send(rawCall(xid, proto.ProgNFS, proto.VersNFS, proto.ProcCreate, client.Unix("h", 0, 0), args))
	first := r.reply()
	var res proto.CreateRes
	decodeStatus(t, first, &res)
	if res.Status != proto.OK {
		t.Fatalf("root's CREATE: %v", res.Status)
	}
	// The same user, its credential's stamp changed: the cached reply.
	again := rawCall(xid, proto.ProgNFS, proto.VersNFS, proto.ProcCreate, client.Unix("h", 0, 0), args)
	stamp := rpc.RecordHeaderSize + 6*4 + 2*4 + 3 // record mark; xid..proc; flavor, body length; the stamp's last byte
	again[stamp]++
	r.send(again)
	if rep := r.reply(); !bytes.Equal(rep, first) {
		decodeStatus(t, rep, &res)
		t.Fatalf("root's retransmission with another stamp: %v, not the original reply", res.Status)
	}
	other := f.rawDial(t)
	other.send(rawCall(xid, proto.ProgNFS, proto.VersNFS, proto.ProcCreate, client.Unix("h", 1234, 1234), args))
	rep := other.reply()
	decodeStatus(t, rep, &res)
	if res.Status != proto.ErrAcces {
		t.Fatalf("another user's CREATE with root's XID and arguments: %v (same reply as root's: %v), want NFS3ERR_ACCES",
			res.Status, bytes.Equal(rep, first))
	}
}
