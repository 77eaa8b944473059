package fuse

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
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

	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

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
	// log, when set, is the logger of the mounts made after it is
	log *slog.Logger
}

func (p *nfsProcess) start() {
	p.t.Helper()
	p.cmd = exec.Command(p.bin, "nfs", "serve", "--data-dir", p.dataDir, "--listen", p.addr, "--log-level", "warn")
	p.cmd.Stderr = os.Stderr
	// Dies with the test process, whatever ends it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
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
	t.Cleanup(srv.kill9)
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
		log := srv.log
		if log == nil {
			log = logger(t)
		}
		f := New(Options{Session: sess, Root: root, Logger: log})
		dir := t.TempDir()
		fsrv, err := f.Mount(dir, f.MountOptions("crash:/"))
		if err != nil {
			t.Fatal(err)
		}
		unmountMount := unmounter(t, fsrv, dir)
		var once sync.Once
		unmount := func() {
			once.Do(func() {
				unmountMount()
				sess.Close()
			})
		}
		t.Cleanup(unmount)
		return dir, unmount
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
// (dd conv=excl) through the mount while the server is killed with
// SIGKILL and restarted again and again. No open fails: a CREATE the
// server made before it died, sent again, is the application's own (the
// mount's exclusive CREATE and its verifier; a GUARDED CREATE answered
// EEXIST). A file whose create the server answered before its sync and
// lost in the kill fails its close with EIO (dd reports it), named in the
// mount's log: at most one per kill. Every other file holds what was
// written to it, also after another SIGKILL.
func TestKill9ExclusiveCreates(t *testing.T) {
	needFUSE(t)
	if testing.Short() {
		t.Skip("builds and runs the regionfs binary; not in -short")
	}
	const files, kills = 1500, 8
	tmp := t.TempDir()
	srv, mount := kill9Rig(t, tmp)
	defer srv.kill9()
	logBuf := &lockedBuffer{}
	srv.log = slog.New(slog.NewTextHandler(logBuf, nil))
	dir, unmount := mount()
	defer func() { unmount() }() // the mount of the moment (a failure leaves none behind)
	sh := exec.Command("bash", "-c", `cd "$1" && for i in $(seq 1 "$2"); do err=$(echo "$i" | dd of="f$i" conv=excl status=none 2>&1) || echo "FAILED f$i: $err"; done; echo done`, "bash", dir, strconv.Itoa(files))
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
		if err != nil || !strings.Contains(out.String(), "done") {
			t.Fatalf("O_EXCL creates through a server killed %d times: %v\n%s", killed, err, out)
		}
	case <-time.After(5 * time.Minute):
		t.Fatal("the creates did not finish after the server restarts")
	}
	lost := map[string]bool{}
	for line := range strings.Lines(out.String()) {
		name, msg, ok := strings.Cut(strings.TrimPrefix(line, "FAILED "), ": ")
		if !strings.HasPrefix(line, "FAILED ") {
			continue
		}
		if !ok || !strings.Contains(msg, "closing output file") || !strings.Contains(msg, "Input/output error") {
			t.Fatalf("O_EXCL creates through a server killed %d times: %s", killed, line)
		}
		lost[name] = true
		if !strings.Contains(logBuf.String(), "path=/"+name+" ") {
			t.Errorf("%s: close failed with EIO, but the mount's log does not name it", name)
		}
	}
	if len(lost) > killed {
		t.Errorf("%d files lost in %d kills (%v), want at most one per kill", len(lost), killed, lost)
	}
	t.Logf("%d kills, %d files whose create was lost (close EIO)", killed, len(lost))
	unmount()
	unmount = func() {}
	srv.kill9()
	srv.start()
	dir, unmount = mount()
	for i := 1; i <= files; i++ {
		name := fmt.Sprintf("f%d", i)
		got, err := os.ReadFile(filepath.Join(dir, name))
		if lost[name] {
			if !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s, whose close failed with EIO, after another SIGKILL: %q, %v; want it gone", name, got, err)
			}
			continue
		}
		if want := fmt.Sprintf("%d\n", i); err != nil || string(got) != want {
			t.Fatalf("f%d after another SIGKILL: %q, %v; want %q", i, got, err, want)
		}
	}
}

// lockedBuffer is a strings.Builder for a logger written from several
// goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestKill9BeforeCreateDurable: open(O_CREAT|O_EXCL) through the mount is
// answered before the server's sync (REGIONFS_CREATE_VISIBLE), and the
// server is killed with SIGKILL and restarted while files are open. A
// file whose create nothing made durable is gone: its close fails with
// EIO and the mount's log names it. What was acknowledged is kept: a
// file closed before the kill (with data, or empty: its close waits for
// the create), and a file whose directory was fsynced (its create is
// durable; its data, written again after the restart, lands at close).
// The files are opened by a child process (this test's binary, see
// kill9Files): a fork here with files of the mount open would close them
// in the child, and their flush would wait for the server being started.
func TestKill9BeforeCreateDurable(t *testing.T) {
	if dir := os.Getenv("REGIONFS_KILL9_FILES"); dir != "" {
		kill9Files(dir)
		return
	}
	needFUSE(t)
	if testing.Short() {
		t.Skip("builds and runs the regionfs binary; not in -short")
	}
	tmp := t.TempDir()
	srv, mount := kill9Rig(t, tmp)
	defer srv.kill9()
	logBuf := &lockedBuffer{}
	srv.log = slog.New(slog.NewTextHandler(logBuf, nil))
	dir, unmount := mount()
	defer func() { unmount() }()

	child := startFilesChild(t, "TestKill9BeforeCreateDurable", "REGIONFS_KILL9_FILES", dir)
	defer child.stop()
	next, tell := child.next, child.tell
	if l := next(); l != "ready" {
		t.Fatalf("the child: %s", l)
	}
	srv.kill9()
	srv.start()
	tell()
	if l := next(); l != "synced: <nil>" {
		t.Errorf("close of a file whose directory was fsynced before the kill: %s, want <nil>", l)
	}
	if l := next(); l != "lost: EIO" {
		t.Errorf("close of a file whose create was never durable, after a kill: %s, want EIO", l)
	}
	child.end()
	if l := logBuf.String(); !strings.Contains(l, "file lost") || !strings.Contains(l, "path=/lost") {
		t.Errorf("the mount's log does not name the lost file:\n%s", l)
	}
	unmount()
	unmount = func() {}
	dir, unmount = mount()
	for name, want := range map[string]string{"kept": "kept data", "empty": "", "synced": "synced data"} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != want {
			t.Errorf("%s after the kill: %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "lost")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lost file after the kill: %v, want it gone", err)
	}
}

// kill9Files is TestKill9BeforeCreateDurable's child, in dir (the mount):
// it makes the files, says "ready" and, once told (a line on stdin: the
// server was killed and restarted), closes the two left open and says
// how each close went.
func kill9Files(dir string) {
	fail, create := childFiles(dir)
	synced := durableFiles(dir, fail, create, "synced data")
	lost := create("lost", "lost data")
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	fmt.Println("synced:", synced.Close())
	if err := lost.Close(); errors.Is(err, syscall.EIO) {
		fmt.Println("lost: EIO")
	} else {
		fmt.Println("lost:", err)
	}
}

// filesChild is this test binary run again as the child that works on
// a mount (the test process itself never makes a system call on its own
// mount), told when to go on by lines on its stdin and answering with
// lines on its stdout.
type filesChild struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
}

// startFilesChild starts the child: test is the test it runs, env the
// variable that gives it the mount's directory dir. stop must follow
// (deferred before the mount's unmount runs).
func startFilesChild(t *testing.T, test, env, dir string) *filesChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return &filesChild{t: t, cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout)}
}

// next is the child's next line (the test fails when the child ended).
func (c *filesChild) next() string {
	c.t.Helper()
	if !c.lines.Scan() {
		c.t.Fatalf("the child ended: %v", c.lines.Err())
	}
	return c.lines.Text()
}

// tell lets the child go on.
func (c *filesChild) tell() {
	c.t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		c.t.Fatal(err)
	}
}

// end closes the child's stdin: it has nothing more to wait for.
func (c *filesChild) end() { c.stdin.Close() }

// stop kills the child and waits for it.
func (c *filesChild) stop() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// unmounter returns what unmounts a test's mount at dir. When the unmount
// fails it aborts the mount's FUSE connection first: a mount left hung
// blocks every process on the machine that looks at it.
func unmounter(t *testing.T, fsrv *gofuse.Server, dir string) func() {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	abort := fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", unix.Minor(st.Dev))
	return func() {
		if err := fsrv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
			os.WriteFile(abort, []byte("1"), 0o200)
			exec.Command("umount", "-l", dir).Run()
		}
	}
}

// childFiles is what a files child (startFilesChild) works on its mount
// at dir with: fail ends the child with the error on its stdout, create
// makes name with data (O_EXCL, the mount's early create) and leaves it
// open.
func childFiles(dir string) (fail func(error), create func(name, data string) *os.File) {
	fail = func(err error) {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	create = func(name, data string) *os.File {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
		if err != nil {
			fail(err)
		}
		if _, err := f.WriteString(data); err != nil {
			fail(err)
		}
		return f
	}
	return fail, create
}

// durableFiles makes, through a files child's create, "kept" (with data)
// and "empty", both closed, and "synced" with syncedData, left open; then
// fsyncs dir, which makes all three durable. It returns "synced".
func durableFiles(dir string, fail func(error), create func(name, data string) *os.File, syncedData string) *os.File {
	if err := create("kept", "kept data").Close(); err != nil {
		fail(err)
	}
	if err := create("empty", "").Close(); err != nil {
		fail(err)
	}
	synced := create("synced", syncedData)
	d, err := os.Open(dir)
	if err != nil {
		fail(err)
	}
	if err := d.Sync(); err != nil {
		fail(fmt.Errorf("fsync of the directory: %w", err))
	}
	d.Close()
	return synced
}
