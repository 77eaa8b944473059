package control_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/controltest"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kms"
	"github.com/regionfs/regionfs/internal/engine/kms/kmstest"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/testkit"
)

// Test fixtures: one VPC with subnets in two zones (and a tiny one), a
// second VPC, security groups.
const (
	account = "123456789012"
	subA    = "subnet-0aaaaaaaaaaaaaaa1" // us-east-1a 10.0.1.0/24
	subB    = "subnet-0aaaaaaaaaaaaaaa2" // us-east-1b 10.0.2.0/24
	subTiny = "subnet-0aaaaaaaaaaaaaaa3" // us-east-1a 10.0.3.0/29: 3 usable addresses
	subVPC2 = "subnet-0bbbbbbbbbbbbbbb1" // us-east-1c, vpc-2
	sgDef   = "sg-0000000000000000d"
	sgB     = "sg-0000000000000000b"
	sgVPC2  = "sg-0000000000000000e"
	nfsPort = 2049
)

func regionInfo() control.RegionInfo {
	r := control.RegionInfo{
		Name: "us-east-1", AccountID: account, VPCID: "vpc-1",
		Subnets: []control.Subnet{
			{ID: subA, AvailabilityZone: "us-east-1a", AvailabilityZoneID: "use1-az1", CIDR: netip.MustParsePrefix("10.0.1.0/24")},
			{ID: subB, AvailabilityZone: "us-east-1b", AvailabilityZoneID: "use1-az2", CIDR: netip.MustParsePrefix("10.0.2.0/24")},
			{ID: subTiny, AvailabilityZone: "us-east-1a", AvailabilityZoneID: "use1-az1", CIDR: netip.MustParsePrefix("10.0.3.0/29")},
			{ID: subVPC2, AvailabilityZone: "us-east-1c", AvailabilityZoneID: "use1-az4", VPCID: "vpc-2", CIDR: netip.MustParsePrefix("10.1.1.0/24")},
		},
		SecurityGroups: []control.SecurityGroup{
			{ID: sgDef, Name: "default", Ingress: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}},
			{ID: sgB, Name: "b", Ingress: []netip.Prefix{netip.MustParsePrefix("192.168.0.0/24"), netip.MustParsePrefix("10.0.0.0/16")}},
			{ID: sgVPC2, Name: "default", VPCID: "vpc-2"},
		},
	}
	for i := 1; i <= 5; i++ {
		r.SecurityGroups = append(r.SecurityGroups, control.SecurityGroup{ID: fmt.Sprintf("sg-00000000000000%02x", i), Name: fmt.Sprintf("g%d", i)})
	}
	return r
}

// env is a region over in-memory stores that can be reopened and crashed.
type env struct {
	t     testing.TB
	kv    *kv.Memory
	disk  *disk.Mem
	ring  *kms.Keyring
	mts   *controltest.MountTargets
	clock *testkit.Clock
	opts  control.Options
	e     *engine.Engine
	r     *control.Region
	// space, when set, is the engine's free-space guard.
	space engine.SpaceGuard
}

func newEnv(t testing.TB, mods ...func(*control.Options)) *env {
	t.Helper()
	ring := kmstest.Ring(t, kmstest.Key(t, "1234abcd-12ab-34cd-56ef-1234567890ab", control.DefaultKMSKey),
		kmstest.Key(t, "mrk-0123456789abcdef0123456789abcdef", "alias/other"))
	v := &env{t: t, kv: kv.NewMemory(), disk: disk.NewMem(), ring: ring, mts: controltest.NewMountTargets(),
		clock: testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}
	v.opts = control.Options{Region: regionInfo(), Keyring: ring, NFSPort: nfsPort, Logger: slog.New(slog.DiscardHandler)}
	for _, m := range mods {
		m(&v.opts)
	}
	v.open()
	t.Cleanup(v.close)
	return v
}

func (v *env) open() {
	v.t.Helper()
	ctx := context.Background()
	e, err := engine.Open(ctx, engine.Options{KV: v.kv, Disk: v.disk, Keyring: v.ring, Logger: slog.New(slog.DiscardHandler),
		GCInterval: time.Hour, MergeDelay: time.Hour, OnFatal: func(err error) { v.t.Errorf("fatal storage error: %v", err) },
		Space: v.space})
	if err != nil {
		v.t.Fatalf("open engine: %v", err)
	}
	o := v.opts
	o.KV, o.Engine, o.MountTargets = v.kv, e, v.mts
	if o.Clock == nil {
		o.Clock = v.clock.Now
	}
	r, err := control.Open(ctx, o)
	if err != nil {
		e.Close()
		v.t.Fatalf("open region: %v", err)
	}
	v.e, v.r = e, r
}

func (v *env) close() {
	if v.r != nil {
		v.r.Close()
		v.r = nil
	}
	if v.e != nil {
		v.e.Close()
		v.e = nil
	}
}

// reopen closes the region and its engine and opens them again (mount
// targets forget what they served, as after a process restart).
func (v *env) reopen(mods ...func(*control.Options)) {
	v.t.Helper()
	v.close()
	for _, m := range mods {
		m(&v.opts)
	}
	v.mts = controltest.NewMountTargets()
	v.open()
}

// crash opens the region over what a crash now would leave.
func (v *env) crash() {
	v.t.Helper()
	k, d := v.kv.CrashClone(), v.disk.CrashClone()
	v.close()
	v.kv, v.disk = k, d
	v.mts = controltest.NewMountTargets()
	v.open()
}

var ctx = context.Background()

func (v *env) createFS(token string, mods ...func(*control.CreateFileSystemInput)) control.FileSystem {
	v.t.Helper()
	in := control.CreateFileSystemInput{CreationToken: token}
	for _, m := range mods {
		m(&in)
	}
	fs, err := v.r.CreateFileSystem(ctx, in)
	if err != nil {
		v.t.Fatalf("create file system %q: %v", token, err)
	}
	return fs
}

// availableFS creates a file system and waits until it is available.
func (v *env) availableFS(token string, mods ...func(*control.CreateFileSystemInput)) control.FileSystem {
	v.t.Helper()
	fs := v.createFS(token, mods...)
	return v.waitFS(fs.ID, control.StateAvailable)
}

// waitFS waits (10 s at most) for a file system to reach state.
func (v *env) waitFS(id string, state control.LifeCycleState) control.FileSystem {
	v.t.Helper()
	var last control.FileSystem
	if !testkit.Until(10*time.Second, func() bool {
		fs, err := v.r.DescribeFileSystem(ctx, id)
		last = fs
		return err == nil && fs.LifeCycleState == state
	}) {
		v.t.Fatalf("file system %s never reached %s (last: %s)", id, state, last.LifeCycleState)
	}
	return last
}

func (v *env) waitFSGone(id string) {
	v.t.Helper()
	if !testkit.Until(10*time.Second, func() bool {
		_, err := v.r.DescribeFileSystem(ctx, id)
		return errors.Is(err, control.ErrFileSystemNotFound)
	}) {
		v.t.Fatalf("file system %s was never deleted", id)
	}
}

func (v *env) mt(id string) (control.MountTarget, error) {
	mts, _, err := v.r.DescribeMountTargets(ctx, control.MountTargetQuery{MountTargetID: id})
	if err != nil {
		return control.MountTarget{}, err
	}
	return mts[0], nil
}

func (v *env) waitMT(id string, state control.LifeCycleState) control.MountTarget {
	v.t.Helper()
	var last control.MountTarget
	if !testkit.Until(10*time.Second, func() bool {
		m, err := v.mt(id)
		last = m
		return err == nil && m.LifeCycleState == state
	}) {
		v.t.Fatalf("mount target %s never reached %s (last: %s)", id, state, last.LifeCycleState)
	}
	return last
}

func (v *env) waitMTGone(id string) {
	v.t.Helper()
	if !testkit.Until(10*time.Second, func() bool {
		_, err := v.mt(id)
		return errors.Is(err, control.ErrMountTargetNotFound)
	}) {
		v.t.Fatalf("mount target %s was never deleted", id)
	}
}

// wantErr checks that err wraps kind (nil: no error) and, for *Error, has a
// message.
func wantErr(t *testing.T, err, kind error) {
	t.Helper()
	switch {
	case kind == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case kind == nil:
		return
	case !errors.Is(err, kind):
		t.Fatalf("got error %v, want %v", err, kind)
	}
	var e *control.Error
	if !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("error %v is not an *Error with a message", err)
	}
}

func ptr[T any](v T) *T { return &v }
