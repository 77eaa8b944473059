package replication

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/testkit"
)

// writeBlockFiles creates n files named prefix%03d in fs, each of one
// MinBlockSize block of data from rng, and returns their contents.
func writeBlockFiles(t *testing.T, ctx context.Context, fs *engine.FS, rng *rand.Rand, prefix string, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range n {
		data := make([]byte, engine.MinBlockSize)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		writeFile(t, ctx, fs, fmt.Sprintf("%s%03d", prefix, i), data)
		out = append(out, data)
	}
	return out
}

// writeFile creates name in fs's root with data.
func writeFile(t *testing.T, ctx context.Context, fs *engine.FS, name string, data []byte) {
	t.Helper()
	c, err := fs.Create(ctx, engine.RootCred, engine.RootIno, name, engine.CreateGuarded, engine.SetAttr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := fs.Write(ctx, engine.RootCred, c.Attr.Ino, 0, data); err != nil {
		t.Fatal(err)
	}
}

// A stream remembers the blocks it pushed, not the replication: after a
// cut the next stream pushes the blocks its records reference again,
// unasked. The pushes the cut dropped (in the link when it broke) were
// remembered by the replication, so the next stream sent the records
// that reference them without them, and the destination asked for each
// (a round trip, and a rewind, per batch of records that needed one).
func TestCutStreamForgetsItsPushes(t *testing.T) {
	ctx := context.Background()
	a, b, px := proxiedPair(t)
	src := a.mkfs("fs-src")
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	px.Partition()
	const files = 6
	writeBlockFiles(t, ctx, src, rand.New(rand.NewPCG(22, 3)), "f", files)
	testkit.WaitFor(t, "the source to push blocks into the partitioned link", 10*time.Second, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		return st.ShippedBlocks >= files
	})
	px.Reset() // what the link held is dropped with the connection
	testkit.WaitFor(t, "the stream to end", 10*time.Second, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		return !st.LinkUp
	})
	st, _ := a.n.OutboundStatus("r1")
	lost, asks := st.ShippedBlocks, a.n.outbound["r1"].asks.Load()
	px.Heal()
	converged(t, src, b.fs("fs-dst"))
	st, _ = a.n.OutboundStatus("r1")
	asked := a.n.outbound["r1"].asks.Load() - asks
	t.Logf("%d blocks pushed into the cut; then %d blocks pushed, %d asks", lost, st.ShippedBlocks-lost, asked)
	if asked != 0 {
		t.Errorf("the destination asked %d times for blocks after the cut: the new stream took the cut one's pushes for delivered", asked)
	}
	if got := st.ShippedBlocks - lost; got != files {
		t.Errorf("the source pushed %d blocks after the cut, want %d (each once)", got, files)
	}
}

// collectOnStat holds its engine's collector back: a block file is
// removed only by the collections it runs itself, each time a block file
// is found by Stat while armed. A block store's Put of a block it holds
// already looks for it so, and returns: that collection falls between a
// pushed block's put (the receiver's putBlock) and the apply of the
// record that needs it.
type collectOnStat struct {
	disk.FS
	armed                      atomic.Bool
	e                          atomic.Pointer[engine.Engine]
	collecting, fired, deleted atomic.Int64
}

// fromPut says whether the caller is the receiver's put of a pushed
// block, outside a collection (whose own looks hold its lock).
func fromPut() bool {
	st := debug.Stack()
	return bytes.Contains(st, []byte("(*receiver).putBlock")) && !bytes.Contains(st, []byte("(*Engine).CollectGarbage"))
}

func isBlockFile(name string) bool { return len(path.Base(name)) == 2*blocks.IDSize }

func (c *collectOnStat) Stat(name string) (fs.FileInfo, error) {
	fi, err := c.FS.Stat(name)
	if err == nil && c.armed.Load() && isBlockFile(name) && !fi.IsDir() && fromPut() {
		if e := c.e.Load(); e != nil {
			// Collections until one deletes a block: the releases may
			// become collectable (durable) a little later.
			c.fired.Add(1)
			c.collecting.Add(1)
			defer c.collecting.Add(-1)
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				n, err := e.CollectGarbage(context.Background())
				if err != nil {
					return nil, err
				}
				if n > 0 {
					c.deleted.Add(int64(n))
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	return fi, err
}

func (c *collectOnStat) Remove(name string) error {
	if isBlockFile(name) && c.collecting.Load() == 0 {
		return fmt.Errorf("remove %s: the test holds the collector back: %w", name, fs.ErrPermission)
	}
	return c.FS.Remove(name)
}

// A block pushed to a replica is held from before its put until the
// record that references it is applied: the replica's collector running
// in between does not delete it, and the source pushes it once. Here the
// blocks were on the replica, released by a removal (queued for
// collection, not collected yet: collectOnStat holds the collector
// back), when a new stream (which knows of no push) pushed them again
// for files written with the same data (one at a time: a frame each).
// A collection right after the first put (collectOnStat) deleted that
// block (and the others, released and not pushed yet, which their puts
// stored again), the apply found it missing and the destination asked
// for it: 9 pushes for 8 blocks, an ask and a rewind.
func TestPushedBlockHeldUntilItsRecord(t *testing.T) {
	ctx := context.Background()
	a := newRegion(t, "us-east-1")
	b := newRegion(t, "us-west-2")
	cs := &collectOnStat{}
	b.wrapDisk = func(d disk.FS) disk.FS { cs.FS = d; return cs }
	b.stop()
	b.openEngine()
	cs.e.Store(b.e)
	startPair(a, b)
	src := a.mkfs("fs-src")
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	// The last file's block is not written again: its release, the
	// newest, is collectable once the others are, whatever holds.
	const files = 8
	data := writeBlockFiles(t, ctx, src, rand.New(rand.NewPCG(22, 4)), "f", files+1)[:files]
	converged(t, src, b.fs("fs-dst"))
	for i := range files + 1 {
		if _, err := src.Remove(ctx, engine.RootCred, engine.RootIno, fmt.Sprintf("f%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	converged(t, src, b.fs("fs-dst"))
	// The removals durable on the replica: the collector may take their
	// releases (releaseFloor).
	testkit.WaitFor(t, "the removals to be durable on the replica", 10*time.Second, func() bool {
		_, applied, _ := b.rep("fs-dst").Applied()
		return applied >= a.rep("fs-src").DurableSeq()
	})
	// A new stream: it pushes what its records reference.
	opened := a.n.upgrades.Load()
	b.n.inbound["r1"].detach()
	testkit.WaitFor(t, "a new stream", 10*time.Second, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		return a.n.upgrades.Load() > opened && st.LinkUp
	})
	o := a.n.outbound["r1"]
	st, _ := a.n.OutboundStatus("r1")
	pushed, asks := st.ShippedBlocks, o.asks.Load()
	cs.armed.Store(true)
	for i, d := range data {
		writeFile(t, ctx, src, fmt.Sprintf("g%03d", i), d)
	}
	converged(t, src, b.fs("fs-dst"))
	cs.armed.Store(false)
	st, _ = a.n.OutboundStatus("r1")
	pushed, asks = st.ShippedBlocks-pushed, o.asks.Load()-asks
	t.Logf("%d blocks pushed for %d, %d asks, %d collections between a put and an apply (%d blocks deleted)", pushed, files, asks, cs.fired.Load(), cs.deleted.Load())
	if cs.fired.Load() == 0 || cs.deleted.Load() == 0 {
		t.Fatalf("%d collections after a put of a block the replica held (%d blocks deleted): the test did not reach the race", cs.fired.Load(), cs.deleted.Load())
	}
	if pushed != files || asks != 0 {
		t.Errorf("the source pushed %d blocks for %d (%d asks): the replica's collector deleted pushed blocks before their records applied", pushed, files, asks)
	}
	// The live stream holds nothing once its records are applied: a hold
	// kept on would keep the collector from a block released later.
	in := b.n.inbound["r1"]
	testkit.WaitFor(t, "no block held once every record is applied", 10*time.Second, func() bool { return in.heldBlocks.Load() == 0 })
}

// receivers counts the goroutines of stream receivers running in this
// process.
func receivers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return bytes.Count(buf, []byte("replication.(*receiver).run("))
}

// A stream cut in the middle of a frame leaves no hold on pushed blocks
// and no goroutine of its receiver behind. The destination received the
// blocks frame (and holds its block until the records after it apply),
// and the link broke in the records frame that follows; held blocks
// would keep the replica's collector from deleting them for good.
func TestCutMidFrameReleasesHolds(t *testing.T) {
	ctx := context.Background()
	// A window of 16 KiB: the source stops reading records once that
	// much is unacknowledged, and reads up to 512 at once after.
	a, b, px := proxiedPair(t, func(o *Options) { o.WindowBytes = 16 << 10 })
	src := a.mkfs("fs-src")
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	in := b.n.inbound["r1"]
	px.Partition()
	// Past the window, one frame of records (about 300 KiB: writes of
	// 1 KiB inline) behind one block.
	rng := rand.New(rand.NewPCG(22, 5))
	small := make([]byte, 1<<10)
	for i := range 300 {
		if i == 30 {
			writeBlockFiles(t, ctx, src, rng, "big", 1)
		}
		for j := range small {
			small[j] = byte(rng.Uint32())
		}
		writeFile(t, ctx, src, fmt.Sprintf("s%03d", i), small)
	}
	px.SetBandwidth(64 << 10)
	px.SetPieceBytes(4 << 10)
	px.Heal()
	testkit.WaitFor(t, "the destination to hold the pushed block", 20*time.Second, func() bool { return in.heldBlocks.Load() > 0 })
	px.Partition()
	px.Reset() // in the records frame
	testkit.WaitFor(t, "the cut stream's receiver to end", 10*time.Second, func() bool { return receivers() == 0 })
	if n := in.heldBlocks.Load(); n != 0 {
		t.Fatalf("the cut stream left %d pushed blocks held on the replica", n)
	}
	px.SetBandwidth(0)
	px.Heal()
	converged(t, src, b.fs("fs-dst"))
	testkit.WaitFor(t, "no block held once every record is applied", 10*time.Second, func() bool { return in.heldBlocks.Load() == 0 })
}
