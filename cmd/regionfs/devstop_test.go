package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/efs"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/testkit"
	"github.com/regionfs/regionfs/test/e2e/e2ekit"
)

// TestDevStopsOnScaleOutBackends: `regionfs dev` with its metadata in
// PostgreSQL and its blocks in S3, a file system written through a
// mount target, ends promptly on SIGTERM with exit code 0. With the
// backends gone first (the order of the scale-out acceptance script's
// cleanup, REGIONFS_TEST_OUTAGES=1 only: it stops the shared servers), it
// used to wait for them for minutes (every operation retried for its
// RetryFor, one after the other) until killed; now it gives up on them
// after backendGrace and still ends promptly, with exit status 1 (under
// systemd a stop that leaves the unit "failed", not restarted): its clean
// marker could not be written (the next start sweeps for orphans) nor its
// lease released, which the log says once per region. The bounds are
// generous: hang detectors, not timings.
func TestDevStopsOnScaleOutBackends(t *testing.T) {
	m, b := os.Getenv("REGIONFS_TEST_POSTGRES_URL"), os.Getenv("REGIONFS_TEST_S3_URL")
	if m == "" || b == "" {
		if os.Getenv("REGIONFS_REQUIRE_TOOLS") == "1" {
			t.Fatal("REGIONFS_TEST_POSTGRES_URL and REGIONFS_TEST_S3_URL are required (scripts/backends.sh up DIR)")
		}
		t.Skip("no PostgreSQL/S3: set REGIONFS_TEST_POSTGRES_URL and REGIONFS_TEST_S3_URL (scripts/backends.sh up DIR)")
	}
	bin := buildBinary(t)
	// A dev of its own per run: a fresh database and bucket per region,
	// and loopback addresses no other test uses.
	run := func(t *testing.T, base int, before func()) (took time.Duration, log string, err error) {
		r := make([]byte, 5)
		rand.Read(r)
		name := "stop" + hex.EncodeToString(r) + "-{region}"
		dir := t.TempDir()
		p := startDevOn(t, bin, dir, devNet{base: base},
			"--metadata-url", strings.ReplaceAll(m, "{region}", name), "--blocks-url", strings.ReplaceAll(b, "{region}", name))
		writeThroughDev(t, dir)
		before()
		t0 := time.Now()
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			p.done <- err
			return time.Since(t0), p.logText(), err
		case <-time.After(30 * time.Second):
			p.cmd.Process.Signal(syscall.SIGQUIT) // its goroutines, in the log
			time.Sleep(time.Second)
			t.Fatalf("regionfs dev still running 30 s after SIGTERM:\n%s", tail(p.logText(), 120))
		}
		return 0, "", nil
	}
	t.Run("backends up", func(t *testing.T) {
		took, log, err := run(t, 176, func() {})
		if err != nil {
			t.Fatalf("regionfs dev ended with %v %s after SIGTERM, want exit code 0:\n%s", err, took, tail(log, 60))
		}
		t.Logf("ended %s after SIGTERM", took)
	})
	t.Run("backends gone", func(t *testing.T) {
		if os.Getenv("REGIONFS_TEST_OUTAGES") != "1" {
			t.Skip("stops the shared PostgreSQL and S3 servers: set REGIONFS_TEST_OUTAGES=1 (and REGIONFS_TEST_BACKENDS_DIR) to run it")
		}
		dir := os.Getenv("REGIONFS_TEST_BACKENDS_DIR")
		if dir == "" {
			t.Fatal("REGIONFS_TEST_BACKENDS_DIR is required: the test stops the servers of scripts/backends.sh")
		}
		ctl := func(cmd string) {
			t.Helper()
			if out, err := exec.Command(filepath.Join("..", "..", "scripts", "backends.sh"), cmd, dir).CombinedOutput(); err != nil {
				t.Fatalf("backends.sh %s: %v\n%s", cmd, err, out)
			}
		}
		t.Cleanup(func() { ctl("start-pg"); ctl("start-s3") })
		took, log, err := run(t, 179, func() { ctl("stop-pg"); ctl("stop-s3") })
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() <= 0 {
			t.Fatalf("regionfs dev with its backends gone ended with %v after SIGTERM, want an exit code (its clean marker cannot be written):\n%s", err, tail(log, 60))
		}
		// The operator is told, once, which regions and what it means.
		for _, want := range []string{`msg="region did not stop cleanly" region=us-east-1`, "the next start sweeps it for orphaned files and blocks",
			"the region's lease was not released", "regionfs: us-east-1, us-west-2 did not stop cleanly (the log above says why)"} {
			if !strings.Contains(log, want) {
				t.Errorf("the log does not say %q:\n%s", want, tail(log, 60))
			}
		}
		t.Logf("ended %s after SIGTERM with the backends gone: %v", took, err)
	})
}

// writeThroughDev creates a file system in the dev's first region, a
// mount target of it, and writes a 1 MiB file (to the object store)
// through it.
func writeThroughDev(t *testing.T, dir string) {
	t.Helper()
	env := envFile(t, dir)
	cfg := testkit.AWSConfig(env["AWS_ENDPOINT_URL"], "us-east-1", env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ec := ec2.NewFromConfig(cfg)
	sn, err := ec.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	if err != nil || len(sn.Subnets) == 0 {
		t.Fatalf("subnets: %v", err)
	}
	sg, err := ec.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
	if err != nil || len(sg.SecurityGroups) == 0 {
		t.Fatalf("security groups: %v", err)
	}
	c := efs.NewFromConfig(cfg)
	fs, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("stop")})
	if err != nil {
		t.Fatal(err)
	}
	ip := e2ekit.MountTarget(t, c, aws.ToString(fs.FileSystemId), aws.ToString(sn.Subnets[0].SubnetId), aws.ToString(sg.SecurityGroups[0].GroupId))
	d, err := e2ekit.Dial(ctx, ip)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Conn.Close()
	cr, err := d.C.Create(ctx, d.Root, "f", proto.Unchecked, proto.Sattr{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.C.Write(ctx, cr.FH, 0, bytes.Repeat([]byte("s"), 1<<20), proto.FileSync); err != nil {
		t.Fatal(err)
	}
}
