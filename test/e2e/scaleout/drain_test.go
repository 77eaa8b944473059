package scaleoute2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/testkit"
	"github.com/regionfs/regionfs/test/e2e/e2ekit"
)

// TestDrain: two nodes of one region; `regionfs cluster drain` on the
// owner while a client writes: the owner stops cleanly (exit status 0),
// the standby takes the region over at once (no lease to wait out), the
// client resumes on the same address with the same handles and nothing
// acknowledged is lost. Restarted, the drained node stays a standby. The
// log lines and the list of nodes have the shape docs/scale-out.md shows.
func TestDrain(t *testing.T) {
	bin, nodes := regionNodes(t, "5c", "node-a", "node-b")
	a, b := nodes[0], nodes[1]
	a.start()
	waitAPI(t, a)
	b.start()
	waitLog(t, b, "standby: another node owns the region")
	matchLog(t, b, "TestDrain/standby", "standby: another node owns the region")
	ip := fileSystemWithTarget(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ack := &acked{files: map[int]proto.FH{}}
	resumed := make(chan time.Time, 1)
	var drainedAt time.Time
	stop := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		writerDone <- writeFiles(ctx, ip, stop, func(i int, fh proto.FH, afterFailure bool) {
			ack.add(i, fh)
			if afterFailure {
				select {
				case resumed <- time.Now():
				default:
				}
			}
		})
	}()
	waitFiles(t, ack, 20)
	// Both nodes are listed, as docs/scale-out.md shows them.
	out, err := exec.Command(bin, "cluster", "nodes", "--config", a.cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("cluster nodes: %v\n%s", err, out)
	}
	t.Logf("$ regionfs cluster nodes --config node-a.yaml\n%s", out)
	matchDoc(t, "TestDrain/nodes", asHosts(t, strings.TrimRight(string(out), "\n")))

	drainedAt = time.Now()
	out, err = exec.Command(bin, "cluster", "drain", "--config", a.cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("cluster drain: %v\n%s", err, out)
	}
	t.Logf("$ regionfs cluster drain --config node-a.yaml\n%s", out)
	if ended, err := a.Wait(60 * time.Second); !ended {
		t.Fatalf("drained node-a still runs after 60 s\n%s", tail(a.logText(), 40))
	} else if err != nil {
		t.Fatalf("drained node-a exited with %v\n%s", err, tail(a.logText(), 40))
	}
	stoppedAt := time.Now()
	n := count(ack)
	waitFiles(t, ack, n+20)
	close(stop)
	if err := <-writerDone; err != nil {
		t.Fatalf("writer: %v\nnode-b log:\n%s", err, b.logText())
	}
	var gap string
	select {
	case r := <-resumed:
		gap = fmt.Sprintf("first acknowledged write after a failed one %v after the drain command (node-a stopped after %v)",
			r.Sub(drainedAt).Round(time.Millisecond), stoppedAt.Sub(drainedAt).Round(time.Millisecond))
	default:
		gap = fmt.Sprintf("no write failed (node-a stopped %v after the drain command)", stoppedAt.Sub(drainedAt).Round(time.Millisecond))
	}
	t.Logf("drain: %s; %d files before node-a stopped, %d in all", gap, n, count(ack))
	for _, want := range []string{"this node is drained: stopping, so that another node takes the region over", "drained: stopping and handing the region over"} {
		if !strings.Contains(a.logText(), want) {
			t.Fatalf("node-a log lacks %q:\n%s", want, tail(a.logText(), 40))
		}
	}
	if !strings.Contains(b.logText(), "took the region over") {
		t.Fatalf("node-b did not take over:\n%s", b.logText())
	}
	matchLog(t, a, "TestDrain/drained", "this node is drained: stopping, so that another node takes the region over")
	checkAcked(t, ctx, ip, ack)

	// Restarted, the drained node waits as a standby and takes nothing
	// over; the list of nodes says so.
	a.start()
	waitLog(t, a, "this node is drained: it takes no region over")
	out, err = exec.Command(bin, "cluster", "nodes", "--config", b.cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("cluster nodes: %v\n%s", err, out)
	}
	t.Logf("$ regionfs cluster nodes --config node-b.yaml\n%s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "node-a standby true") ||
		!strings.HasPrefix(strings.Join(strings.Fields(lines[2]), " "), "node-b owner false") {
		t.Fatalf("cluster nodes:\n%s", out)
	}
	// Lifting the drain leaves the owner as it is.
	if out, err := exec.Command(bin, "cluster", "drain", "--undo", "--config", b.cfg, "--node", "node-a").CombinedOutput(); err != nil {
		t.Fatalf("cluster drain --undo: %v\n%s", err, out)
	}
	waitLog(t, a, "drain lifted: this node may take the region over")
	if a.Exited() || b.Exited() {
		t.Fatalf("a node exited after the drain was lifted\nnode-a:\n%s\nnode-b:\n%s", tail(a.logText(), 20), tail(b.logText(), 20))
	}
}

// waitLog waits until n's log holds s.
func waitLog(t *testing.T, n *node, s string) {
	t.Helper()
	logged := testkit.Until(60*time.Second, func() bool {
		if strings.Contains(n.logText(), s) {
			return true
		}
		if n.Exited() {
			t.Fatalf("node %s exited\n%s", n.name, tail(n.logText(), 40))
		}
		return false
	})
	if !logged {
		t.Fatalf("node %s did not log %q in 60 s\n%s", n.name, s, tail(n.logText(), 40))
	}
}

// checkAcked checks every acknowledged file through a new connection: the
// same handle, the same content.
func checkAcked(t *testing.T, ctx context.Context, ip string, ack *acked) {
	t.Helper()
	eachAcked(t, ctx, ip, ack, func(c *conn, i int, fh proto.FH) {
		name := fmt.Sprintf("f%05d", i)
		l, err := c.C.Lookup(ctx, c.Root, name)
		if err != nil {
			t.Fatalf("acknowledged %s lost: %v", name, err)
		}
		if !bytes.Equal(l.FH, fh) {
			t.Fatalf("%s: handle changed across the handover", name)
		}
		want := content(i)
		r, err := c.C.Read(ctx, fh, 0, uint32(len(want)+1))
		if err != nil || !bytes.Equal(r.Data, want) {
			t.Fatalf("%s through its old handle: %d bytes, %v", name, len(r.Data), err)
		}
	})
}

// eachAcked calls check with every acknowledged file, through a new
// connection to the mount target at ip.
func eachAcked(t *testing.T, ctx context.Context, ip string, ack *acked, check func(c *conn, i int, fh proto.FH)) {
	t.Helper()
	c, err := e2ekit.Dial(ctx, ip)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Conn.Close()
	ack.mu.Lock()
	defer ack.mu.Unlock()
	for i, fh := range ack.files {
		check(c, i, fh)
	}
}
