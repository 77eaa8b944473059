package replication

import (
	"context"
	"testing"
	"time"
)

// TestQueueAcksNeverHoldsTheReader: the connection's ack reader hands
// every ack over at once even while nobody takes them (the shipping loop
// filling its window), far past the acks channel's capacity, and the
// acks come out in order once taken.
func TestQueueAcksNeverHoldsTheReader(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in, out := make(chan *ack), make(chan *ack, 256)
	go queueAcks(ctx, in, out)
	const n = 20000
	handed := make(chan struct{})
	go func() {
		defer close(handed)
		for i := range n {
			in <- &ack{AppliedSeq: uint64(i + 1)}
		}
	}()
	select {
	case <-handed:
	case <-time.After(10 * time.Second):
		t.Fatalf("the reader was held with nobody taking acks (%d queued in the channel)", len(out))
	}
	for i := range n {
		select {
		case a := <-out:
			if a.AppliedSeq != uint64(i+1) {
				t.Fatalf("ack %d came out as %d", i+1, a.AppliedSeq)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("ack %d never came out", i+1)
		}
	}
}
