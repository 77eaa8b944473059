package replication

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
)

// snapChunks cuts the whole of snap into chunks of at most keys pairs, as
// a source sends them (the last with Hi nil).
func snapChunks(t *testing.T, snap *engine.Snapshot, keys int) []engine.SyncChunk {
	t.Helper()
	it, err := snap.Iter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var cs []engine.SyncChunk
	c := engine.SyncChunk{Seq: snap.Seq, Epoch: snap.Epoch, Time: snap.Time}
	for ok := it.First(); ok; ok = it.Next() {
		if len(c.Pairs) == keys {
			c.Hi = bytes.Clone(it.Key())
			cs = append(cs, c)
			c = engine.SyncChunk{Seq: snap.Seq, Epoch: snap.Epoch, Time: snap.Time, Lo: c.Hi}
		}
		v, err := it.Value()
		if err != nil {
			t.Fatal(err)
		}
		c.Pairs = append(c.Pairs, engine.Mutation{Key: bytes.Clone(it.Key()), Value: bytes.Clone(v)})
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	return append(cs, c)
}

// TestResendBehindStaleChunks: after a rewind, the chunks the source had
// sent before it heard of the rewind (past the replica's cursor) arrive
// first, and the resend from the cursor right behind them, in one batch of
// frames. The resend is ingested. Before, the batch went to IngestAll as
// one run, which takes nothing after a chunk that does not connect: the
// resend was dropped with the stale chunks, the gap's ask for a rewind was
// held back (one had just been asked), and a source with nothing left to
// send waited for good (TestFailoverDuringInitialSync stalled on it about
// once in 100 runs under load).
func TestResendBehindStaleChunks(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	src := a.mkfs("fs-src")
	for i := range 40 {
		if _, err := src.Mkdir(ctx, engine.RootCred, engine.RootIno, fmt.Sprint("d", i), engine.SetAttr{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.e.CreateReplica(ctx, "fs-dst", ""); err != nil {
		t.Fatal(err)
	}
	dst := b.fs("fs-dst")
	snap, err := src.Replica().Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cs := snapChunks(t, snap, 8)
	snap.Close()
	if len(cs) < 6 {
		t.Fatalf("%d chunks, want at least 6", len(cs))
	}
	in := &inbound{n: b.n, fs: dst.Replica(), spec: InboundSpec{ID: "r1", SourceRegion: a.name, SourceFS: "fs-src", DestFS: "fs-dst"}}
	rx := &receiver{in: in, ctx: ctx, log: b.n.log, bufs: newFramePool(ctx, nil)}
	// batch hands the chunks to the receiver as run does one batch of
	// frames: each frame, then what the batch left to ingest.
	batch := func(chunks ...engine.SyncChunk) {
		t.Helper()
		for _, c := range chunks {
			if err := rx.handle(frame{typ: msgChunk, p: encodeChunk(&c)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := rx.flushChunks(); err != nil {
			t.Fatal(err)
		}
	}
	batch(cs[0], cs[1])
	if cur := dst.Replica().SyncState().Cursor; !bytes.Equal(cur, cs[1].Hi) {
		t.Fatalf("cursor %x after two chunks, want %x", cur, cs[1].Hi)
	}
	// The replica asked for a rewind at cs[1].Hi (say, blocks missing in
	// cs[2]); cs[3] and cs[4] were on their way, cs[2] … cs[4] follow.
	batch(cs[3], cs[4], cs[2], cs[3], cs[4])
	if cur := dst.Replica().SyncState().Cursor; !bytes.Equal(cur, cs[4].Hi) {
		t.Fatalf("cursor %x after the resend behind stale chunks, want %x (the resend was dropped)", cur, cs[4].Hi)
	}
	batch(cs[5:]...)
	if ss := dst.Replica().SyncState(); ss.Active {
		t.Fatalf("the sync is still active after its last chunk: cursor %x", ss.Cursor)
	}
	if !dst.Replica().Consistent() {
		t.Fatal("the replica is not consistent after its initial sync")
	}
}

// TestSyncResendsWhenDestinationStalls: a source whose initial sync has
// sent its last chunk, and whose destination acknowledges (heartbeats) but
// stops moving its cursor without asking for anything, sends again from
// that cursor once syncStallAfter has passed, and counts it (Sync.Stalls).
// It is the backstop for a chunk a destination drops without asking for a
// rewind (TestResendBehindStaleChunks was one way): before, both ends
// waited for each other as long as the stream lived. The test plays the
// destination on the stream's two ends, with the source's clock moved on.
func TestSyncResendsWhenDestinationStalls(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var skew atomic.Int64
	a := newRegion(t, "us-east-1", func(o *Options) {
		o.Heartbeat, o.ChunkBytes = 5*time.Millisecond, 512
		o.Clock = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	a.startNode(nil)
	src := a.mkfs("fs-src")
	for i := range 40 {
		if _, err := src.Mkdir(ctx, engine.RootCred, engine.RootIno, fmt.Sprint("d", i), engine.SetAttr{}); err != nil {
			t.Fatal(err)
		}
	}
	o := &outbound{n: a.n, fs: src.Replica(), spec: OutboundSpec{ID: "r1", SourceFS: "fs-src", DestRegion: "us-west-2", DestFS: "fs-dst"}}
	key := []byte("test stream key")
	pr, pw := io.Pipe()
	defer pr.Close()
	s := &stream{out: framer{key: key, dir: dirToDest}, w: pw, flush: func() error { return nil },
		acks: make(chan *ack, 256), errc: make(chan error, 1)}
	chunks := make(chan *engine.SyncChunk, 1024)
	go func() {
		in := framer{key: key, dir: dirToDest}
		for {
			typ, p, err := in.read(pr)
			if err != nil {
				close(chunks)
				return
			}
			if isChunk(typ) {
				c, err := decodeChunk(typ, p)
				if err != nil {
					t.Error(err)
					close(chunks)
					return
				}
				chunks <- c
			}
		}
	}()
	type result struct {
		a   *ack
		err error
	}
	done := make(chan result, 1)
	// The stream's first ack, as a session takes it before the sync.
	if err := o.onAck(s, &ack{}); err != nil {
		t.Fatal(err)
	}
	go func() {
		a, err := o.initialSync(ctx, s, &ack{})
		done <- result{a, err}
		pw.Close()
	}()
	// Everything is sent (the source's window is far larger); the
	// destination took the first two chunks and then nothing.
	var first []*engine.SyncChunk
	for c := range chunks {
		first = append(first, c)
		if c.Hi == nil {
			break
		}
	}
	if len(first) < 4 {
		t.Fatalf("%d chunks sent, want at least 4", len(first))
	}
	cursor := first[1].Hi
	s.acks <- &ack{Syncing: true, SyncBase: first[0].Seq, Cursor: cursor}
	// Heartbeat acks with the same cursor: alive, not moving.
	hb := func() { s.acks <- &ack{Syncing: true, SyncBase: first[0].Seq, Cursor: cursor} }
	for range 3 {
		hb()
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case c, ok := <-chunks:
		if !ok {
			r := <-done
			t.Fatalf("the stream ended: %v", r.err)
		}
		t.Fatalf("a chunk at %x sent again before the destination stalled for long", c.Lo)
	default:
	}
	skew.Store(int64(o.syncStallAfter() + time.Second))
	var again *engine.SyncChunk
	for deadline := time.Now().Add(10 * time.Second); again == nil; {
		if time.Now().After(deadline) {
			t.Fatal("nothing sent again 10 s after the destination stalled past syncStallAfter")
		}
		hb()
		select {
		case c, ok := <-chunks:
			if !ok {
				r := <-done
				t.Fatalf("the stream ended: %v", r.err)
			}
			again = c
		case <-time.After(20 * time.Millisecond):
		case r := <-done:
			t.Fatalf("the sync ended: %+v", r)
		}
	}
	if !bytes.Equal(again.Lo, cursor) {
		t.Fatalf("sent again from %x, want the destination's cursor %x", again.Lo, cursor)
	}
	if n := o.status().Sync.Stalls; n != 1 {
		t.Fatalf("Sync.Stalls %d, want 1", n)
	}
	s.acks <- &ack{AppliedSeq: first[0].Seq}
	select {
	case r := <-done:
		if r.err != nil || r.a == nil || r.a.AppliedSeq != first[0].Seq {
			t.Fatalf("initial sync ended with %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sync did not end on the destination's final ack")
	}
	cancel()
	for range chunks { // the reader ends with the pipe
	}
}
