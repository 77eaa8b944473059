package testkit

import (
	"net/http"
	"testing"
	"time"
)

// maxPause bounds the pause between two polls.
const maxPause = 50 * time.Millisecond

// Until calls cond until it returns true (then Until returns true) or
// timeout has passed (false). The pause between calls grows from a
// millisecond to 50 ms, so fast conditions are seen at once and slow ones
// are not polled in a busy loop.
func Until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for pause := time.Millisecond; ; pause = min(2*pause, maxPause) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
	}
}

// WaitFor polls cond until it returns true and fails t when timeout passes
// first ("timed out after … waiting for what").
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !Until(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Eventually polls cond until it returns nil and fails t with cond's last
// error when timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	var last error
	if !Until(timeout, func() bool { last = cond(); return last == nil }) {
		t.Fatalf("timed out after %v: %v", timeout, last)
	}
}

// WaitHTTP waits until url answers a GET (with any status): a server
// process started by the test is ready. done is the process's exit
// channel (it is peeked at, and the error put back); when the process
// ends first, or timeout passes, t fails with output's text (the
// process's log).
func WaitHTTP(t testing.TB, url string, timeout time.Duration, done chan error, output func() string) {
	t.Helper()
	// A server that accepts connections but never answers (a start-up
	// that hangs) fails within timeout too.
	c := &http.Client{Timeout: min(timeout, 5*time.Second)}
	ok := Until(timeout, func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("the server process ended before %s answered: %v\n%s", url, err, output())
		default:
		}
		resp, err := c.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	if !ok {
		t.Fatalf("%s does not answer after %v\n%s", url, timeout, output())
	}
}

// Recv returns the next value of ch, failing t when timeout passes first
// ("timed out after … waiting for what"): a deadlock detector for a test
// that waits on another goroutine, not a timing goal.
func Recv[T any](t testing.TB, what string, timeout time.Duration, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
		panic("unreachable")
	}
}
