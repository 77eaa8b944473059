package blocks_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/race"
	"github.com/regionfs/regionfs/internal/testkit"
)

// threadSyscalls counts the system calls the calling OS thread makes
// (perf's raw_syscalls:sys_enter tracepoint on this thread only): the
// caller keeps its goroutine on the thread (runtime.LockOSThread) while
// it counts. It skips the test where the kernel does not let it count
// (no tracefs, perf_event_paranoid without the privilege).
func threadSyscalls(t *testing.T) func() uint64 {
	t.Helper()
	b, err := os.ReadFile("/sys/kernel/tracing/events/raw_syscalls/sys_enter/id")
	if err != nil {
		testkit.Missing(t, "counting system calls needs tracefs: %v", err)
	}
	id, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_TRACEPOINT,
		Config: id,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
	}
	fd, err := unix.PerfEventOpen(&attr, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		testkit.Missing(t, "counting system calls needs perf_event_open of a tracepoint (root or CAP_PERFMON): %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return func() uint64 {
		var v [8]byte
		if n, err := unix.Read(fd, v[:]); err != nil || n != len(v) {
			t.Fatalf("read of the system-call counter: %d bytes, %v", n, err)
		}
		return binary.NativeEndian.Uint64(v[:])
	}
}

// TestColdPutSystemCalls is the system-call guard of a replica's block
// put (issue 16, counted, not timed): a pushed block is stored by a cold,
// sealed put on the OS file system and its name made durable by the next
// Sync. Each put and Sync pays stat, openat, write, fdatasync, fadvise,
// close and renameat for the block file and openat, fsync and close for
// its fan-out directory: 10 calls. Through os.OpenFile and os.Rename it
// was 21 (each open of the file and of the directory adds four fcntl and
// a failed epoll_ctl: the runtime tries its poller on every file, and the
// rename an lstat); the guard allows 16 (the runtime's own calls on the
// thread: a preemption signal's rt_sigreturn, a futex wake-up). Not checked under the race
// detector (.ci/run runs it without).
func TestColdPutSystemCalls(t *testing.T) {
	const puts = 32
	ctx := t.Context()
	d, err := disk.NewOS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h, err := blocks.NewHasher(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := blocks.NewSealer(bytes.Repeat([]byte{5}, 32), []byte("lineage"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := blocks.OpenDir(d, "blocks", blocks.Keys{Hasher: h, Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1<<20)
	ids := make([]blocks.ID, puts)
	// The thread's count covers what the goroutine does; whatever the
	// runtime does on it besides (a wake-up of another thread) is noise
	// within the allowance.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	count := threadSyscalls(t)
	var calls uint64
	for i := range puts {
		binary.LittleEndian.PutUint64(data, uint64(i)+1)
		ids[i] = h.Sum(data)
		before := count()
		if err := s.PutCold(ctx, ids[i], data); err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(ctx); err != nil { // one fan-out directory: synced inline
			t.Fatal(err)
		}
		calls += count() - before - 1 // less the counter's own read
	}
	runtime.UnlockOSThread()
	for i, id := range ids {
		got, err := s.Get(context.Background(), id)
		binary.LittleEndian.PutUint64(data, uint64(i)+1)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("block %d read back: %d bytes, %v", i, len(got), err)
		}
	}
	per := float64(calls) / puts
	t.Logf("%d cold puts of 1 MiB, each followed by a Sync: %d system calls (%.1f per put and Sync)", puts, calls, per)
	if race.Enabled {
		return
	}
	if per > 16 {
		t.Fatalf("%.1f system calls per cold put and its directory's sync, want at most 16 (10: stat, openat, write, fdatasync, fadvise, close, renameat; openat, fsync, close)", per)
	}
	if per < 7 {
		t.Fatalf("%.1f system calls per cold put and its directory's sync: fewer than the put's own, the counter counted nothing", per)
	}
}
