package notify

import (
	"context"
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

// TestPublishRefusedBelowFloor (chaos22): every message published to a
// topic with a confirmed subscription is stored (up to 256 KiB each) in
// the monitor's Pebble DB on the data disk, whose WAL stops the process
// at ENOSPC. Below the floor Publish is refused with ErrNoSpace and
// stores nothing; once there is room it is taken and delivered.
func TestPublishRefusedBelowFloor(t *testing.T) {
	ctx := context.Background()
	store := kv.NewMemory()
	g := &floorGuard{}
	s, err := Open(Options{KV: store, Region: "us-east-1", AccountID: "123456789012", PublicURL: "http://sns.test", Space: g})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ep := newEndpoint(t)
	arn, err := s.CreateTopic(ctx, "alerts", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Subscribe(ctx, arn, ProtocolHTTP, ep.srv.URL+"/hook", nil, false); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "SubscriptionConfirmation", 10*time.Second, func() bool { return len(ep.messages()) == 1 })
	tok, _ := token(t, ep.messages()[0])
	if _, err := s.ConfirmSubscription(ctx, arn, tok, false); err != nil {
		t.Fatal(err)
	}
	keys := func() int {
		n := 0
		if err := kv.Scan(store, nil, nil, func(_, _ []byte) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
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
	store := kv.NewMemory()
	g := &floorGuard{}
	s, err := Open(Options{KV: store, Region: "us-east-1", AccountID: "123456789012", PublicURL: "http://sns.test", Space: g})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	arn, err := s.CreateTopic(ctx, "alerts", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := func() int {
		n := 0
		if err := kv.Scan(store, nil, nil, func(_, _ []byte) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
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
	store := kv.NewMemory()
	g := &floorGuard{}
	s, err := Open(Options{KV: store, Region: "us-east-1", AccountID: "123456789012", PublicURL: "http://sns.test", Space: g})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ep := newEndpoint(t)
	arn, err := s.CreateTopic(ctx, "alerts", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Subscribe(ctx, arn, ProtocolHTTP, ep.srv.URL+"/hook", nil, false); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "SubscriptionConfirmation", 10*time.Second, func() bool { return len(ep.messages()) == 1 })
	tok, _ := token(t, ep.messages()[0])
	if _, err := s.ConfirmSubscription(ctx, arn, tok, false); err != nil {
		t.Fatal(err)
	}

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
