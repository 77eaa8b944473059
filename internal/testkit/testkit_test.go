package testkit

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// recTB records what a helper would do to a test; Fatalf and Skipf end the
// helper by panicking with errStop, as the real ones end the goroutine.
type recTB struct {
	testing.TB
	fatal, skip string
}

var errStop = errors.New("stopped")

func (r *recTB) Helper() {}
func (r *recTB) Fatalf(f string, a ...any) {
	r.fatal = fmt.Sprintf(f, a...)
	panic(errStop)
}
func (r *recTB) Skipf(f string, a ...any) {
	r.skip = fmt.Sprintf(f, a...)
	panic(errStop)
}

func run(f func(t testing.TB)) (r *recTB) {
	r = &recTB{}
	defer func() {
		if v := recover(); v != nil && v != errStop {
			panic(v)
		}
	}()
	f(r)
	return r
}

func TestNeedToolSkipsOrFails(t *testing.T) {
	const tool = "no-such-tool-regionfs-testkit"
	t.Setenv(RequireToolsEnv, "")
	if r := run(func(tb testing.TB) { NeedTool(tb, tool) }); r.skip == "" || r.fatal != "" || !strings.Contains(r.skip, tool) {
		t.Fatalf("without %s: skip %q fatal %q", RequireToolsEnv, r.skip, r.fatal)
	}
	t.Setenv(RequireToolsEnv, "1")
	if r := run(func(tb testing.TB) { NeedTool(tb, tool) }); r.fatal == "" || r.skip != "" {
		t.Fatalf("with %s=1: skip %q fatal %q", RequireToolsEnv, r.skip, r.fatal)
	}
	if r := run(func(tb testing.TB) { NeedTool(tb, "nfs-cp-absent") }); !strings.Contains(r.fatal, "nfs-cp-absent") {
		t.Fatalf("message %q", r.fatal)
	}
	if p := NeedTool(t, "sh"); p == "" {
		t.Fatal("sh not found")
	}
}

func TestLeakCheckSeesNewGoroutines(t *testing.T) {
	c := &leakCheck{before: goroutineIDs(allStacks())}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); <-stop }()
	if got := c.leaked(); len(got) != 1 || !strings.Contains(got[0], "TestLeakCheckSeesNewGoroutines") {
		t.Fatalf("leaked %d goroutines: %q", len(got), got)
	}
	if got := (&leakCheck{before: c.before, ignore: []string{"TestLeakCheckSees"}}).leaked(); len(got) != 0 {
		t.Fatalf("ignored goroutine reported: %q", got)
	}
	if got := (&leakCheck{before: c.before, only: []string{"no/such/package."}}).leaked(); len(got) != 0 {
		t.Fatalf("goroutine outside OnlyStacks reported: %q", got)
	}
	close(stop)
	<-done
	if got := c.wait(time.Second); len(got) != 0 {
		t.Fatalf("ended goroutine reported: %q", got)
	}
}

func TestPolling(t *testing.T) {
	n := 0
	if !Until(time.Second, func() bool { n++; return n == 3 }) || n != 3 {
		t.Fatalf("Until stopped after %d calls", n)
	}
	start := time.Now()
	if Until(20*time.Millisecond, func() bool { return false }) {
		t.Fatal("Until reported a false condition as met")
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("Until gave up before its timeout")
	}
	r := run(func(tb testing.TB) {
		Eventually(tb, 10*time.Millisecond, func() error { return errors.New("state is creating") })
	})
	if !strings.Contains(r.fatal, "state is creating") {
		t.Fatalf("Eventually failed with %q", r.fatal)
	}
	r = run(func(tb testing.TB) { WaitFor(tb, "the moon", 10*time.Millisecond, func() bool { return false }) })
	if !strings.Contains(r.fatal, "the moon") {
		t.Fatalf("WaitFor failed with %q", r.fatal)
	}
}

func TestClock(t *testing.T) {
	c := NewClock(time.Unix(100, 0))
	c.Advance(time.Minute)
	if got := c.Now(); !got.Equal(time.Unix(160, 0)) {
		t.Fatalf("Now = %v", got)
	}
}

func TestAWSConfig(t *testing.T) {
	c := AWSConfig("http://127.0.0.1:1", "us-east-1", "AKID", "SECRET")
	creds, err := c.Credentials.Retrieve(t.Context())
	if err != nil || creds.AccessKeyID != "AKID" || creds.SecretAccessKey != "SECRET" || *c.BaseEndpoint != "http://127.0.0.1:1" || c.RetryMaxAttempts != 1 {
		t.Fatalf("%+v %+v %v", c, creds, err)
	}
}

func TestNFSURL(t *testing.T) {
	a := netip.MustParseAddrPort("127.1.1.4:12049")
	for path, want := range map[string]string{
		"/f":     "nfs://127.1.1.4//f?nfsport=12049&mountport=12049&version=3",
		"/":      "nfs://127.1.1.4//?nfsport=12049&mountport=12049&version=3",
		"/ap/f":  "nfs://127.1.1.4/ap/f?nfsport=12049&mountport=12049&version=3",
		"/team/": "nfs://127.1.1.4/team/?nfsport=12049&mountport=12049&version=3",
		"//":     "nfs://127.1.1.4//?nfsport=12049&mountport=12049&version=3",
	} {
		if got := NFSURL(a, path); got != want {
			t.Errorf("NFSURL(%q) = %q, want %q", path, got, want)
		}
	}
}

// TestLeakCheckIgnoresSignalWatcher: the runtime's signal watcher, which
// the first signal.Notify starts and nothing ends, is no leak. go test
// -fuzz's coordinator starts it, so every fuzz run of a package under Main
// failed after its fuzzing passed ("1 goroutines still running …
// os/signal.signal_recv").
func TestLeakCheckIgnoresSignalWatcher(t *testing.T) {
	c := &leakCheck{before: map[string]bool{}} // as if it started during the tests
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR2)
	signal.Stop(ch)
	if !strings.Contains(allStacks(), "os/signal.signal_recv") {
		t.Fatal("no signal watcher running after signal.Notify: the test proves nothing")
	}
	for _, g := range c.leaked() {
		if strings.Contains(g, "os/signal.signal_recv") {
			t.Fatalf("the signal watcher is reported as leaked:\n%s", g)
		}
	}
}
