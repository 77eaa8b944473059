package loglimit

import (
	"fmt"
	"testing"
	"time"
)

// TestLimiter: a kind is let through once per interval, with the count of
// what was held back; another kind is not held back by it.
func TestLimiter(t *testing.T) {
	l := New(time.Second)
	t0 := time.Unix(1000, 0)
	if ok, n := l.Allow("a", t0); !ok || n != 0 {
		t.Fatal("first occurrence held back")
	}
	for i := range 500 {
		if ok, _ := l.Allow("a", t0.Add(time.Duration(i)*time.Millisecond)); ok {
			t.Fatalf("repeat %d let through within the interval", i)
		}
	}
	if ok, n := l.Allow("a", t0.Add(time.Second)); !ok || n != 500 {
		t.Fatalf("after the interval: %v, %d repeats (want 500)", ok, n)
	}
	if ok, _ := l.Allow("b", t0.Add(time.Second)); !ok {
		t.Fatal("another kind held back")
	}
}

// TestLimiterBounded: kinds without end (built from what clients send)
// do not grow it past maxKinds.
func TestLimiterBounded(t *testing.T) {
	l := New(time.Hour)
	t0 := time.Unix(1000, 0)
	for i := range 10 * maxKinds {
		l.Allow(fmt.Sprint("kind ", i), t0)
	}
	if n := len(l.last); n > maxKinds {
		t.Fatalf("%d kinds remembered, want at most %d", n, maxKinds)
	}
}
