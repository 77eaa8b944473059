package scaleoute2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/test/e2e/e2ekit"
)

// backendsCtl runs scripts/backends.sh CMD on the test's backends
// (REGIONFS_TEST_BACKENDS_DIR, set by .ci/run).
func backendsCtl(t *testing.T) func(cmd string) {
	t.Helper()
	dir := os.Getenv("REGIONFS_TEST_BACKENDS_DIR")
	if dir == "" {
		if os.Getenv("REGIONFS_REQUIRE_TOOLS") == "1" {
			t.Fatal("REGIONFS_TEST_BACKENDS_DIR is required: the outage tests restart the servers of scripts/backends.sh")
		}
		t.Skip("REGIONFS_TEST_BACKENDS_DIR not set: the outage tests restart the servers of scripts/backends.sh up DIR")
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "scripts", "backends.sh")
	return func(cmd string) {
		t.Helper()
		if out, err := exec.Command(script, cmd, dir).CombinedOutput(); err != nil {
			t.Fatalf("backends.sh %s: %v\n%s", cmd, err, out)
		}
	}
}

// bigContent is one whole 1 MiB block: written, it goes to the object
// store before the write is acknowledged.
func bigContent(i int) []byte {
	b := make([]byte, 1<<20)
	for off := 0; off < len(b); off += 32 {
		h := sha256.Sum256(fmt.Appendf(nil, "%d/%d", i, off))
		copy(b[off:], h[:])
	}
	return b
}

// TestOutages: one node on PostgreSQL and S3 while a client writes 1 MiB
// files with FILE_SYNC: PostgreSQL stops (connections cut) and stays down
// until the node's 3 s lease has run out, then comes back; then the
// object store is down for 30 s. Writes wait (or fail and are retried by
// the client), the node stays up (its lease ran out but nobody took the
// region over: it renews it and carries on), and every acknowledged file
// is there.
//
// It takes about three minutes: .ci/run runs it with
// REGIONFS_TEST_OUTAGES=1 and a time cap, `go test ./...` leaves it out.
func TestOutages(t *testing.T) {
	if os.Getenv("REGIONFS_TEST_OUTAGES") != "1" {
		t.Skip("a long test (~3 min): set REGIONFS_TEST_OUTAGES=1 to run it (.ci/run does)")
	}
	ctl := backendsCtl(t)
	_, nodes := regionNodes(t, "5d", "node-a")
	n := nodes[0]
	n.start()
	waitAPI(t, n)
	ip := fileSystemWithTarget(t)

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	ack := &acked{files: map[int]proto.FH{}}
	var mu sync.Mutex
	var failures int
	var slowest time.Duration
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		c, err := e2ekit.Dial(ctx, ip)
		if err != nil {
			done <- err
			return
		}
		defer func() { c.Conn.Close() }()
		for i := 0; ; i++ {
			for {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				t0 := time.Now()
				fh, err := writeData(ctx, c, fmt.Sprintf("f%05d", i), bigContent(i), 90*time.Second)
				mu.Lock()
				slowest = max(slowest, time.Since(t0))
				if err != nil {
					failures++
					t.Logf("write f%05d failed (retried): %v", i, err)
				}
				mu.Unlock()
				if err == nil {
					ack.add(i, fh)
					break
				}
				if ctx.Err() != nil {
					done <- err
					return
				}
				time.Sleep(200 * time.Millisecond) // a pause before the retry
				c.Conn.Close()
				if c, err = e2ekit.Redial(ctx, ip, 200*time.Millisecond); err != nil {
					done <- err
					return
				}
			}
		}
	}()
	waitFiles(t, ack, 10)
	t.Logf("%d files written before the database stops", count(ack))

	// PostgreSQL stops under load and stays down until the node's lease
	// has run out (a bare restart is often shorter than the lease, and
	// would leave the lease-expiry path untested), then comes back.
	t0 := time.Now()
	ctl("stop-pg")
	waitLog(t, n, "region lease ran out unrenewed")
	ctl("start-pg")
	restart := time.Since(t0)
	waitLog(t, n, "region lease renewed after running out")
	waitFiles(t, ack, count(ack)+20)
	if n.Exited() {
		t.Fatalf("node exited after the database restart:\n%s", n.logText())
	}
	mu.Lock()
	t.Logf("database down %v: %d failed writes (retried), slowest write %v", restart.Round(time.Millisecond), failures, slowest.Round(time.Millisecond))
	failures, slowest = 0, 0
	mu.Unlock()

	// The object store is gone for 30 s. Writes acknowledged while it
	// shuts down count as before it.
	ctl("stop-s3")
	before := count(ack)
	time.Sleep(30 * time.Second) // the outage's length
	during := count(ack)
	ctl("start-s3")
	waitFiles(t, ack, count(ack)+10)
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("writer: %v\nnode log:\n%s", err, tail(n.logText(), 60))
	}
	if n.Exited() {
		t.Fatalf("node exited after the object store outage:\n%s", n.logText())
	}
	mu.Lock()
	t.Logf("object store down 30 s: %d writes acknowledged during it (before %d, at its end %d), %d failed writes (retried), slowest write %v",
		during-before, before, during, failures, slowest.Round(time.Millisecond))
	mu.Unlock()
	if during-before > 1 {
		t.Fatalf("%d writes acknowledged while the object store was down", during-before)
	}
	if !strings.Contains(n.logText(), "object store unreachable; retrying") {
		t.Fatalf("no retry logged during the outage:\n%s", n.logText())
	}
	for _, l := range strings.Split(n.logText(), "\n") {
		if strings.Contains(l, "object store") || strings.Contains(l, "lease") || strings.Contains(l, "database") {
			t.Log(l)
		}
	}
	// docs/scale-out.md shows the lease running out while the database is
	// down and renewed after it.
	matchLog(t, n, "TestOutages/lease", "region lease ran out unrenewed", "region lease renewed after running out")

	eachAcked(t, ctx, ip, ack, func(c *conn, i int, fh proto.FH) {
		want := bigContent(i)
		var got []byte
		for off := 0; off < len(want); {
			r, err := c.C.Read(ctx, fh, uint64(off), 1<<20)
			if err != nil {
				t.Fatalf("f%05d: %v", i, err)
			}
			got = append(got, r.Data...)
			off += len(r.Data)
			if r.EOF || len(r.Data) == 0 {
				break
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("acknowledged f%05d differs after the outages (%d bytes)", i, len(got))
		}
	})
	t.Logf("%d acknowledged files checked", count(ack))
}

func tail(s string, n int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}
