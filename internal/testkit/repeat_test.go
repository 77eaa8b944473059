package testkit

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestRepeat(t *testing.T) {
	var n atomic.Int64
	stop := Repeat(func() error { n.Add(1); return nil })
	WaitFor(t, "steps", 5*time.Second, func() bool { return n.Load() > 10 })
	if err := stop(); err != nil {
		t.Fatalf("stopped: %v", err)
	}

	boom := errors.New("boom")
	failed := make(chan struct{})
	m := 0
	stop = Repeat(func() error {
		if m++; m == 3 {
			close(failed)
			return boom
		}
		return nil
	})
	<-failed
	if err := stop(); !errors.Is(err, boom) || m != 3 {
		t.Fatalf("stop after a failing step: %v after %d steps, want boom after 3", err, m)
	}
}
