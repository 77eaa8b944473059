package disk_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestReadWholeRawBlockingOpen: a garbage collection completes while
// ReadWholeRaw waits in the open of its file. The open of a FIFO waits
// for a writer, as the open of a block file can wait for the disk (or a
// FUSE or NFS server): a goroutine in a raw system call keeps its P
// running, so the collector's stop-the-world, and with it every goroutine
// of the process, waited for the writer. The writer is another process,
// which opens the FIFO when the test tells it to, after the collection,
// or on its own after 10 s: a collection that waited for it gets
// "timeout". It failed with openat2 made raw.
func TestReadWholeRawBlockingOpen(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		// With one P the blocked reader would hold it: nothing else runs.
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	root := t.TempDir()
	fifo := filepath.Join(root, "block")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := disk.NewOS(root)
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		_, _, err := d.ReadWholeRaw("block", make([]byte, 0, 16))
		read <- err
	}()
	if !waitOpenBlocked(t) {
		t.Fatal("no thread of the process waits in an open after 10 s")
	}
	writer := exec.Command("bash", "-c", `if read -t 10 x; then echo released; else echo timeout; fi; exec 3>"$0"`, fifo)
	stdin, err := writer.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := writer.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := writer.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	runtime.GC()
	took := time.Since(start)
	stdin.Write([]byte("go\n"))
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if err := writer.Wait(); err != nil {
		t.Errorf("writer: %v", err)
	}
	if err := <-read; err != nil {
		t.Errorf("ReadWholeRaw of the FIFO: %v", err)
	}
	if strings.TrimSpace(line) != "released" {
		t.Fatalf("the garbage collection waited %v for ReadWholeRaw's open of a FIFO to end (the writer says %q): a raw system call that blocks", took, line)
	}
	t.Logf("a garbage collection while ReadWholeRaw waits in its open: %v", took)
}

// waitOpenBlocked waits until a thread of the process waits in open or
// openat2 (/proc/PID/task/TID/syscall gives the number of the system
// call a blocked thread is in).
func waitOpenBlocked(t *testing.T) bool {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		tasks, err := filepath.Glob("/proc/self/task/*/syscall")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range tasks {
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			f := strings.Fields(string(b))
			if len(f) > 0 && (f[0] == "257" || f[0] == "437") { // openat, openat2 (amd64, arm64 differ)
				return true
			}
		}
	}
	return false
}

// TestRawCallsNeverBlock is the guard of the package's raw system calls:
// a goroutine in a raw call (RawSyscall, RawSyscall6) keeps its P running
// and stops the process's garbage collector until the call returns, so
// the only raw call is a read that cannot wait for the disk (preadv2 with
// RWF_NOWAIT). It failed with fstat, close and openat2 made raw.
func TestRawCallsNeverBlock(t *testing.T) {
	for _, c := range testkit.RawSyscalls(t) {
		if len(c.Args) < 6 || !testkit.Names(c.Args[0], "SYS_PREADV2") || !testkit.Names(c.Args[len(c.Args)-1], "RWF_NOWAIT") {
			t.Errorf("%s: a raw system call that is not preadv2 with RWF_NOWAIT", c.Pos)
		}
	}
}
