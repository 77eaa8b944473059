// Package e2ekit holds what the end-to-end tests under test/e2e share
// beyond internal/testkit: an NFS connection to a mount target's root,
// reading and comparing files through it, and creating a mount target
// through the EFS API.
package e2ekit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/testkit"
)

// NFSPort is the NFS (and MOUNT) port of the end-to-end tests' mount
// targets.
const NFSPort = "12049"

// Dir is an NFS connection to the root of a mount target's export.
type Dir struct {
	Conn *client.Conn
	C    *client.Client
	Root proto.FH
}

// Dial connects to the mount target at ip and mounts "/" as uid 0.
func Dial(ctx context.Context, ip string) (*Dir, error) {
	conn, err := client.Dial(ctx, net.JoinHostPort(ip, NFSPort))
	if err != nil {
		return nil, err
	}
	c := conn.WithAuth(client.Unix("e2e", 0, 0))
	root, _, err := c.Mount(ctx, "/")
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &Dir{Conn: conn, C: c, Root: root}, nil
}

// Redial dials ip until it answers or ctx ends, pausing between tries.
func Redial(ctx context.Context, ip string, pause time.Duration) (*Dir, error) {
	for {
		d, err := Dial(ctx, ip)
		if err == nil || ctx.Err() != nil {
			return d, err
		}
		time.Sleep(pause)
	}
}

// ReadAll reads the file name of the root directory, failing t on error.
func (d *Dir) ReadAll(t testing.TB, ctx context.Context, name string) []byte {
	t.Helper()
	l, err := d.C.Lookup(ctx, d.Root, name)
	if err != nil {
		t.Fatalf("lookup %s: %v", name, err)
	}
	var out []byte
	for {
		r, err := d.C.Read(ctx, l.FH, uint64(len(out)), 1<<20)
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		out = append(out, r.Data...)
		if r.EOF || len(r.Data) == 0 {
			return out
		}
	}
}

// CompareContents reads every file of the source's root (mount target
// sip) and of the replica's (dip) and fails t unless they are the same;
// it returns the files' SHA-256 by name.
func CompareContents(t testing.TB, ctx context.Context, sip, dip string) map[string][32]byte {
	t.Helper()
	s, err := Dial(ctx, sip)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Conn.Close()
	d, err := Dial(ctx, dip)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Conn.Close()
	ents, err := s.C.ReadDirAll(ctx, s.Root)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string][32]byte{}
	for _, e := range ents {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		a, b := s.ReadAll(t, ctx, e.Name), d.ReadAll(t, ctx, e.Name)
		if !bytes.Equal(a, b) {
			t.Fatalf("%s differs on the replica (%d vs %d bytes)", e.Name, len(a), len(b))
		}
		names[e.Name] = sha256.Sum256(a)
	}
	return names
}

// MountTarget waits until fs is available, creates a mount target of it in
// subnet with security group sg, waits until that is available and
// returns its address.
func MountTarget(t testing.TB, c *efs.Client, fs, subnet, sg string) string {
	t.Helper()
	ctx := context.Background()
	testkit.Eventually(t, 30*time.Second, func() error {
		d, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(fs)})
		if err == nil && len(d.FileSystems) == 1 && d.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable {
			return nil
		}
		return fmt.Errorf("%s not available: %v", fs, err)
	})
	mt, err := c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: aws.String(fs),
		SubnetId: aws.String(subnet), SecurityGroups: []string{sg}})
	if err != nil {
		t.Fatal(err)
	}
	var ip string
	testkit.Eventually(t, 30*time.Second, func() error {
		d, err := c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{MountTargetId: mt.MountTargetId})
		if err == nil && len(d.MountTargets) == 1 && d.MountTargets[0].LifeCycleState == types.LifeCycleStateAvailable {
			ip = aws.ToString(d.MountTargets[0].IpAddress)
			return nil
		}
		return fmt.Errorf("mount target not available: %v", err)
	})
	return ip
}
