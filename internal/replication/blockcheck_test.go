package replication

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/blocks"
)

// TestPushedBlocksNotHashed is the guard on the destination's per-byte
// work: over an authenticated channel (the test pair's loopback
// connection) the destination stores pushed blocks, with their checksums
// checked, without computing a single keyed hash — it computed one per
// block before — and verification still proves every one of them by its
// keyed hash.
func TestPushedBlocksNotHashed(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	src := a.mkfs("fs-src")
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	before, _ := a.n.OutboundStatus("r1")
	hashes, puts := b.fs("fs-dst").Stats().KeyedHashes, b.fs("fs-dst").Stats().Blocks.Puts
	rng := rand.New(rand.NewPCG(16, 8))
	const files, perFile = 6, 8
	writeRandomFiles(t, ctx, src, rng, files, perFile)
	converged(t, src, b.fs("fs-dst"))
	after, _ := a.n.OutboundStatus("r1")
	st := b.fs("fs-dst").Stats()
	if got := after.ShippedBlocks - before.ShippedBlocks; got < files*perFile {
		t.Fatalf("%d blocks pushed, want %d", got, files*perFile)
	}
	if got := st.Blocks.Puts - puts; got != files*perFile {
		t.Fatalf("the destination stored %d blocks, want %d", got, files*perFile)
	}
	if n := st.KeyedHashes - hashes; n != 0 {
		t.Errorf("the destination computed %d keyed hashes for %d pushed blocks, want 0", n, files*perFile)
	}
	hashes = st.KeyedHashes
	if err := b.rep("fs-dst").Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
	if n := b.fs("fs-dst").Stats().KeyedHashes - hashes; n < files*perFile {
		t.Errorf("a verification with block reads computed %d keyed hashes, want at least %d", n, files*perFile)
	}
}

// TestPushedBlockChecks: how the destination proves a pushed block before
// storing it, by the frame it came in and the channel. The ids here are
// not the keyed hashes of the data, so only a check that skips the keyed
// hash lets them in: over an authenticated channel, a block whose
// checksum passes (what an authenticated peer sent, as it sent it); never
// one altered after its checksum was computed, and nothing over a channel
// that is not authenticated, nor in a frame without checksums (an older
// source's).
func TestPushedBlockChecks(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	src := a.mkfs("fs-src")
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst")) // the replica has its lineage's keys
	b.n.mu.Lock()
	in := b.n.inbound["r1"]
	b.n.mu.Unlock()
	data := []byte("a pushed block's data")
	altered := []byte("a pushed block's dat@")
	cases := []struct {
		name        string
		channelAuth bool
		sums        bool
		data        []byte // what arrives; the checksum is of data
		stored      bool
	}{
		{"authenticated channel, checksum passes", true, true, data, true},
		{"authenticated channel, altered after its checksum", true, true, altered, false},
		{"authenticated channel, frame without checksums", true, false, data, false},
		{"channel not authenticated, checksum passes", false, true, data, false},
		{"channel not authenticated, altered after its checksum", false, true, altered, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rx := &receiver{in: in, ctx: ctx, bufs: newFramePool(ctx, nil), channelAuth: tc.channelAuth}
			id := testID(byte(40 + i))
			m := &blocksMsg{ids: []blocks.ID{id}, data: [][]byte{tc.data}}
			if tc.sums {
				m.sums = []uint32{blocks.Checksum(id, data)}
			}
			// Through the wire: the frame as the receiver gets it.
			var w bytes.Buffer
			out := framer{key: []byte("k"), dir: dirToDest}
			if err := out.write(&w, m.typ(), m.parts()...); err != nil {
				t.Fatal(err)
			}
			r := framer{key: []byte("k"), dir: dirToDest, alloc: rx.bufs.get}
			typ, p, err := r.read(&w)
			if err != nil {
				t.Fatal(err)
			}
			puts, hashes := b.fs("fs-dst").Stats().Blocks.Puts, b.fs("fs-dst").Stats().KeyedHashes
			err = rx.handle(frame{typ, p})
			if err == nil {
				err = rx.settlePuts()
			}
			st := b.fs("fs-dst").Stats()
			if stored := st.Blocks.Puts > puts; stored != tc.stored || (err == nil) != tc.stored {
				t.Fatalf("stored %v (%v), want %v", stored, err, tc.stored)
			}
			if err != nil && !errors.Is(err, engine.ErrCorrupt) {
				t.Fatalf("refused with %v, want ErrCorrupt", err)
			}
			// The keyed hash is computed exactly when the checksum
			// cannot stand in for it (and not for a block that failed
			// its checksum).
			wantHashes := uint64(0)
			if (!tc.sums || !tc.channelAuth) && (!tc.sums || string(tc.data) == string(data)) {
				wantHashes = 1
			}
			if n := st.KeyedHashes - hashes; n != wantHashes {
				t.Errorf("%d keyed hashes, want %d", n, wantHashes)
			}
		})
	}
}

// TestChunkSumChannel: a chunk whose pairs are checked by their checksum
// (msgChunkSum, outside the frame's MAC) is taken over an authenticated
// channel only; over another the stream ends with ErrFrame and nothing of
// the chunk is queued for ingesting. A msgChunk is taken over either.
func TestChunkSumChannel(t *testing.T) {
	ctx := context.Background()
	_, b := newPair(t)
	if _, err := b.e.CreateReplica(ctx, "fs-dst", ""); err != nil {
		t.Fatal(err)
	}
	in := &inbound{fs: b.rep("fs-dst"), spec: InboundSpec{ID: "r1", DestFS: "fs-dst"}}
	c := &engine.SyncChunk{Seq: 3, Epoch: 1, Time: time.Unix(1700000000, 0), Hi: []byte("b"),
		Pairs: []engine.Mutation{{Key: []byte("a"), Value: []byte("1")}}}
	for _, tc := range []struct {
		typ         byte
		channelAuth bool
		taken       bool
	}{
		{msgChunkSum, true, true},
		{msgChunkSum, false, false},
		{msgChunk, false, true},
		{msgChunk, true, true},
	} {
		rx := &receiver{in: in, ctx: ctx, bufs: newFramePool(ctx, nil), channelAuth: tc.channelAuth}
		p := encodeChunk(c)
		if tc.typ == msgChunkSum {
			p = chunkSumPayload(c)
		}
		err := rx.handle(frame{tc.typ, p})
		if taken := err == nil && len(rx.chunks) == 1; taken != tc.taken {
			t.Errorf("type %d, authenticated channel %v: taken %v (%v), want %v", tc.typ, tc.channelAuth, taken, err, tc.taken)
		}
		if !tc.taken && !errors.Is(err, ErrFrame) {
			t.Errorf("type %d, authenticated channel %v: %v, want ErrFrame", tc.typ, tc.channelAuth, err)
		}
	}
}
