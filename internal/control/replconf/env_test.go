package replconf_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/controltest"
	"github.com/regionfs/regionfs/internal/control/replconf"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/enginetest"
	"github.com/regionfs/regionfs/internal/engine/kms"
	"github.com/regionfs/regionfs/internal/engine/kms/kmstest"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/replication"
	"github.com/regionfs/regionfs/internal/serve"
	"github.com/regionfs/regionfs/internal/testkit"
)

func TestMain(m *testing.M) {
	testkit.Main(m, testkit.OnlyStacks("github.com/regionfs/regionfs/internal/"))
}

var testSecret = []byte("replconf test secret 0123456789")

// region is one region of a test: its store and disk (kept across a
// restart or crash), engine, control plane, replication node on a
// loopback address and configurations.
type region struct {
	t     *testing.T
	name  string
	kv    *kv.Memory
	disk  *disk.Mem
	ring  *kms.Keyring
	addr  string
	peers map[string]replication.Peer

	e   *engine.Engine
	r   *control.Region
	mts *controltest.MountTargets
	n   *replication.Node
	run *serve.Running
	m   *replconf.Manager

	// nodeMods and mgrMods adjust the node's and the manager's options.
	nodeMods []func(*replication.Options)
	mgrMods  []func(*replconf.Options)
	// onMountTargetUpdate, when set, is given every mount target update
	// (controltest.MountTargets.OnUpdate), from every start.
	onMountTargetUpdate func(control.MountTargetSpec)
	// wrap, when set, wraps the node's handler (a test watching the calls
	// the region answers); unloaded keeps the node from being told its
	// configurations are loaded (a region still starting).
	wrap     func(http.Handler) http.Handler
	unloaded bool
}

// newPair starts two regions that replicate with each other (and each
// with itself).
func newPair(t *testing.T) (a, b *region) {
	t.Helper()
	a, b = newRegion(t, "us-east-1"), newRegion(t, "us-west-2")
	peers := map[string]replication.Peer{
		a.name: {URL: "http://" + a.addr, Secret: testSecret},
		b.name: {URL: "http://" + b.addr, Secret: testSecret},
	}
	a.peers, b.peers = peers, peers
	a.start()
	b.start()
	return a, b
}

func newRegion(t *testing.T, name string) *region {
	t.Helper()
	ring := kmstest.Keyring(t, "key-"+name, control.DefaultKMSKey)
	// The region keeps its address across restarts (its peer's
	// configuration names it), so it is a port no other listener or
	// outgoing connection is given while the region is down.
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testkit.FreePort(t, "127.0.0.1")))
	r := &region{t: t, name: name, kv: kv.NewMemory(), disk: disk.NewMem(), ring: ring, addr: addr}
	t.Cleanup(r.stop)
	return r
}

func (r *region) info() control.RegionInfo {
	return control.RegionInfo{Name: r.name, AccountID: "123456789012", VPCID: "vpc-1",
		Subnets: []control.Subnet{
			{ID: "subnet-0aaaaaaaaaaaaaaa1", AvailabilityZone: r.name + "a", AvailabilityZoneID: "az1", CIDR: netip.MustParsePrefix("10.0.1.0/24")},
			{ID: "subnet-0aaaaaaaaaaaaaaa2", AvailabilityZone: r.name + "b", AvailabilityZoneID: "az2", CIDR: netip.MustParsePrefix("10.0.2.0/24")},
		},
		SecurityGroups: []control.SecurityGroup{{ID: "sg-0aaaaaaaaaaaaaaa1", Name: "default", Ingress: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}}}}
}

// start opens the region over its store and disk: engine, control plane,
// node (serving on its address) and configurations.
func (r *region) start() {
	r.t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	e, err := engine.Open(ctx, engine.Options{KV: r.kv, Disk: r.disk, Keyring: r.ring, Logger: log,
		GCInterval: 50 * time.Millisecond, MergeDelay: time.Hour,
		OnFatal: func(err error) { r.t.Errorf("%s: fatal storage error: %v", r.name, err) }})
	if err != nil {
		r.t.Fatal(err)
	}
	r.e, r.mts = e, controltest.NewMountTargets()
	if r.onMountTargetUpdate != nil {
		r.mts.OnUpdate(r.onMountTargetUpdate)
	}
	if r.r, err = control.Open(ctx, control.Options{Region: r.info(), KV: r.kv, Engine: e, Keyring: r.ring,
		MountTargets: r.mts, NFSPort: 2049, Logger: log}); err != nil {
		r.t.Fatal(err)
	}
	no := replication.Options{Region: r.name, Engine: e, Peers: r.peers, Logger: log, ChunkBytes: 4096}
	for _, f := range r.nodeMods {
		f(&no)
	}
	r.n = replication.New(no)
	r.n.Start()
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	var srv serve.Server = r.n
	if r.wrap != nil {
		srv = serve.NewHTTP(serve.HTTPOptions{Handler: r.wrap(r.n.Handler()), HTTP2: true, Logger: log})
	}
	r.run = serve.Start(ctx, srv, ln)
	mo := replconf.Options{Name: r.name, Region: r.r, Node: r.n, Engine: e, KV: r.kv, Logger: log}
	for _, f := range r.mgrMods {
		f(&mo)
	}
	r.m = replconf.New(mo)
	r.n.SetHooks(r.m.Hooks())
	if err := r.m.Open(ctx); err != nil {
		r.t.Fatal(err)
	}
	if !r.unloaded {
		r.n.Loaded()
	}
}

// stop takes the region down: node, control plane and engine closed.
func (r *region) stop() {
	if r.n == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A start that failed midway leaves the later parts nil.
	if r.m != nil {
		r.m.Close()
	}
	if r.run != nil {
		if err := r.run.Stop(ctx); err != nil {
			r.t.Errorf("%s: node: %v", r.name, err)
		}
	}
	r.n.Close()
	r.r.Close()
	r.e.Close()
	r.n, r.r, r.e, r.m, r.run = nil, nil, nil, nil, nil
}

// restart brings a stopped region back with its configurations.
func (r *region) restart() {
	r.t.Helper()
	r.start()
}

// adoptable creates an available file system holding files of its own,
// with replication overwrite protection DISABLED (a destination a
// replication may adopt), and returns its id.
func (r *region) adoptable(name string) string {
	r.t.Helper()
	id := r.createFS(name)
	fill(r.t, r.fs(id), "own", 3)
	dis := control.ProtectionDisabled
	if _, err := r.r.UpdateFileSystemProtection(context.Background(), id, &dis); err != nil {
		r.t.Fatal(err)
	}
	return id
}

// createFS creates an available file system and returns its id.
func (r *region) createFS(token string) string {
	r.t.Helper()
	fs, err := r.r.CreateFileSystem(context.Background(), control.CreateFileSystemInput{CreationToken: token})
	if err != nil {
		r.t.Fatal(err)
	}
	testkit.WaitFor(r.t, fs.ID+" available", 10*time.Second, func() bool {
		d, err := r.r.DescribeFileSystem(context.Background(), fs.ID)
		return err == nil && d.LifeCycleState == control.StateAvailable
	})
	return fs.ID
}

func (r *region) fs(id string) *engine.FS {
	r.t.Helper()
	fs, err := r.e.FS(id)
	if err != nil {
		r.t.Fatal(err)
	}
	return fs
}

func (r *region) describe(id string) control.FileSystem {
	r.t.Helper()
	d, err := r.r.DescribeFileSystem(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

func (r *region) protection(id string) string { return r.describe(id).Protection }

// status is the one configuration id takes part in, as m describes it.
func status(t *testing.T, m *replconf.Manager, id string) replconf.Description {
	t.Helper()
	ds, err := m.Describe(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Fatalf("%d configurations for %s", len(ds), id)
	}
	return ds[0]
}

// fill makes n directories with a file each in fs.
func fill(t *testing.T, fs *engine.FS, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		d, err := fs.Mkdir(ctx, engine.RootCred, engine.RootIno, fmt.Sprint(prefix, i), engine.SetAttr{})
		if err != nil {
			t.Fatal(err)
		}
		f, err := fs.Create(ctx, engine.RootCred, d.Attr.Ino, "f", engine.CreateUnchecked, engine.SetAttr{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := fs.Write(ctx, engine.RootCred, f.Attr.Ino, 0, []byte(fmt.Sprint("content of ", prefix, i))); err != nil {
			t.Fatal(err)
		}
	}
}

// converged waits until dst holds exactly src's state.
func converged(t testing.TB, src, dst *engine.FS) {
	t.Helper()
	enginetest.Converged(t, src, dst)
}
