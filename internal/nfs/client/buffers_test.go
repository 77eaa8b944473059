package client

import "testing"

func TestBuffersKeepLargeOnly(t *testing.T) {
	b := NewBuffers()
	small := make([]byte, 10, 64<<10)
	b.Put(small)
	if got := b.get(); cap(got) != replyBufBytes {
		t.Fatalf("a small buffer was kept (cap %d)", cap(got))
	}
	big := b.get()
	// A READ's data is a slice of its reply: its capacity from there on
	// is reused.
	data := big[:1<<20+200][200:]
	b.Put(data)
	got := b.get()
	if len(got) != 0 || cap(got) != cap(data) || &got[:1][0] != &data[0] {
		t.Fatalf("got len %d cap %d, want the data's storage (cap %d)", len(got), cap(got), cap(data))
	}
	for range keptBuffers + 3 {
		b.Put(make([]byte, 0, replyBufBytes))
	}
	if len(b.free) != keptBuffers {
		t.Fatalf("%d buffers kept, want at most %d", len(b.free), keptBuffers)
	}
	var nilBufs *Buffers
	nilBufs.Put(big) // no session's buffers: nothing kept, no panic
}
