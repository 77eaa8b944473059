package nfs

import (
	"crypto/tls"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
)

// tlsReadFile gives c recycled reply buffers (bufs), mounts "/" as root
// and creates the file f there for the reads a test counts.
func tlsReadFile(t *testing.T, c *client.Conn) (cl *client.Client, bufs *client.Buffers, f proto.FH) {
	t.Helper()
	bufs = client.NewBuffers()
	c.UseBuffers(bufs)
	cl = c.WithAuth(client.Unix("h", 0, 0))
	root, _, err := cl.Mount(t.Context(), "/")
	if err != nil {
		t.Fatal(err)
	}
	res, err := cl.Create(t.Context(), root, "f", proto.Unchecked, proto.Sattr{})
	if err != nil {
		t.Fatal(err)
	}
	return cl, bufs, res.FH
}

// TestTLSReadAllocations: a 1 MiB READ over TLS allocates no buffer of
// its size on either end (the server seals the cached block into
// crypto/tls's and the batch's kept buffers; the client reads the reply
// into a recycled buffer). On the development VM the first touch of
// fresh memory costs ~3 ms per MiB, more than the READ itself: a
// per-request buffer anywhere on the path shows up here.
func TestTLSReadAllocations(t *testing.T) {
	v, ca := tlsEnv(t, tls.NoClientCert, false)
	ctx := t.Context()
	c, err := client.DialTLS(ctx, v.addr, &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, bufs, f := tlsReadFile(t, c)
	const size = 4 << 20
	data := make([]byte, 1<<20)
	for off := 0; off < size; off += len(data) {
		for i := range data {
			data[i] = byte(off>>20 + i)
		}
		if _, err := cl.Write(ctx, f, uint64(off), data, proto.FileSync); err != nil {
			t.Fatal(err)
		}
	}
	read := func(off uint64) {
		r, err := cl.Read(ctx, f, off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Data) != 1<<20 || r.Data[1] != byte(off>>20+1) {
			t.Fatalf("READ at %d: %d bytes, data[1]=%d", off, len(r.Data), r.Data[1])
		}
		bufs.Put(r.Data)
	}
	for off := uint64(0); off < size; off += 1 << 20 {
		read(off) // warm: the blocks cached, the buffers kept
	}
	// Replies overlapping on the server (one sealed while the one
	// before is written, rpc.TLSWriter.WriteRecord) each take a sealing
	// buffer from the server's list (Budgets.TLSReplies): warm as many
	// as a client's READs in flight at once may need, so that the first
	// overlap in the loop below does not count as a buffer per request.
	// (Even one READ at a time overlaps now and then: the client may
	// send its next call before the server's writer has put the buffer
	// of the reply before back.) A server's list stays warm for its
	// life; this one is fresh, and its parallel READs do not always
	// overlap: rounds of them until it keeps two.
	bufList := v.srv.o.Budgets.TLSReplies
	for round := 0; round < 50 && (round == 0 || bufList.Len() < 2); round++ {
		var wg sync.WaitGroup
		for off := uint64(0); off < size; off += 1 << 20 {
			wg.Go(func() { read(off) })
		}
		wg.Wait()
	}
	const reads = 32
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range reads {
		read(uint64(i%(size>>20)) << 20)
	}
	runtime.ReadMemStats(&after)
	perRead := (after.TotalAlloc - before.TotalAlloc) / reads
	t.Logf("%d bytes allocated per 1 MiB READ over TLS (client and server)", perRead)
	if perRead > 128<<10 {
		t.Fatalf("%d bytes allocated per 1 MiB READ over TLS, want under 128 KiB: a buffer per request on the path", perRead)
	}
}

// TestTLSReadCopies: over TLS 1.3 both ends decrypt what they read
// straight into the buffer it is read into (rpc.TLSReader): at most two
// TLS records per 1 MiB READ reply, on the client, and per 1 MiB WRITE
// call, on the server (where a call's records meet its neighbours' or
// the space left in a buffer is less than a record), are decrypted into
// the reader's own buffer and copied out. crypto/tls copies every byte (~1 MiB per call); so did
// the mount and the server before mount14.
func TestTLSReadCopies(t *testing.T) {
	v, ca := tlsEnv(t, tls.NoClientCert, false)
	ctx := t.Context()
	c, err := client.DialTLS(ctx, v.addr, &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, bufs, f := tlsReadFile(t, c)
	var in *rpc.TLSReader
	v.srv.mu.Lock()
	for sc := range v.srv.conns {
		in = sc.tlsIn.Load()
	}
	v.srv.mu.Unlock()
	if in == nil {
		t.Fatal("the server reads the TLS session with crypto/tls")
	}
	const calls = 8
	data := make([]byte, 1<<20)
	sd, ss := in.Direct.Load(), in.Staged.Load()
	for i := range calls {
		for j := range data {
			data[j] = byte(i + j)
		}
		if _, err := cl.Write(ctx, f, uint64(i)<<20, data, proto.FileSync); err != nil {
			t.Fatal(err)
		}
	}
	sd, ss = in.Direct.Load()-sd, in.Staged.Load()-ss
	t.Logf("server: %d WRITEs of 1 MiB, %d bytes decrypted in place, %d copied", calls, sd, ss)
	if sd+ss < calls<<20 || ss > 2*calls*rpc.MaxTLSPlaintext {
		t.Errorf("server: %d WRITEs of 1 MiB: %d bytes decrypted in place, %d copied out of the reader's buffer; want at most %d copied",
			calls, sd, ss, 2*calls*rpc.MaxTLSPlaintext)
	}
	cd, cs := c.TLSRead()
	for i := range calls {
		r, err := cl.Read(ctx, f, uint64(i)<<20, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Data) != 1<<20 || r.Data[1] != byte(i+1) {
			t.Fatalf("READ %d: %d bytes, data[1]=%d", i, len(r.Data), r.Data[1])
		}
		bufs.Put(r.Data)
	}
	d, s := c.TLSRead()
	cd, cs = d-cd, s-cs
	t.Logf("client: %d READs of 1 MiB, %d bytes decrypted in place, %d copied", calls, cd, cs)
	if cd+cs < calls<<20 || cs > 2*calls*rpc.MaxTLSPlaintext {
		t.Errorf("client: %d READs of 1 MiB: %d bytes decrypted in place, %d copied out of the reader's buffer; want at most %d copied",
			calls, cd, cs, 2*calls*rpc.MaxTLSPlaintext)
	}
}

// TestTLSReplyBuffersOwned: the buffers a server's TLS replies are
// gathered and sealed in go back to the free list of its Budgets (shared
// by the servers that share them, the mount targets of a region), not to
// one of the process: another server's list stays empty.
func TestTLSReplyBuffersOwned(t *testing.T) {
	a, ca := tlsEnv(t, tls.NoClientCert, false)
	b, _ := tlsEnv(t, tls.NoClientCert, false)
	if a.srv.o.Budgets.TLSReplies == b.srv.o.Budgets.TLSReplies {
		t.Fatal("two servers with budgets of their own share a list of reply buffers")
	}
	ctx := t.Context()
	c, err := client.DialTLS(ctx, a.addr, &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl := c.WithAuth(client.Unix("h", 0, 0))
	fh := a.file(cl, "f")
	if _, err := cl.Write(ctx, fh, 0, make([]byte, 1<<20), proto.FileSync); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Read(ctx, fh, 0, 1<<20); err != nil {
		t.Fatal(err)
	}
	// The server puts the buffer back after its write returns, which may
	// be after the client has read the reply: wait for it (bounded).
	for deadline := time.Now().Add(30 * time.Second); a.srv.o.Budgets.TLSReplies.Len() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the 1 MiB READ reply's buffer did not go back to its server's list")
		}
		time.Sleep(time.Millisecond)
	}
	if n := b.srv.o.Budgets.TLSReplies.Len(); n != 0 {
		t.Errorf("another server's list holds %d buffers", n)
	}
}
