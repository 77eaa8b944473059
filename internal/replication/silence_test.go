package replication

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestSilenceEndsStreamBlockedInSend: a link goes dark (a partition,
// which holds closes too) while the source is in the middle of a block
// frame on a slow link, without hard fencing (nothing holds its frames
// back: the shipping loop blocks in the write once the buffers are full).
// The destination's silence must still end the stream within ackLimit:
// the source's status then says the link is down, and it reconnects once
// the link is back. The keeper checked the silence only after a
// heartbeat, which waits for the frame being written: the stream stayed
// open and the status said the link was up for as long as the partition
// lasted.
func TestSilenceEndsStreamBlockedInSend(t *testing.T) {
	ctx := t.Context()
	a, b, px := proxiedPair(t, func(o *Options) { o.StreamIdle, o.Heartbeat = time.Second, 50*time.Millisecond })
	src := a.mkfs("fs-src")
	dst := func() *engine.FS { return b.fs("fs-dst") }
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, dst())

	px.SetBandwidth(2 << 20)
	f, err := src.Create(ctx, engine.RootCred, engine.RootIno, "big", engine.CreateGuarded, engine.SetAttr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 32<<20)
	rand.Read(data)
	if _, _, err := src.Write(ctx, engine.RootCred, f.Attr.Ino, 0, data); err != nil {
		t.Fatal(err)
	}
	// 32 MiB of new blocks at 2 MiB/s: the loop is pushing them, its
	// write blocked on the full buffers of the link, when it goes dark.
	px.Partition()
	testkit.WaitFor(t, "the source to see its link down", 20*time.Second, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		return !st.LinkUp
	})
	px.SetBandwidth(0)
	px.Heal()
	converged(t, src, dst())
}
