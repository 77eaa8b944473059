package replication

import (
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

// Hard fencing over a saturated link: the source writes 32 MiB of new
// blocks, which the link (4 MiB/s) carries in about two leases, the
// shipping loop sending them all the while (pushBlocks). The destination
// is up and answers every heartbeat it receives: the lease must hold.
// When acknowledgements were taken and heartbeats sent only by the
// shipping loop, between its sends, the lease ran out (the source's
// writes stopped: read-only beside a live destination) and the stream
// was cut for a silence that was the loop's own (before: 60-84 writes
// refused, the stream cut 2-3 times, in each run).
func TestLeaseHeldOnSaturatedLink(t *testing.T) {
	ctx := t.Context()
	const lease = 4 * time.Second
	a, b, px := proxiedPair(t, func(o *Options) { o.Lease, o.Heartbeat = lease, 50*time.Millisecond })
	src := a.mkfs("fs-src")
	dst := func() *engine.FS { return b.fs("fs-dst") }
	link(t, a, b, "r1", "fs-src", "fs-dst")
	if err := a.n.AwaitLease(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	converged(t, src, dst())
	a.n.mu.Lock()
	o := a.n.outbound["r1"]
	a.n.mu.Unlock()
	streams := a.n.upgrades.Load() + a.n.fallbacks.Load()

	px.SetPieceBytes(4 << 10)
	px.SetBandwidth(4 << 20)
	f, err := src.Create(ctx, engine.RootCred, engine.RootIno, "big", engine.CreateGuarded, engine.SetAttr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	const size = 32 << 20
	data := make([]byte, size)
	rand.Read(data)
	// Two writes of 16 MiB: two records of 16 new blocks each, which
	// the shipping loop pushes in one go (pushBlocks) before each.
	for off := 0; off < size; off += 16 << 20 {
		if _, _, err := src.Write(ctx, engine.RootCred, f.Attr.Ino, uint64(off), data[off:off+16<<20]); err != nil {
			t.Fatal(err)
		}
	}
	bigSeq := o.fs.DurableSeq()
	// While the blocks cross, the source keeps taking writes: its lease
	// is never stopped.
	var writes, refused, stopped atomic.Int64
	stop := testkit.Repeat(func() error {
		if o.fs.Stops()&engine.StopLease != 0 {
			stopped.Add(1)
		}
		_, err := src.Mkdir(ctx, engine.RootCred, engine.RootIno, fmt.Sprint("d", writes.Add(1)), engine.SetAttr{})
		if err != nil {
			refused.Add(1)
		}
		time.Sleep(20 * time.Millisecond) // pacing, not waiting for anything
		return nil
	})
	testkit.WaitFor(t, "the big file on the replica", 60*time.Second, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		return st.Applied >= bigSeq
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	px.SetBandwidth(0)
	converged(t, src, dst())
	if n := stopped.Load(); n > 0 {
		t.Errorf("the lease stopped the source's writes (seen %d times) beside a live destination on a saturated link", n)
	}
	if n := refused.Load(); n > 0 {
		t.Errorf("%d of %d writes refused on the source while its destination answered", n, writes.Load())
	}
	// A stream cut for silence (2/5 of the lease without an answer) was
	// the other symptom; a destination starved of CPU (a loaded test
	// machine, -race) can be that slow to answer on its own, so it is
	// reported, and the lease's stop and the refused writes, which need
	// a silence of a whole lease, decide.
	t.Logf("streams opened during the transfer: %d", a.n.upgrades.Load()+a.n.fallbacks.Load()-streams)
}
