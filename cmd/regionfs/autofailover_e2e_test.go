package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/regionfs/regionfs/internal/config"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestAutoFailoverCommand: with hard fencing configured (replicate.lease),
// `regionfs replication policy --auto-failover-after` in the destination
// region opts in, status shows it, and when the source region stops the
// replica promotes itself: writable, protection ENABLED, the
// configuration gone. What the commands print has the shape
// docs/runbook.md shows.
func TestAutoFailoverCommand(t *testing.T) {
	ctx := context.Background()
	p := startOpsPairOn(t, "127.36.0.1", "127.37.0.1", func(a, b *config.Config) {
		a.Replicate.Lease, b.Replicate.Lease = time.Second, time.Second
	})
	_, dst := p.replicated(t, "auto", "before\n")
	p.waitEnabled(t, dst)
	out, err := runRoot(t, "replication", "policy", "--region", "ap-northeast-2", "--auto-failover-after", "2s", dst)
	t.Logf("replication policy:\n%s", out)
	if err != nil || !strings.Contains(out, "promotes itself once the source region has been out of reach for 2s") {
		t.Fatalf("replication policy: %v\n%s", err, out)
	}
	matchDoc(t, runbook, "TestAutoFailoverCommand/policy", out)
	out, err = runRoot(t, "status", "--region", "ap-northeast-2")
	if err != nil || !strings.Contains(out, "automatic failover: after 2s without the source region") {
		t.Fatalf("status lacks the automatic failover: %v\n%s", err, out)
	}
	p.stopA(t)
	down := time.Now()
	testkit.WaitFor(t, "the replica to promote itself", 60*time.Second, func() bool {
		fs, err := p.b.control.region.EngineFS(dst)
		if err != nil {
			return false
		}
		_, err = fs.Mkdir(ctx, engine.RootCred, engine.RootIno, "probe"+time.Now().Format("150405.000000"), engine.SetAttr{})
		return err == nil
	})
	t.Logf("promoted %s after the source region stopped", time.Since(down).Round(time.Millisecond))
	if el := time.Since(down); el < 2*time.Second {
		t.Fatalf("promoted %s after the outage, before the policy's 2s", el)
	}
	// The replica is writable a moment before the failover is done (its
	// protection set, its configuration replaced by a tombstone, the
	// failover recorded): wait for the record.
	testkit.WaitFor(t, "the automatic failover to be recorded", 30*time.Second, func() bool {
		return len(p.b.repl.mgr.AutoFailovers()) > 0
	})
	fss, err := p.efsB.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(dst)})
	if err != nil || fss.FileSystems[0].FileSystemProtection.ReplicationOverwriteProtection != types.ReplicationOverwriteProtectionEnabled {
		t.Fatalf("protection after the automatic failover: %+v %v", fss, err)
	}
	if _, err := p.efsB.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(dst)}); err == nil {
		t.Fatal("the configuration survived the automatic failover")
	}
	if got := p.b.repl.mgr.AutoFailovers(); len(got) != 1 || !strings.Contains(got[0].Reason, "automatic failover: no contact with the source region ap-northeast-1") {
		t.Fatalf("automatic failovers %+v", got)
	}
}
