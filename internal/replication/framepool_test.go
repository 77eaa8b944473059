package replication

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

// TestFramePoolBounded: a stream holds at most framesInFlight blocks-frame
// buffers; the reader waits for one to come back instead of taking new
// memory, and gets the returned buffer itself (touched already). Before,
// a reader running ahead of the puts took a new 8 MiB buffer per frame.
func TestFramePoolBounded(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	fp := newFramePool(ctx, nil)
	var out [][]byte
	for range framesInFlight {
		b, err := fp.get(msgBlocks, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	got := make(chan []byte, 1)
	go func() {
		b, err := fp.get(msgBlocks, 1<<20)
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	select {
	case <-got:
		t.Fatalf("got a buffer with %d out", framesInFlight)
	case <-time.After(50 * time.Millisecond):
	}
	fp.put(out[2][:17])
	var b []byte
	select {
	case b = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no buffer after one came back")
	}
	if &b[0] != &out[2][0] || len(b) != 1<<20 {
		t.Fatalf("got a new buffer (len %d), not the returned one", len(b))
	}
	// Frames of other types are not bounded (nor pooled).
	if b, err := fp.get(msgRecords, 10); err != nil || len(b) != 10 {
		t.Fatalf("records frame: %d bytes, %v", len(b), err)
	}
	// A stream that ends unblocks its reader.
	go func() {
		_, err := fp.get(msgBlocks, 1<<20)
		got <- nil
		if err == nil {
			t.Error("get after cancel: no error")
		}
	}()
	cancel()
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("reader still waiting after the stream ended")
	}
}

// TestChunkFramesOfVaryingSizeReused: initial-sync chunk frames are not
// all one size (a chunk ends with the pair that takes it past the chunk
// size, so each is a little over it by a different amount), and the
// buffers ingested chunks give back serve the frames of any of those
// sizes. A buffer was made exactly as large as its first frame, so a
// slightly larger frame dropped it and took a new one: about one new
// buffer per frame in two over a sync, and TestInitialSyncReusesChunkFrames
// failed about one run in two.
func TestChunkFramesOfVaryingSizeReused(t *testing.T) {
	var made atomic.Uint64
	fp := newFramePool(t.Context(), &made)
	rng := rand.New(rand.NewPCG(9, 9))
	const inFlight, rounds, chunk = 8, 40, 4096
	for range rounds {
		var out [][]byte
		for range inFlight {
			b, err := fp.get(msgChunk, chunk+rng.IntN(600))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		for _, b := range out {
			fp.putChunk(b)
		}
	}
	if n := made.Load(); n > 2*inFlight {
		t.Fatalf("%d buffers made for %d chunk frames of %d to %d bytes, %d at a time: want at most %d", n, inFlight*rounds, chunk, chunk+600, inFlight, 2*inFlight)
	}
}
