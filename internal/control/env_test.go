package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kms"
	"github.com/regionfs/regionfs/internal/engine/kv"
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

func regionInfo() RegionInfo {
	r := RegionInfo{
		Name: "us-east-1", AccountID: account, VPCID: "vpc-1",
		Subnets: []Subnet{
			{ID: subA, AvailabilityZone: "us-east-1a", AvailabilityZoneID: "use1-az1", CIDR: netip.MustParsePrefix("10.0.1.0/24")},
			{ID: subB, AvailabilityZone: "us-east-1b", AvailabilityZoneID: "use1-az2", CIDR: netip.MustParsePrefix("10.0.2.0/24")},
			{ID: subTiny, AvailabilityZone: "us-east-1a", AvailabilityZoneID: "use1-az1", CIDR: netip.MustParsePrefix("10.0.3.0/29")},
			{ID: subVPC2, AvailabilityZone: "us-east-1c", AvailabilityZoneID: "use1-az4", VPCID: "vpc-2", CIDR: netip.MustParsePrefix("10.1.1.0/24")},
		},
		SecurityGroups: []SecurityGroup{
			{ID: sgDef, Name: "default", Ingress: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}},
			{ID: sgB, Name: "b", Ingress: []netip.Prefix{netip.MustParsePrefix("192.168.0.0/24"), netip.MustParsePrefix("10.0.0.0/16")}},
			{ID: sgVPC2, Name: "default", VPCID: "vpc-2"},
		},
	}
	for i := 1; i <= 5; i++ {
		r.SecurityGroups = append(r.SecurityGroups, SecurityGroup{ID: fmt.Sprintf("sg-00000000000000%02x", i), Name: fmt.Sprintf("g%d", i)})
	}
	return r
}

// recorder is a MountTargetServer that remembers what it serves.
type recorder struct {
	mu       sync.Mutex
	serving  map[string]MountTargetSpec
	calls    []string
	failNext error
	stopGate chan struct{} // when set, Stop waits for it to close
}

func newRecorder() *recorder { return &recorder{serving: map[string]MountTargetSpec{}} }

func (m *recorder) Start(_ context.Context, s MountTargetSpec) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failNext; err != nil {
		m.failNext = nil
		return err
	}
	m.calls = append(m.calls, "start "+s.ID)
	m.serving[s.ID] = s
	return nil
}

func (m *recorder) Update(_ context.Context, s MountTargetSpec) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.serving[s.ID]; !ok {
		return fmt.Errorf("update of %s, which is not served", s.ID)
	}
	m.calls = append(m.calls, "update "+s.ID)
	m.serving[s.ID] = s
	return nil
}

func (m *recorder) Stop(_ context.Context, id string) error {
	m.mu.Lock()
	gate := m.stopGate
	m.mu.Unlock()
	if gate != nil {
		<-gate
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "stop "+id)
	delete(m.serving, id)
	return nil
}

func (m *recorder) spec(id string) (MountTargetSpec, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.serving[id]
	return s, ok
}

func (m *recorder) fail(err error) {
	m.mu.Lock()
	m.failNext = err
	m.mu.Unlock()
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a region over in-memory stores that can be reopened and crashed.
type env struct {
	t     *testing.T
	kv    *kv.Memory
	disk  *disk.Mem
	ring  *kms.Keyring
	mts   *recorder
	clock *clock
	opts  Options
	e     *engine.Engine
	r     *Region
}

func newEnv(t *testing.T, mods ...func(*Options)) *env {
	t.Helper()
	k1, err := kms.Generate("1234abcd-12ab-34cd-56ef-1234567890ab", DefaultKMSKey)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := kms.Generate("mrk-0123456789abcdef0123456789abcdef", "alias/other")
	if err != nil {
		t.Fatal(err)
	}
	ring, err := kms.New(k1, k2)
	if err != nil {
		t.Fatal(err)
	}
	v := &env{t: t, kv: kv.NewMemory(), disk: disk.NewMem(), ring: ring, mts: newRecorder(),
		clock: &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	v.opts = Options{Region: regionInfo(), Keyring: ring, NFSPort: nfsPort, Logger: slog.New(slog.DiscardHandler)}
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
		GCInterval: time.Hour, MergeDelay: time.Hour, OnFatal: func(err error) { v.t.Errorf("fatal storage error: %v", err) }})
	if err != nil {
		v.t.Fatalf("open engine: %v", err)
	}
	o := v.opts
	o.KV, o.Engine, o.MountTargets = v.kv, e, v.mts
	if o.Clock == nil {
		o.Clock = v.clock.now
	}
	r, err := Open(ctx, o)
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
func (v *env) reopen(mods ...func(*Options)) {
	v.t.Helper()
	v.close()
	for _, m := range mods {
		m(&v.opts)
	}
	v.mts = newRecorder()
	v.open()
}

// crash opens the region over what a crash now would leave.
func (v *env) crash() {
	v.t.Helper()
	k, d := v.kv.CrashClone(), v.disk.CrashClone()
	v.close()
	v.kv, v.disk = k, d
	v.mts = newRecorder()
	v.open()
}

var ctx = context.Background()

func (v *env) createFS(token string, mods ...func(*CreateFileSystemInput)) FileSystem {
	v.t.Helper()
	in := CreateFileSystemInput{CreationToken: token}
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
func (v *env) availableFS(token string, mods ...func(*CreateFileSystemInput)) FileSystem {
	v.t.Helper()
	fs := v.createFS(token, mods...)
	return v.waitFS(fs.ID, StateAvailable)
}

// waitFS waits (10 s at most) for a file system to reach state.
func (v *env) waitFS(id string, state LifeCycleState) FileSystem {
	v.t.Helper()
	var last FileSystem
	err := poll(func() bool {
		fs, err := v.r.DescribeFileSystem(ctx, id)
		last = fs
		return err == nil && fs.LifeCycleState == state
	})
	if err != nil {
		v.t.Fatalf("file system %s never reached %s (last: %s)", id, state, last.LifeCycleState)
	}
	return last
}

func (v *env) waitFSGone(id string) {
	v.t.Helper()
	if err := poll(func() bool {
		_, err := v.r.DescribeFileSystem(ctx, id)
		return errors.Is(err, ErrFileSystemNotFound)
	}); err != nil {
		v.t.Fatalf("file system %s was never deleted", id)
	}
}

func (v *env) mt(id string) (MountTarget, error) {
	mts, _, err := v.r.DescribeMountTargets(ctx, MountTargetQuery{MountTargetID: id})
	if err != nil {
		return MountTarget{}, err
	}
	return mts[0], nil
}

func (v *env) waitMT(id string, state LifeCycleState) MountTarget {
	v.t.Helper()
	var last MountTarget
	if err := poll(func() bool {
		m, err := v.mt(id)
		last = m
		return err == nil && m.LifeCycleState == state
	}); err != nil {
		v.t.Fatalf("mount target %s never reached %s (last: %s)", id, state, last.LifeCycleState)
	}
	return last
}

func (v *env) waitMTGone(id string) {
	v.t.Helper()
	if err := poll(func() bool {
		_, err := v.mt(id)
		return errors.Is(err, ErrMountTargetNotFound)
	}); err != nil {
		v.t.Fatalf("mount target %s was never deleted", id)
	}
}

func poll(f func() bool) error {
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
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
	var e *Error
	if !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("error %v is not an *Error with a message", err)
	}
}

func ptr[T any](v T) *T { return &v }
