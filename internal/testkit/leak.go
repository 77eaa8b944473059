package testkit

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// LeakOption narrows what Main counts as a leaked goroutine.
type LeakOption func(*leakCheck)

// OnlyStacks counts only goroutines whose stack mentions substr (e.g. the
// package's import path followed by a dot).
func OnlyStacks(substr string) LeakOption {
	return func(c *leakCheck) { c.only = append(c.only, substr) }
}

// IgnoreStacks never counts goroutines whose stack mentions substr (a
// library's goroutine that it never stops).
func IgnoreStacks(substr string) LeakOption {
	return func(c *leakCheck) { c.ignore = append(c.ignore, substr) }
}

// LeakGrace is how long Main waits for goroutines to end after the tests.
const LeakGrace = 10 * time.Second

// Main is a package's TestMain: it runs the tests and, when they pass,
// fails the package if goroutines started during the tests (and not
// excluded by opts) are still running LeakGrace later — servers, loops
// and streams that were not shut down. It prints the first stacks and
// exits.
func Main(m *testing.M, opts ...LeakOption) {
	c := &leakCheck{}
	for _, o := range opts {
		o(c)
	}
	c.before = goroutineIDs(allStacks())
	code := m.Run()
	if code == 0 {
		http.DefaultClient.CloseIdleConnections()
		if leaked := c.wait(LeakGrace); len(leaked) > 0 {
			n := len(leaked)
			if len(leaked) > 10 {
				leaked = leaked[:10]
			}
			fmt.Fprintf(os.Stderr, "testkit: %d goroutines still running after the tests:\n\n%s\n", n, strings.Join(leaked, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

type leakCheck struct {
	only, ignore []string
	before       map[string]bool
}

// wait returns the stacks of leaked goroutines once there are none or
// grace has passed.
func (c *leakCheck) wait(grace time.Duration) []string {
	deadline := time.Now().Add(grace)
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		leaked := c.leaked()
		if len(leaked) == 0 || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(pause)
	}
}

func (c *leakCheck) leaked() []string {
	var out []string
	for _, g := range strings.Split(allStacks(), "\n\n") {
		id, _, _ := strings.Cut(g, " [")
		// The runtime's signal watcher (os/signal.loop) starts at the
		// first signal.Notify — go test -fuzz's coordinator calls it —
		// and never ends, by design: not a leak.
		if c.before[id] || strings.Contains(g, "testkit.(*leakCheck)") || strings.Contains(g, "os/signal.signal_recv") || !c.counts(g) {
			continue
		}
		out = append(out, g)
	}
	return out
}

func (c *leakCheck) counts(stack string) bool {
	for _, s := range c.ignore {
		if strings.Contains(stack, s) {
			return false
		}
	}
	if len(c.only) == 0 {
		return true
	}
	for _, s := range c.only {
		if strings.Contains(stack, s) {
			return true
		}
	}
	return false
}

// goroutineIDs returns the "goroutine N" headers of a full stack dump.
func goroutineIDs(stacks string) map[string]bool {
	ids := map[string]bool{}
	for _, g := range strings.Split(stacks, "\n\n") {
		id, _, _ := strings.Cut(g, " [")
		ids[id] = true
	}
	return ids
}

func allStacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}
