package notify

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/testkit"
)

// floorGuard refuses every write while full is set, as space.Guard does
// below its floor, and the server's own (CheckInternal) while
// internalFull is set, as it does below half the floor.
type floorGuard struct{ full, internalFull atomic.Bool }

var errBelowFloor = errors.New("free space below the floor (test)")

func (g *floorGuard) Check(int64) error {
	if g.full.Load() {
		return errBelowFloor
	}
	return nil
}

func (g *floorGuard) CheckInternal(int64) error {
	if g.internalFull.Load() {
		return errBelowFloor
	}
	return nil
}

// openGuarded opens a service over a memory store whose writes g guards
// (closed with the test); keys counts the store's keys.
func openGuarded(t *testing.T) (s *Service, g *floorGuard, keys func() int) {
	t.Helper()
	store := kv.NewMemory()
	g = &floorGuard{}
	s, err := Open(Options{KV: store, Region: "us-east-1", AccountID: "123456789012", PublicURL: "http://sns.test", Space: g})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, g, func() int {
		n := 0
		if err := kv.Scan(store, nil, nil, func(_, _ []byte) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// TestPublishRefusedBelowFloor (chaos22): every message published to a
// topic with a confirmed subscription is stored (up to 256 KiB each) in
// the monitor's Pebble DB on the data disk, whose WAL stops the process
// at ENOSPC. Below the floor Publish is refused with ErrNoSpace and
// stores nothing; once there is room it is taken and delivered.
func TestPublishRefusedBelowFloor(t *testing.T) {
	ctx := context.Background()
	s, g, keys := openGuarded(t)
	ep := newEndpoint(t)
	arn, err := s.CreateTopic(ctx, "alerts", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	confirmed(t, s, arn, ep.srv.URL+"/hook", ep)
	before := keys()

	g.full.Store(true)
	if _, err := s.Publish(ctx, PublishInput{TopicARN: arn, Message: "while full"}); !errors.Is(err, ErrNoSpace) || !errors.Is(err, errBelowFloor) {
		t.Fatalf("Publish below the floor: %v, want ErrNoSpace wrapping the guard's error", err)
	}
	if n := keys(); n != before {
		t.Fatalf("Publish below the floor stored %d keys", n-before)
	}

	g.full.Store(false)
	if _, err := s.Publish(ctx, PublishInput{TopicARN: arn, Message: "with room"}); err != nil {
		t.Fatalf("Publish with room: %v", err)
	}
	testkit.WaitFor(t, "the notification", 10*time.Second, func() bool { return len(ep.messages()) == 2 })
}

// TestTopicAndSubscriptionWritesRefusedBelowFloor (chaos23, after
// review22): CreateTopic, SetTopicAttributes and Subscribe store records
// in the same Pebble DB as messages; below the floor they are refused with
// ErrNoSpace (503) and store nothing. Before, only Publish was checked.
func TestTopicAndSubscriptionWritesRefusedBelowFloor(t *testing.T) {
	ctx := t.Context()
	s, g, keys := openGuarded(t)
	arn, err := s.CreateTopic(ctx, "alerts", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := keys()

	g.full.Store(true)
	if _, err := s.CreateTopic(ctx, "more", nil, nil); !errors.Is(err, ErrNoSpace) || !errors.Is(err, errBelowFloor) {
		t.Fatalf("CreateTopic below the floor: %v, want ErrNoSpace wrapping the guard's error", err)
	}
	if err := s.SetTopicAttributes(ctx, arn, "DisplayName", "x"); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("SetTopicAttributes below the floor: %v, want ErrNoSpace", err)
	}
	if _, err := s.Subscribe(ctx, arn, ProtocolHTTP, "http://127.0.0.1:9/hook", nil, false); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Subscribe below the floor: %v, want ErrNoSpace", err)
	}
	if n := keys(); n != before {
		t.Fatalf("%d keys stored below the floor", n-before)
	}

	g.full.Store(false)
	if _, err := s.CreateTopic(ctx, "more", nil, nil); err != nil {
		t.Fatalf("CreateTopic with room: %v", err)
	}
}

// TestNotifyBelowFloor (chaos24): an alarm's notification (Notify, the
// CloudWatch alarm action) is the server's own write: below the floor,
// where Publish is refused, it is stored and delivered, down to half the
// floor (CheckInternal); below that it is refused too. Before, it was
// refused like Publish, so an alarm on a full disk notified nobody.
func TestNotifyBelowFloor(t *testing.T) {
	ctx := t.Context()
	s, g, _ := openGuarded(t)
	ep := newEndpoint(t)
	arn, err := s.CreateTopic(ctx, "alerts", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	confirmed(t, s, arn, ep.srv.URL+"/hook", ep)

	g.full.Store(true)
	if _, err := s.Publish(ctx, PublishInput{TopicARN: arn, Message: "user"}); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Publish below the floor: %v, want ErrNoSpace", err)
	}
	if _, err := s.Notify(ctx, arn, "ALARM: disk", "the disk is full"); err != nil {
		t.Fatalf("Notify below the floor: %v, want it stored", err)
	}
	testkit.WaitFor(t, "the alarm's notification", 10*time.Second, func() bool { return len(ep.messages()) == 2 })

	g.internalFull.Store(true)
	if _, err := s.Notify(ctx, arn, "ALARM: disk", "again"); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Notify below half the floor: %v, want ErrNoSpace", err)
	}
}

// TestRetryRecordNotWrittenBelowFloor (flaky24, after a48dce7): a failed
// delivery's retry rewrites its record in the store (the message again,
// up to 256 KiB), which a48dce7 left unchecked. It is the server's own
// delivery state (CheckInternal): below half the floor the record is not
// rewritten (the store's Pebble WAL stops the process at ENOSPC), the
// retry is kept in memory and the stored record keeps its earlier
// attempt. Below the floor but above its half the next retry's record is
// written, and the delivery ends deleted once delivered (deletions free
// room: not checked). Fails without the check: the first retry's record
// (attempt 1) was written below half the floor.
func TestRetryRecordNotWrittenBelowFloor(t *testing.T) {
	ctx := t.Context()
	store := kv.NewMemory()
	g := &floorGuard{}
	clock := testkit.NewClock(time.Now())
	s, err := Open(Options{KV: store, Region: "us-east-1", AccountID: "123456789012", PublicURL: "http://sns.test", Space: g, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const retryDelay = 10 * time.Second
	policy := `{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":10,"maxDelayTarget":10,"numRetries":3,"backoffFunction":"linear"}}}`
	arn, err := s.CreateTopic(ctx, "retry", map[string]string{"DeliveryPolicy": policy}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ep := newEndpoint(t, 200, 500, 500, 200) // confirmation, two failures, delivered
	confirmed(t, s, arn, ep.srv.URL, ep)
	// stored returns the delivery records in the store.
	stored := func() []delivery {
		var ds []delivery
		err := kv.Scan(store, deliveryKey(""), []byte{pfxNotify, tagDelivery + 1}, func(_, v []byte) error {
			var d delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			ds = append(ds, d)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	// attempt is the attempts of the one delivery the queue holds once
	// none is in flight (its outcome stored, or not), else -1.
	attempt := func() int {
		s.q.mu.Lock()
		defer s.q.mu.Unlock()
		if len(s.q.inflight) > 0 || len(s.q.pending) != 1 {
			return -1
		}
		for _, d := range s.q.pending {
			return d.Attempt
		}
		return -1
	}

	s.Pause(true)
	if _, err := s.Publish(ctx, PublishInput{TopicARN: arn, Message: "retried"}); err != nil {
		t.Fatal(err)
	}
	if ds := stored(); len(ds) != 1 || ds[0].Attempt != 0 {
		t.Fatalf("after Publish: stored deliveries %+v, want one at attempt 0", ds)
	}
	g.full.Store(true)
	g.internalFull.Store(true)
	s.Pause(false)
	testkit.WaitFor(t, "the first attempt to fail", loadedWait, func() bool { return attempt() == 1 })
	if ds := stored(); len(ds) != 1 || ds[0].Attempt != 0 {
		t.Fatalf("below half the floor: stored deliveries %+v, want the one stored at attempt 0 (the retry's record not rewritten)", ds)
	}

	g.internalFull.Store(false) // below the floor, above its half
	clock.Advance(retryDelay)
	testkit.WaitFor(t, "the second attempt to fail", loadedWait, func() bool { return attempt() == 2 })
	if ds := stored(); len(ds) != 1 || ds[0].Attempt != 2 {
		t.Fatalf("above half the floor: stored deliveries %+v, want one at attempt 2", ds)
	}
	clock.Advance(retryDelay)
	testkit.WaitFor(t, "the delivery to end", loadedWait, s.settled)
	if ds := stored(); len(ds) != 0 {
		t.Fatalf("delivered: stored deliveries %+v, want none", ds)
	}
	if n := len(ep.messages()); n != 4 {
		t.Fatalf("the endpoint got %d requests, want 4 (confirmation, two failures, delivery)", n)
	}
}
