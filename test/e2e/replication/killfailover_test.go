package replicatione2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"

	"github.com/regionfs/regionfs/internal/testkit"
)

// regionfsCLI runs the regionfs binary's operator commands against r's
// API (as the aws CLI is run: awsCLI) and returns its trimmed output.
func (r *region) regionfsCLI(bin string, args ...string) (string, error) {
	r.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey,
		"AWS_REGION="+r.name, "AWS_ENDPOINT_URL_EFS=http://"+r.net+".0.1:7070")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestFailoverKilled: with the real binary, the aws CLI and libnfs, a
// failover (DeleteReplicationConfiguration in the destination region,
// the source region down after writes that never reached the replica)
// whose destination process is killed with SIGKILL at a random moment of
// it ends, once the destination has restarted and the delete has been
// repeated (answered, or ReplicationNotFound when the killed one had
// completed), with exactly one writable region: the destination writable,
// protection ENABLED, no configuration; the old source, back, fenced
// (protection DISABLED, writes refused), and its loss report
// (`regionfs failover --report`) lists the writes the replica never had
// and none of those it had. The moment is drawn from a seed in the log.
func TestFailoverKilled(t *testing.T) {
	tools := needCLITools(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	a, b, px := pairWithProxy(t, tools.bin, "127.81", "127.82", "a")
	dir := t.TempDir()
	put := func(ip, name string) error {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("content of "+name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(tools.nfsCp, p, nfsURL(ip, "/"+name)).CombinedOutput(); err != nil {
			return fmt.Errorf("nfs-cp %s: %v %s", name, err, out)
		}
		return nil
	}

	src, sip := availableFS(t, a, "killed-failover")
	for i := range 3 {
		if err := put(sip, fmt.Sprint("kept", i)); err != nil {
			t.Fatal(err)
		}
	}
	var rc struct {
		Destinations []struct{ FileSystemId string }
	}
	if err := json.Unmarshal([]byte(a.mustCLI("efs", "create-replication-configuration", "--source-file-system-id", src,
		"--destinations", `[{"Region":"us-west-2"}]`, "--output", "json")), &rc); err != nil {
		t.Fatal(err)
	}
	dst := rc.Destinations[0].FileSystemId
	testkit.WaitFor(t, "the replication ENABLED", 60*time.Second, func() bool { return status(a, src) == "ENABLED" })
	dip := mountTarget(t, b, dst)
	testkit.WaitFor(t, "the replica to hold the source's files", 30*time.Second, func() bool {
		got, err := exec.Command(tools.nfsCat, nfsURL(dip, "/kept2")).Output()
		return err == nil && bytes.Equal(got, []byte("content of kept2\n"))
	})

	// The link goes, the source takes writes the replica never gets,
	// then its region dies.
	px.Partition()
	for i := range 3 {
		if err := put(sip, fmt.Sprint("lost", i)); err != nil {
			t.Fatal(err)
		}
	}
	a.Kill9()

	// The failover, its destination killed somewhere in it: before the
	// request arrives, during the promotion or its record, or after the
	// answer (the delete takes a few milliseconds here once it arrives;
	// the Go SDK sends at once).
	type answer struct {
		out *efs.DeleteReplicationConfigurationOutput
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		out, err := b.efs.DeleteReplicationConfiguration(context.Background(),
			&efs.DeleteReplicationConfigurationInput{SourceFileSystemId: aws.String(src)},
			func(o *efs.Options) { o.RetryMaxAttempts = 1 })
		answered <- answer{out, err}
	}()
	wait := time.Duration(rng.IntN(15000)) * time.Microsecond
	time.Sleep(wait)
	b.Kill9()
	first := <-answered
	t.Logf("destination killed %s after the delete was sent; the delete: %v", wait, first.err)
	b.start()
	if out, err := b.awsCLI("efs", "delete-replication-configuration", "--source-file-system-id", src); err != nil && !strings.Contains(out, "ReplicationNotFound") {
		t.Fatalf("the repeated delete: %v %s\n%s", err, out, b.Tail(30))
	} else {
		t.Logf("the repeated delete: %v %s", err, out)
		// AWS's answer for a configuration deleted already, which
		// names the failover that deleted it (the caller's may have
		// had no answer).
		if err != nil && !strings.Contains(out, "by a failover that promoted "+dst) {
			t.Fatalf("the repeated delete's ReplicationNotFound does not name the failover: %s", out)
		}
	}
	// regionfs's failover repeated answers with the failover's recovery
	// point, whichever way the killed one ended.
	if out, err := b.regionfsCLI(tools.bin, "failover", dst); err != nil || !strings.Contains(out, "recovery point: seq ") {
		t.Fatalf("the repeated regionfs failover: %v %s\n%s", err, out, b.Tail(30))
	} else {
		t.Logf("the repeated regionfs failover:\n%s", out)
	}
	if out, err := b.awsCLI("efs", "describe-replication-configurations", "--file-system-id", dst); err == nil || !strings.Contains(out, "ReplicationNotFound") {
		t.Fatalf("the destination region still describes a replication: %v %s", err, out)
	}
	if p := protection(b, dst); p != "ENABLED" {
		t.Fatalf("the promoted destination's protection is %q", p)
	}
	if err := put(dip, "after-failover"); err != nil {
		t.Fatalf("the promoted destination refused a write: %v", err)
	}

	// The old source is back: fenced, and it reports what it lost.
	a.start()
	px.Heal()
	testkit.WaitFor(t, "the old source fenced", 60*time.Second, func() bool { return protection(a, src) == "DISABLED" })
	if err := put(sip, "written-after-fencing"); err == nil {
		t.Fatal("the fenced old source accepted a write: two writable regions")
	}
	report, err := a.regionfsCLI(tools.bin, "failover", "--report", src)
	if err != nil {
		t.Fatalf("failover --report: %v %s", err, report)
	}
	t.Logf("loss report:\n%s", report)
	for i := range 3 {
		if !strings.Contains(report, fmt.Sprint("/lost", i)) {
			t.Errorf("the loss report does not list /lost%d", i)
		}
		if strings.Contains(report, fmt.Sprint("/kept", i)) {
			t.Errorf("the loss report lists /kept%d, which the replica had", i)
		}
	}
}
