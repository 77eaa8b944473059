package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/regionfs/regionfs/internal/drill"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/testkit"
)

// runCmd runs the root command with separate stdout and stderr.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

// streamer writes stream-<i> files on a primary, one after the other, each
// durable before the next, until stopped; a replica that is a prefix of it
// holds stream-0 … stream-k for some k and nothing after.
type streamer struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex // guards n and err
	n    int        // files written
	err  error
}

func startStreamer(t *testing.T, fs *engine.FS) *streamer {
	t.Helper()
	s := &streamer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		ctx := context.Background()
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			e, err := fs.Create(ctx, engine.RootCred, engine.RootIno, fmt.Sprintf("stream-%d", i), engine.CreateGuarded, engine.SetAttr{}, 0)
			if err == nil {
				_, _, err = fs.Write(ctx, engine.RootCred, e.Attr.Ino, 0, []byte(fmt.Sprintf("w%d\n", i)))
			}
			s.mu.Lock()
			if err != nil {
				s.err = err
				s.mu.Unlock()
				return
			}
			s.n = i + 1
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.halt)
	return s
}

func (s *streamer) halt() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

func (s *streamer) written() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, s.err
}

// prefixWatch checks the replica again and again until stopped: the
// highest stream file it holds, then that every one before it is there
// with its content (files are only added, so a replica that is a prefix
// of the source passes, and one that skipped a transaction fails).
type prefixWatch struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex // guards the fields below
	runs int
	high int
	err  error
}

func watchPrefix(fs *engine.FS) *prefixWatch {
	w := &prefixWatch{stop: make(chan struct{}), done: make(chan struct{}), high: -1}
	go func() {
		defer close(w.done)
		ctx := context.Background()
		has := func(i int) (bool, error) {
			a, err := fs.Lookup(ctx, engine.RootCred, engine.RootIno, fmt.Sprintf("stream-%d", i))
			if errors.Is(err, engine.ErrNotFound) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
			b, _, _, err := fs.Read(ctx, engine.RootCred, a.Ino, 0, 64)
			if err != nil {
				return false, err
			}
			// The create and the write are two transactions: the last file
			// may be empty yet.
			if len(b) != 0 && string(b) != fmt.Sprintf("w%d\n", i) {
				return false, fmt.Errorf("stream-%d holds %q", i, b)
			}
			return true, nil
		}
		high := -1
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			for {
				ok, err := has(high + 1)
				if err != nil {
					w.fail(err)
					return
				}
				if !ok {
					break
				}
				high++
			}
			for i := 0; i < high; i++ {
				if ok, err := has(i); err != nil || !ok {
					w.fail(fmt.Errorf("the replica holds stream-%d but not stream-%d (%v): not a prefix", high, i, err))
					return
				}
			}
			w.mu.Lock()
			w.runs++
			w.high = high
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *prefixWatch) fail(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
}

func (w *prefixWatch) halt() (runs, high int, err error) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.runs, w.high, w.err
}

// nfsWrite creates a file over NFS on the mount target at addr and writes
// content to it (nothing when content is empty).
func nfsWrite(ctx context.Context, addr, name, content string) error {
	conn, err := client.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	c := conn.WithAuth(client.Unix("e2e", 0, 0))
	root, _, err := c.Mount(ctx, "/")
	if err != nil {
		return err
	}
	cr, err := c.Create(ctx, root, name, proto.Unchecked, proto.Sattr{})
	if err != nil || content == "" {
		return err
	}
	_, err = c.Write(ctx, cr.FH, 0, []byte(content), proto.FileSync)
	return err
}

// TestDrillE2E drills a replica through the edge while writes stream to its
// source: `regionfs drill --json` reports RPO and RTO, the clone is writable
// over NFS while the replica stays read-only, replication stays ENABLED and
// goes on (the replica stays a prefix of the source at every check, its lag
// sampled all along), a drill without --keep leaves nothing behind, the
// history lists both, and with the source region down the drill says so
// and still measures RTO. What the drills print has the shape
// docs/runbook.md shows.
func TestDrillE2E(t *testing.T) {
	ctx := context.Background()
	// Loopback ranges of its own (no ports lock).
	p := startOpsPairOn(t, "127.30.0.1", "127.31.0.1")
	src, dst := p.replicated(t, "drill", "")
	status := func() types.ReplicationStatus {
		out, err := p.efsB.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(dst)})
		if err != nil || len(out.Replications) != 1 {
			return ""
		}
		return out.Replications[0].Destinations[0].Status
	}
	testkit.WaitFor(t, "replication ENABLED", 30*time.Second, func() bool { return status() == types.ReplicationStatusEnabled })
	subnet := p.b.cfg.Subnets[0].ID
	rmt, err := p.efsB.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: aws.String(dst), SubnetId: aws.String(subnet)})
	if err != nil {
		t.Fatal(err)
	}
	replicaAddr := fmt.Sprintf("%s:%d", aws.ToString(rmt.IpAddress), p.b.cfg.NFS.Port)
	countFS := func() int {
		out, err := p.efsB.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.FileSystems)
	}
	before := countFS()

	srcFS, err := p.a.control.region.EngineFS(src)
	if err != nil {
		t.Fatal(err)
	}
	dstFS, err := p.b.control.region.EngineFS(dst)
	if err != nil {
		t.Fatal(err)
	}
	w := startStreamer(t, srcFS)
	testkit.WaitFor(t, "the first writes replicated", 20*time.Second, func() bool {
		_, err := dstFS.Lookup(ctx, engine.RootCred, engine.RootIno, "stream-10")
		return err == nil
	})
	pw := watchPrefix(dstFS)

	// A kept drill, with a check run by the command against the clone.
	html := filepath.Join(t.TempDir(), "drill.html")
	out, errOut, err := runCmd(t, "drill", "--region", "ap-northeast-2", "--keep", "--json", "--html", html,
		"--check", `test -n "$REGIONFS_DRILL_IP" && test "$REGIONFS_DRILL_FILE_SYSTEM_ID" != "`+dst+`" && echo checked $REGIONFS_DRILL_FILE_SYSTEM_ID`, dst)
	t.Logf("drill --keep:\n%s", errOut)
	if err != nil {
		t.Fatalf("drill --keep: %v\n%s", err, out)
	}
	var s drill.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("drill JSON: %v\n%s", err, out)
	}
	if s.RPOSeconds == nil || s.RTOSeconds == nil || s.RPOMethod != drill.RPOCanary || !s.SourceReachable || !s.Succeeded {
		t.Fatalf("drill: %s", out)
	}
	if s.CloneFileSystemID == "" || s.CloneFileSystemID == dst || s.CloneFileSystemID == src || s.CloneIPAddress == "" || !s.Kept {
		t.Fatalf("drill clone: %s", out)
	}
	if s.Check == nil || !s.Check.Passed || !strings.Contains(s.Check.Output, "checked "+s.CloneFileSystemID) {
		t.Errorf("check: %+v", s.Check)
	}
	if s.ReplicationStatusBefore != "ENABLED" || s.ReplicationStatusAfter != "ENABLED" || !s.ReplicaReadOnly {
		t.Errorf("replication during the drill: %s → %s, read-only %v", s.ReplicationStatusBefore, s.ReplicationStatusAfter, s.ReplicaReadOnly)
	}
	if s.AppliedSeqAfter <= s.AppliedSeqBefore || s.LagSamples == 0 {
		t.Errorf("replication did not go on during the drill: applied seq %d → %d, %d lag samples", s.AppliedSeqBefore, s.AppliedSeqAfter, s.LagSamples)
	}
	// The lag bound is loose (a loaded test machine); the figure is logged.
	if s.MaxLagSeconds > 5 {
		t.Errorf("replication lag reached %.3fs during the drill", s.MaxLagSeconds)
	}
	t.Logf("RPO %.6fs RTO %.6fs; max lag during the drill %.6fs over %d samples; applied seq %d → %d",
		*s.RPOSeconds, *s.RTOSeconds, s.MaxLagSeconds, s.LagSamples, s.AppliedSeqBefore, s.AppliedSeqAfter)
	if page, err := os.ReadFile(html); err != nil || !bytes.Contains(page, []byte("<svg")) || !bytes.Contains(page, []byte(s.DrillID)) ||
		bytes.Contains(page, []byte("<script src")) || bytes.Contains(page, []byte("<link")) {
		t.Errorf("HTML report (%v): %.300s", err, page)
	}

	// The kept clone takes NFS writes, holds what was replicated before the
	// drill, and is its own file system; the replica still refuses writes.
	cloneAddr := fmt.Sprintf("%s:%d", s.CloneIPAddress, p.b.cfg.NFS.Port)
	if err := nfsWrite(ctx, cloneAddr, "drill-write.txt", "drill\n"); err != nil {
		t.Fatalf("the clone is not writable over NFS: %v", err)
	}
	if err := nfsWrite(ctx, replicaAddr, "must-fail.txt", "x"); err == nil || !strings.Contains(err.Error(), "ROFS") {
		t.Fatalf("a write to the replica during the drill: %v", err)
	}
	cloneFS, err := p.b.control.region.EngineFS(s.CloneFileSystemID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cloneFS.Lookup(ctx, engine.RootCred, engine.RootIno, "stream-10"); err != nil {
		t.Errorf("the clone lacks data replicated before the drill: %v", err)
	}
	if _, err := dstFS.Lookup(ctx, engine.RootCred, engine.RootIno, "drill-write.txt"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("a write to the clone reached the replica: %v", err)
	}
	if status() != types.ReplicationStatusEnabled {
		t.Errorf("replication %s after the drill", status())
	}
	if n := countFS(); n != before+1 {
		t.Errorf("%d file systems with the kept clone, want %d", n, before+1)
	}
	// Delete the kept clone by hand, as the acceptance script does.
	mts, err := p.efsB.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{FileSystemId: aws.String(s.CloneFileSystemID)})
	if err != nil || len(mts.MountTargets) != 1 {
		t.Fatalf("clone mount targets: %v %v", mts, err)
	}
	if _, err := p.efsB.DeleteMountTarget(ctx, &efs.DeleteMountTargetInput{MountTargetId: mts.MountTargets[0].MountTargetId}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the clone's mount target gone", 30*time.Second, func() bool {
		o, err := p.efsB.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(s.CloneFileSystemID)})
		return err == nil && o.FileSystems[0].NumberOfMountTargets == 0
	})
	if _, err := p.efsB.DeleteFileSystem(ctx, &efs.DeleteFileSystemInput{FileSystemId: aws.String(s.CloneFileSystemID)}); err != nil {
		t.Fatal(err)
	}

	// A drill without --keep, started with the source's id in the source's
	// region: it runs in the replica's region and leaves nothing behind.
	out, errOut, err = runCmd(t, "drill", "--json", src)
	t.Logf("drill (from the source's id):\n%s", errOut)
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, out)
	}
	var s2 drill.Summary
	if err := json.Unmarshal([]byte(out), &s2); err != nil || !s2.Succeeded || !s2.CleanedUp || s2.Kept || s2.FileSystemID != dst {
		t.Fatalf("drill without --keep (%v): %s", err, out)
	}
	if !strings.Contains(errOut, "the drill runs there") {
		t.Errorf("the command did not say where the drill runs:\n%s", errOut)
	}
	matchDoc(t, runbook, "TestDrillE2E", canaryFirst(errOut))
	testkit.WaitFor(t, "nothing left after the drill", 30*time.Second, func() bool { return countFS() == before })

	// The replica's own id, from the source's region: it runs in the
	// replica's region too (drill --help: the region is found).
	out, errOut, err = runCmd(t, "drill", "--json", dst)
	t.Logf("drill (from the replica's id, in the source's region):\n%s", errOut)
	var sr drill.Summary
	if err != nil || json.Unmarshal([]byte(out), &sr) != nil || !sr.Succeeded || sr.FileSystemID != dst {
		t.Fatalf("drill of the replica's id from the source's region: %v\n%s\n%s", err, out, errOut)
	}
	testkit.WaitFor(t, "nothing left after the drill", 30*time.Second, func() bool { return countFS() == before })
	if _, err := p.b.control.region.EngineFS(s2.CloneFileSystemID); err == nil {
		t.Error("the clone's engine file system outlived the drill")
	}
	runs, high, perr := pw.halt()
	if perr != nil {
		t.Fatal(perr)
	}
	n, werr := w.written()
	if werr != nil {
		t.Fatalf("the writer: %v", werr)
	}
	t.Logf("the replica was a prefix of the source at each of %d checks (up to stream-%d of %d written)", runs, high, n)
	if runs < 10 || high < 10 {
		t.Errorf("only %d prefix checks (high %d)", runs, high)
	}

	// The history, newest first.
	out, _, err = runCmd(t, "drill", "history", "--region", "ap-northeast-2")
	if err != nil || !strings.Contains(out, s.DrillID) || !strings.Contains(out, s2.DrillID) || !strings.Contains(out, sr.DrillID) ||
		strings.Index(out, sr.DrillID) > strings.Index(out, s2.DrillID) ||
		strings.Index(out, s2.DrillID) > strings.Index(out, s.DrillID) || strings.Count(out, "SUCCEEDED") != 3 {
		t.Fatalf("drill history (%v):\n%s", err, out)
	}
	out, _, err = runCmd(t, "drill", "show", "--region", "ap-northeast-2", s.DrillID)
	if err != nil || !strings.Contains(out, "RPO now") || !strings.Contains(out, "TIMELINE") {
		t.Fatalf("drill show (%v):\n%s", err, out)
	}

	// The same operations with boto3 and regionfs's botocore model: a held
	// drill whose check the script runs and reports.
	py := testkit.NeedPython(t, "boto3")
	models, err := filepath.Abs("../../docs/botocore")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_DATA_PATH", models)
	cmd := exec.CommandContext(ctx, py, "testdata/drill_boto3.py", dst, "ap-northeast-2")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_PROFILE=") { // empty, botocore looks for a profile named ""
			cmd.Env = append(cmd.Env, kv)
		}
	}
	pout, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("boto3 drill: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var b struct {
		Drill struct {
			DrillID    string `json:"DrillId"`
			State      string
			RTOSeconds float64
			Check      struct {
				Passed bool
				By     string
				Output string
			}
			Clone     struct{ Deleted bool }
			CleanedUp bool
		}
		Listed  []string
		Missing string
	}
	if err := json.Unmarshal(pout, &b); err != nil {
		t.Fatalf("boto3 drill output: %v\n%s", err, pout)
	}
	if b.Drill.State != drill.StateSucceeded || b.Drill.RTOSeconds <= 0 || !b.Drill.Check.Passed || b.Drill.Check.By != "client" ||
		!strings.HasPrefix(b.Drill.Check.Output, "checked 127.31.") || !b.Drill.CleanedUp || !b.Drill.Clone.Deleted {
		t.Fatalf("boto3 drill: %s", pout)
	}
	if len(b.Listed) != 4 || b.Listed[0] != b.Drill.DrillID || !strings.Contains(b.Missing, "drill-0000000000000000f") {
		t.Fatalf("boto3 list/describe: %s", pout)
	}

	// The source region goes down: the drill says so, gives the age of the
	// recovery point as the RPO, and still measures RTO on a clone.
	w.halt()
	p.stopA(t)
	out, errOut, err = runCmd(t, "drill", "--region", "ap-northeast-2", "--json", dst)
	t.Logf("drill with the source region down:\n%s", errOut)
	if err != nil {
		t.Fatalf("drill with the source down: %v\n%s", err, out)
	}
	var s3 drill.Summary
	if err := json.Unmarshal([]byte(out), &s3); err != nil {
		t.Fatal(err)
	}
	if s3.SourceReachable || !strings.Contains(s3.SourceMessage, "ap-northeast-1 does not answer") || s3.RPOMethod != drill.RPORecoveryPointAge ||
		s3.RTOSeconds == nil || !s3.Succeeded || !s3.CleanedUp {
		t.Fatalf("drill with the source down: %s", out)
	}
	matchDoc(t, runbook, "TestDrillE2E/source-down", errOut)
	testkit.WaitFor(t, "nothing left after the drill", 30*time.Second, func() bool { return countFS() == before })
}

// canaryFirst puts a drill timeline's canary lines (committed, then
// replicated) right after its start line, where docs/runbook.md shows
// them: the canary and the clone are made at the same time, so the clone's
// lines may come before, between or after them.
func canaryFirst(out string) string {
	lines := strings.Split(out, "\n")
	start := -1
	var canary, rest []string
	for _, l := range lines {
		switch f := strings.Fields(l); {
		case len(f) > 1 && (f[1] == "canary-committed" || f[1] == "canary-replicated"):
			canary = append(canary, l)
		default:
			if len(f) > 1 && f[1] == "start" && start < 0 {
				start = len(rest)
			}
			rest = append(rest, l)
		}
	}
	if start < 0 || len(canary) == 0 {
		return out
	}
	out2 := append(append(append([]string{}, rest[:start+1]...), canary...), rest[start+1:]...)
	return strings.Join(out2, "\n")
}

func TestCanaryFirst(t *testing.T) {
	want := "x start a\n y canary-committed b\n y canary-replicated c\n z clone-created d\n z mount-target e"
	for _, in := range []string{
		want,
		"x start a\n z clone-created d\n y canary-committed b\n y canary-replicated c\n z mount-target e",
		"x start a\n y canary-committed b\n z clone-created d\n y canary-replicated c\n z mount-target e",
		"x start a\n z clone-created d\n z mount-target e\n y canary-committed b\n y canary-replicated c",
	} {
		if got := canaryFirst(in); got != want {
			t.Errorf("canaryFirst(%q) = %q", in, got)
		}
	}
}
