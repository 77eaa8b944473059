package replication

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/testkit"
)

// Passes on demand, from either region, while the source keeps writing:
// both sides compare at one common seq, so a healthy replica always
// matches (a pass that compared two different seqs would see differences
// in the ranges the writer touches).
func TestVerifyWhileWriting(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	src := a.mkfs("fs-src")
	w := newWorkload(t, 3, func() *engine.FS { return src })
	w.run(ctx, 400) // several checksum ranges
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	stop := testkit.Repeat(func() error { return w.step(ctx) })
	var seqs []uint64
	for i := range 6 {
		n := a.n
		if i%2 == 1 {
			n = b.n // from the destination region: the source runs it
		}
		r, err := n.Verify(ctx, "r1")
		if err != nil {
			stop()
			t.Fatalf("pass %d: %v", i, err)
		}
		if r.Mismatch() || r.Ranges < 2 || r.Blocks == 0 || r.Seq == 0 {
			stop()
			t.Fatalf("pass %d: %+v", i, r)
		}
		seqs = append(seqs, r.Seq)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if seqs[0] == seqs[len(seqs)-1] {
		t.Fatalf("every pass compared seq %d: the writer did not move the source", seqs[0])
	}
	st, _ := a.n.OutboundStatus("r1")
	if st.VerifyPasses != 6 || st.VerifyMismatches != 0 || st.Message != "" {
		t.Fatalf("source status after the passes: passes %d mismatches %d message %q", st.VerifyPasses, st.VerifyMismatches, st.Message)
	}
	ds, _ := b.n.InboundStatus("r1")
	if ds.VerifyPasses != 6 || ds.Verify.Mismatch() {
		t.Fatalf("destination status after the passes: passes %d last %+v", ds.VerifyPasses, ds.Verify)
	}
	converged(t, src, b.fs("fs-dst"))
	if _, err := b.n.Verify(ctx, "nope"); err == nil {
		t.Fatal("verified an unknown replication")
	}
}

// The replica's state is damaged on disk behind the engine's back — one
// metadata record rolled back to an older, validly sealed version and one
// block file corrupted — while replication runs. The next scheduled pass
// finds both (status message, metrics, the ranges named), repairs them
// (the block sent again, the range through the checksum resync), and a
// later pass is clean; the replica equals the source again.
func TestVerifyRepairsCorruptReplica(t *testing.T) {
	ctx := context.Background()
	const interval = 250 * time.Millisecond
	reg := prometheus.NewRegistry()
	a := newRegion(t, "us-east-1", func(o *Options) { o.VerifyInterval = interval })
	b := newRegion(t, "us-west-2", func(o *Options) { o.Registerer = reg })
	startPair(a, b)
	src := a.mkfs("fs-src")
	w := newWorkload(t, 5, func() *engine.FS { return src })
	w.run(ctx, 300)
	big, err := src.Create(ctx, engine.RootCred, engine.RootIno, "big", engine.CreateGuarded, engine.SetAttr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.Write(ctx, engine.RootCred, big.Attr.Ino, 0, bytes.Repeat([]byte("regionfs"), 64<<10)); err != nil {
		t.Fatal(err)
	}
	link(t, a, b, "r1", "fs-src", "fs-dst")
	dst := b.fs("fs-dst")
	converged(t, src, dst)
	testkit.WaitFor(t, "a clean scheduled pass", 20*time.Second, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		return st.VerifyPasses > 0 && !st.Verify.Mismatch()
	})
	if st, _ := b.n.InboundStatus("r1"); st.VerifyMismatches != 0 {
		t.Fatalf("a pass found a difference before any damage: %+v", st.VerifyFound)
	}

	// A metadata record goes stale: keep big's attributes as stored now,
	// let a later write change them, then put the old (validly sealed)
	// record back under the engine.
	attrKey := replicaKey(t, b, append(append([]byte{'I'}, binary.BigEndian.AppendUint64(nil, big.Attr.Ino)...), 'A'))
	old, err := b.kv.Get(attrKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.Write(ctx, engine.RootCred, big.Attr.Ino, 1<<20, []byte("appended")); err != nil {
		t.Fatal(err)
	}
	converged(t, src, dst)
	bt := b.kv.NewBatch()
	bt.Set(attrKey, old)
	if err := bt.Commit(true); err != nil {
		t.Fatal(err)
	}
	// A block file the replica references is damaged.
	corrupted := corruptOneBlock(t, b.disk, referencedBlocks(t, b))
	t.Logf("rolled back %s, corrupted block %s", engine.DescribeKey(attrKey[9:]), corrupted)
	damaged := time.Now()
	// Writes go on meanwhile (new files only: no block is released).
	n := 0
	stop := sync.OnceValue(testkit.Repeat(func() error {
		n++
		e, err := src.Create(ctx, engine.RootCred, engine.RootIno, fmt.Sprintf("new%05d", n), engine.CreateGuarded, engine.SetAttr{}, 0)
		if err == nil {
			_, _, err = src.Write(ctx, engine.RootCred, e.Attr.Ino, 0, bytes.Repeat([]byte{byte(n)}, 3000))
		}
		time.Sleep(10 * time.Millisecond) // pace, not a wait
		return err
	}))
	defer stop()

	// Every pass so far was clean, so what the passes find now is this
	// damage. One pass may find both, or two passes one each: a pass that
	// began while the test was damaging the replica compares the ranges
	// of its checkpoint (before the rollback) but reads the blocks after
	// the corruption, and repairs the block before the next pass.
	var badBlock, named bool
	var found VerifyResult
	testkit.WaitFor(t, "the scheduled passes to find the damage", 20*time.Second, func() bool {
		st, _ := b.n.InboundStatus("r1")
		for _, r := range st.VerifyFound {
			found = r
			if slices.Contains(r.BadBlocks, corrupted.String()) {
				badBlock = true
			}
			for _, d := range r.Differ {
				if bytes.Compare(d.Lo, attrKey[9:]) <= 0 && (d.Hi == nil || bytes.Compare(attrKey[9:], d.Hi) < 0) {
					named = true
				}
			}
		}
		return badBlock && named
	})
	t.Logf("found %s after the damage: %s", found.Time.Add(found.Duration).Sub(damaged).Round(time.Millisecond), found.Summary())
	if got := testutil.ToFloat64(metricVec(t, reg, "regionfs_replication_verify_mismatches_total")); got < 1 {
		t.Fatalf("regionfs_replication_verify_mismatches_total = %v", got)
	}

	// Repaired: a later pass is clean, and the source's status shows the
	// repair until then.
	testkit.WaitFor(t, "a clean pass after the repair", 30*time.Second, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		return st.Verify.Time.After(found.Time) && !st.Verify.Mismatch()
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	converged(t, src, dst)
	if err := dst.Replica().Verify(ctx, true); err != nil {
		t.Fatalf("replica after the repair: %v", err)
	}
	got, err := dst.Replica().RangeChecksum(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, want, _ := src.Replica().Checksum(ctx); got != want {
		t.Fatal("replica differs from the source after the repair")
	}
	st, _ := a.n.OutboundStatus("r1")
	if st.VerifyMismatches < 1 || st.State != StateEnabled {
		t.Fatalf("source status %s %q, mismatches %d", st.State, st.Message, st.VerifyMismatches)
	}
}

// A mismatch shows in the status message until a clean pass.
func TestVerifyMessage(t *testing.T) {
	r := VerifyResult{Seq: 42, Ranges: 10, Blocks: 3, DifferCount: 1, BadBlockCount: 1, Time: time.Unix(0, 0),
		Repair: "1 blocks sent again"}
	var st Status
	st.setVerify(verifyStats{Last: r, Passes: 1, Mismatches: 1}, false)
	if !strings.Contains(st.Message, "found 1 of 10 ranges differing and 1 of 3 blocks bad") || !strings.Contains(st.Message, "sent again") {
		t.Fatalf("message %q", st.Message)
	}
	st = Status{Message: "destination region x unreachable"}
	st.setVerify(verifyStats{Last: r}, false)
	if st.Message != "destination region x unreachable" {
		t.Fatalf("message %q", st.Message)
	}
	st = Status{}
	st.setVerify(verifyStats{Last: VerifyResult{Seq: 43, Ranges: 10}}, false)
	if st.Message != "" {
		t.Fatalf("clean pass message %q", st.Message)
	}
}

// replicaKey returns the absolute key of rel in the only file system of
// region r (the replica).
func replicaKey(t *testing.T, r *region, rel []byte) []byte {
	t.Helper()
	it, err := r.kv.NewIter([]byte{'f'}, []byte{'g'})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if !it.First() {
		t.Fatal("no file-system key")
	}
	return append(bytes.Clone(it.Key()[:9]), rel...)
}

// referencedBlocks returns the ids of the blocks the only file system of
// region r references (its reference-count keys).
func referencedBlocks(t *testing.T, r *region) map[blocks.ID]bool {
	t.Helper()
	pfx := replicaKey(t, r, []byte{'R'})
	it, err := r.kv.NewIter(pfx, append(bytes.Clone(pfx[:9]), 'S'))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	ids := map[blocks.ID]bool{}
	for ok := it.First(); ok; ok = it.Next() {
		var id blocks.ID
		copy(id[:], it.Key()[10:])
		ids[id] = true
	}
	if len(ids) == 0 {
		t.Fatal("the replica references no block")
	}
	return ids
}

// corruptOneBlock flips a byte in the payload of one block file of d
// among ids.
func corruptOneBlock(t *testing.T, d *disk.Mem, ids map[blocks.ID]bool) blocks.ID {
	t.Helper()
	var walk func(dir string) (string, blocks.ID, bool)
	walk = func(dir string) (string, blocks.ID, bool) {
		ents, err := d.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			p := path.Join(dir, e.Name())
			if e.IsDir() {
				if q, id, ok := walk(p); ok {
					return q, id, true
				}
				continue
			}
			if id, err := blocks.ParseID(e.Name()); err == nil && ids[id] {
				return p, id, true
			}
		}
		return "", blocks.ID{}, false
	}
	name, id, ok := walk("blocks")
	if !ok {
		t.Fatal("no block file")
	}
	f, err := d.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	size, _ := f.Size()
	data := make([]byte, size)
	if _, err := f.ReadAt(data, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	data[len(data)-1] ^= 0x55
	tmp := name + ".damage"
	g, err := d.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Write(data); err != nil {
		t.Fatal(err)
	}
	g.Close()
	if err := d.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
	return id
}

func metricVec(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
			g.Set(mf.GetMetric()[0].GetCounter().GetValue())
			return g
		}
	}
	t.Fatalf("no single series %s", name)
	return nil
}

// A verification does not wait for the shipping loop to finish a long
// send: on a slow link the loop spends seconds pushing a file's blocks,
// and a pass that asked the loop for its common point waited for it (and
// failed after verifyStartWait). The pass takes its point between two of
// the loop's journal reads: the destination has registered it while the
// loop is still pushing the file's blocks (more than the sockets hold;
// its records not sent yet), and the pass then matches once the replica
// reaches it.
func TestVerifyDuringLongSend(t *testing.T) {
	ctx := context.Background()
	a, b, px := proxiedPair(t)
	src := a.mkfs("fs-src")
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	px.SetPieceBytes(16 << 10)
	px.SetBandwidth(256 << 10) // 24 MiB: 96 s, more than the sockets and the proxy hold
	before, _ := a.n.OutboundStatus("r1")
	t0 := time.Now()
	const blocks = 384
	writeRandomFiles(t, ctx, src, rand.New(rand.NewPCG(2, 21)), 1, blocks)
	type result struct {
		r   VerifyResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := a.n.Verify(ctx, "r1")
		done <- result{r, err}
	}()
	b.n.mu.Lock()
	in := b.n.inbound["r1"]
	b.n.mu.Unlock()
	marked := testkit.Until(20*time.Second, func() bool {
		_, seq := in.pendingCheckpoint()
		return seq > 0
	})
	st, _ := a.n.OutboundStatus("r1")
	t.Logf("marked %v after %v; shipped %d bytes, %d blocks, %d records (before %d, %d, %d)", marked, time.Since(t0),
		st.ShippedBytes, st.ShippedBlocks, st.ShippedRecords, before.ShippedBytes, before.ShippedBlocks, before.ShippedRecords)
	px.SetBandwidth(0)
	res := testkit.Recv(t, "the verification", time.Minute, done)
	// The file's two records (create, write) go after its blocks.
	if !marked || st.ShippedRecords-before.ShippedRecords >= 2 {
		t.Fatalf("the destination registered the verification's point: %v, with %d of the file's 2 records shipped (%v, %v): the pass waited for the shipping loop's send",
			marked, st.ShippedRecords-before.ShippedRecords, res.r, res.err)
	}
	if res.err != nil || res.r.Mismatch() {
		t.Fatalf("verification during a long send: %+v, %v", res.r, res.err)
	}
	converged(t, src, b.fs("fs-dst"))
}
