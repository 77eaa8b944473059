package replication

import (
	"context"
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
