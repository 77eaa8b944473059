package testkit

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHelperServer is the program TestProcess runs: this test binary
// re-executed with REGIONFS_TESTKIT_SERVE set serves HTTP there until it
// is killed. Run normally it does nothing.
func TestHelperServer(t *testing.T) {
	addr := os.Getenv("REGIONFS_TESTKIT_SERVE")
	if addr == "" {
		return
	}
	fmt.Println("serving on", addr)
	http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	os.Exit(1)
}

func TestProcess(t *testing.T) {
	// The program restarts on the same address: a port from FreePort.
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t, "127.0.0.1")))
	p := &Process{Args: []string{os.Args[0], "-test.run=^TestHelperServer$"},
		Env: append(os.Environ(), "REGIONFS_TESTKIT_SERVE="+addr), Log: filepath.Join(t.TempDir(), "log")}
	p.Stop() // not started: nothing
	p.Start(t, "http://"+addr+"/")
	if p.Exited() || !strings.Contains(p.Tail(5), "serving on "+addr) {
		t.Fatalf("exited %v, log %q", p.Exited(), p.Tail(5))
	}
	p.Kill9()
	if !p.Exited() {
		t.Fatal("running after Kill9")
	}
	p.Start(t, "http://"+addr+"/") // again, appending to the log
	if n := strings.Count(p.Tail(10), "serving on"); n != 2 {
		t.Fatalf("log has %d starts, want 2: %q", n, p.Tail(10))
	}
	if ended, _ := p.Wait(50 * time.Millisecond); ended {
		t.Fatal("a running program has ended")
	}
	p.Stop()
	if !p.Exited() {
		t.Fatal("running after Stop")
	}
	p.Stop() // stopped: nothing

	// A program that ends before it answers fails the test with its log.
	q := &Process{Args: []string{"sh", "-c", "echo broken config; exit 3"}, Log: filepath.Join(t.TempDir(), "log")}
	r := run(func(tb testing.TB) { q.Start(tb, "http://"+addr+"/") })
	if !strings.Contains(r.fatal, "broken config") || !q.Exited() {
		t.Fatalf("fatal %q, exited %v", r.fatal, q.Exited())
	}
	if ended, err := q.Wait(time.Second); !ended || err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Wait: ended %v, %v", ended, err)
	}
}
