package fuse

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/testkit"
)

// nfsProcess is `regionfs nfs serve` in a child process (so that it can be
// killed with SIGKILL).
type nfsProcess struct {
	t       *testing.T
	bin     string
	dataDir string
	addr    string
	cmd     *exec.Cmd
}

func (p *nfsProcess) start() {
	p.t.Helper()
	p.cmd = exec.Command(p.bin, "nfs", "serve", "--data-dir", p.dataDir, "--listen", p.addr, "--log-level", "warn")
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	testkit.Eventually(p.t, 30*time.Second, func() error {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err != nil {
			return fmt.Errorf("regionfs nfs serve not listening on %s: %w", p.addr, err)
		}
		return c.Close()
	})
}

func (p *nfsProcess) kill9() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// kill9Rig builds regionfs into tmp and starts `regionfs nfs serve` in a
// child process; mount mounts it (a hard mount through a session that
// reconnects) and returns the directory and its unmount.
func kill9Rig(t *testing.T, tmp string) (*nfsProcess, func() (string, func())) {
	t.Helper()
	bin := filepath.Join(tmp, "regionfs")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/regionfs")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	// A fixed address the server restarts on: a port no listener or
	// outgoing connection (the client's own, redialing) is given meanwhile.
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testkit.FreePort(t, "127.0.0.1")))
	srv := &nfsProcess{t: t, bin: bin, dataDir: filepath.Join(tmp, "data"), addr: addr}
	srv.start()
	mount := func() (string, func()) {
		sess := client.NewSession(client.SessionOptions{
			Logger: logger(t),
			Dial: func(ctx context.Context) (client.Dialed, error) {
				c, err := client.Dial(ctx, addr)
				return client.Dialed{Conn: c, Addr: addr}, err
			},
		})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		root, _, err := sess.Client(client.Unix("t", 0, 0)).Mount(ctx, "/")
		if err != nil {
			t.Fatal(err)
		}
		f := New(Options{Session: sess, Root: root, Logger: logger(t)})
		dir := t.TempDir()
		fsrv, err := f.Mount(dir, f.MountOptions("crash:/"))
		if err != nil {
			t.Fatal(err)
		}
		return dir, func() {
			if err := fsrv.Unmount(); err != nil {
				t.Errorf("unmount: %v", err)
			}
			sess.Close()
		}
	}
	return srv, mount
}

// TestKill9MidCopy copies a tree into the mount while the server is
// killed with SIGKILL and restarted: the hard-mounted client reconnects
// with the same handles, resends what the server lost (its write verifier
// changed), and every close succeeds; the copy is then correct, also after
// another SIGKILL once it is done (what close acknowledged is durable).
func TestKill9MidCopy(t *testing.T) {
	needFUSE(t)
	if testing.Short() {
		t.Skip("builds and runs the regionfs binary; not in -short")
	}
	tmp := t.TempDir()
	srv, mount := kill9Rig(t, tmp)
	defer srv.kill9()

	src := filepath.Join(tmp, "src")
	os.MkdirAll(filepath.Join(src, "small"), 0o755)
	big := make([]byte, 64<<20)
	rand.Read(big)
	os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644)
	for i := range 300 {
		b := make([]byte, 1+i*37)
		rand.Read(b)
		os.WriteFile(filepath.Join(src, "small", fmt.Sprintf("f%03d", i)), b, 0o644)
	}

	dir, unmount := mount()
	// cp runs in its own process: this one serves the mount, and a fork
	// here while one of its threads is blocked in a write to the mount
	// would deadlock (fork waits for the faulting writer, the writer for
	// the server this process is about to start).
	cp := exec.Command("cp", "-a", src, filepath.Join(dir, "copy"))
	out := &strings.Builder{}
	cp.Stdout, cp.Stderr = out, out
	if err := cp.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cp.Wait() }()
	var copied int64
	for copied < 24<<20 {
		select {
		case err := <-done:
			t.Fatalf("copy ended before the kill: %v %s", err, out)
		case <-time.After(5 * time.Millisecond):
		}
		if st, err := os.Stat(filepath.Join(dir, "copy", "big.bin")); err == nil {
			copied = st.Size()
		}
	}
	srv.kill9()
	t.Logf("server killed with %d MiB of big.bin copied", copied>>20)
	time.Sleep(300 * time.Millisecond) // the server stays down a while
	srv.start()
	t.Logf("server restarted")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("cp -a through a server killed with SIGKILL: %v %s", err, out)
		}
	case <-time.After(5 * time.Minute):
		t.Fatal("copy did not finish after the server restart")
	}
	if d := compareTrees(src, filepath.Join(dir, "copy")); d != "" {
		t.Fatalf("copy differs after the server was killed mid-copy: %s", d)
	}
	unmount()
	// What close acknowledged survives another SIGKILL.
	srv.kill9()
	srv.start()
	dir, unmount = mount()
	defer unmount()
	if d := compareTrees(src, filepath.Join(dir, "copy")); d != "" {
		t.Fatalf("copy differs after a second SIGKILL: %s", d)
	}
}

// TestKill9ExclusiveCreates: a shell makes files with open(O_CREAT|O_EXCL)
// (bash's noclobber) through the mount while the server is killed with
// SIGKILL and restarted again and again. No open fails: a CREATE the
// server made durable before it died, sent again, is the application's
// own (the mount's exclusive CREATE and its verifier; a GUARDED CREATE
// answered EEXIST). Every file then holds what was written to it, also
// after another SIGKILL.
func TestKill9ExclusiveCreates(t *testing.T) {
	needFUSE(t)
	if testing.Short() {
		t.Skip("builds and runs the regionfs binary; not in -short")
	}
	const files, kills = 1500, 8
	tmp := t.TempDir()
	srv, mount := kill9Rig(t, tmp)
	defer srv.kill9()
	dir, unmount := mount()
	defer func() { unmount() }() // the mount of the moment (a failure leaves none behind)
	sh := exec.Command("bash", "-c", `set -C; cd "$1" && for i in $(seq 1 "$2"); do echo "$i" > "f$i" || echo "FAILED f$i"; done; echo done`, "bash", dir, strconv.Itoa(files))
	out := &strings.Builder{}
	sh.Stdout, sh.Stderr = out, out
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sh.Wait() }()
	// This process does not touch the mount while the shell runs: it forks
	// to restart the server (see TestKill9MidCopy).
	killed := 0
	for ; killed < kills; killed++ {
		select {
		case <-done:
			t.Fatalf("the creates ended after %d kills: %s", killed, out)
		case <-time.After(time.Duration(100+mrand.IntN(200)) * time.Millisecond):
		}
		srv.kill9()
		srv.start()
	}
	select {
	case err := <-done:
		if err != nil || strings.Contains(out.String(), "FAILED") || !strings.Contains(out.String(), "done") {
			t.Fatalf("O_EXCL creates through a server killed %d times: %v\n%s", killed, err, out)
		}
	case <-time.After(5 * time.Minute):
		t.Fatal("the creates did not finish after the server restarts")
	}
	unmount()
	unmount = func() {}
	srv.kill9()
	srv.start()
	dir, unmount = mount()
	for i := 1; i <= files; i++ {
		got, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("f%d", i)))
		if want := fmt.Sprintf("%d\n", i); err != nil || string(got) != want {
			t.Fatalf("f%d after another SIGKILL: %q, %v; want %q", i, got, err, want)
		}
	}
}
