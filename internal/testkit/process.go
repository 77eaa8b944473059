package testkit

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a program a test runs in the background, typically a
// regionfs server: its output is appended to the file Log.
type Process struct {
	// Args are the program and its arguments.
	Args []string
	// Env is its environment; nil is the test's.
	Env []string
	// Log is the file its standard output and error are appended to.
	Log string

	cmd  *exec.Cmd
	done chan error // the exit status, put back by whoever peeks
}

// Start starts the program and, when readyURL is not "", waits up to a
// minute until readyURL answers (WaitHTTP): t fails, with the log's tail,
// when the program ends first or does not get ready.
func (p *Process) Start(t testing.TB, readyURL string) {
	t.Helper()
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(p.Args[0], p.Args[1:]...)
	p.cmd.Env = p.Env
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	p.done = done
	go func() { done <- p.cmd.Wait(); logf.Close() }()
	if readyURL != "" {
		WaitHTTP(t, readyURL, 60*time.Second, done, func() string { return p.Tail(40) })
	}
}

// Exited reports whether the program, once started, has ended.
func (p *Process) Exited() bool {
	if p.done == nil {
		return false
	}
	select {
	case err := <-p.done:
		p.done <- err
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the program to end by itself: ended is
// false when it still runs, and err is its exit status otherwise.
func (p *Process) Wait(timeout time.Duration) (ended bool, err error) {
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	case <-time.After(timeout):
		return false, nil
	}
}

// Stop ends a running program gracefully: SIGTERM, and SIGKILL after
// 30 s. It does nothing when the program is not running.
func (p *Process) Stop() {
	if p.cmd == nil || p.Exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		p.done <- <-p.done
	}
}

// Kill9 kills the program without warning (what it had not made durable
// is gone) and waits for it to end.
func (p *Process) Kill9() {
	p.cmd.Process.Kill()
	p.done <- <-p.done
}

// Tail returns the last n lines of the log.
func (p *Process) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	l := strings.Split(string(b), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// BuildRegionfs builds the module's cmd/regionfs into the test's
// temporary directory and returns the binary's path.
func BuildRegionfs(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "regionfs")
	if err := buildRegionfs(bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// buildRegionfs builds the module's cmd/regionfs as bin.
func buildRegionfs(bin string) error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return err
	}
	build := exec.Command("go", "build", "-o", bin, "./cmd/regionfs")
	build.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// SharedBuild is cmd/regionfs built at most once per test binary, for
// packages whose tests all run it: TestMain calls Main, tests call Path.
type SharedBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Main runs the tests with a new directory (of mode perm) for the binary,
// removes it and exits with the tests' status.
func (b *SharedBuild) Main(m *testing.M, perm os.FileMode) {
	dir, err := os.MkdirTemp("", "regionfs-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, perm)
	b.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Path builds the binary on first use and returns its path.
func (b *SharedBuild) Path(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		b.path = filepath.Join(b.dir, "regionfs")
		b.err = buildRegionfs(b.path)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// FreePort returns a TCP port free on ip right now, for a server a test
// starts (or restarts) on a fixed address. It is drawn at random below
// Linux's ephemeral range (32768-60999 by default), where neither the
// kernel's choice for a listener on port 0 nor the source port of an
// outgoing connection can take it between this call and the server's bind:
// only another caller of FreePort can, one chance in thousands.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	for range 200 {
		port := freePortLow + rand.IntN(freePortHigh-freePortLow)
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	t.Fatalf("no free port on %s in [%d, %d)", ip, freePortLow, freePortHigh)
	return 0
}

// The range FreePort draws from.
const freePortLow, freePortHigh = 20000, 32768
