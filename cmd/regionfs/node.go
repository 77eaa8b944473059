package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/regionfs/regionfs/internal/api/ec2"
	"github.com/regionfs/regionfs/internal/api/region"
	"github.com/regionfs/regionfs/internal/cfn"
	"github.com/regionfs/regionfs/internal/cluster"
	"github.com/regionfs/regionfs/internal/config"
	"github.com/regionfs/regionfs/internal/control/keys"
	"github.com/regionfs/regionfs/internal/drill"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kms"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/engine/kv/pebblekv"
	"github.com/regionfs/regionfs/internal/engine/kv/pgkv"
	"github.com/regionfs/regionfs/internal/engine/space"
	"github.com/regionfs/regionfs/internal/nfs"
	"github.com/regionfs/regionfs/internal/nfs/tlsca"
	"github.com/regionfs/regionfs/internal/serve"
)

// node is one running region: its metadata store, engine, control plane,
// mount targets and API server. `regionfs serve` runs one, `regionfs dev`
// two.
type node struct {
	cfg   *config.Config
	log   *slog.Logger // every line with region=<name> (regionLogger)
	reg   *prometheus.Registry
	store kv.Store
	lease *cluster.RegionLease // nil with the embedded store
	// spread holds this node's share of the region's file systems
	// (cluster.spread); ctargets are the mount targets that follow them.
	spread      *cluster.Manager
	ctargets    *cluster.Targets
	spreadStop  context.CancelFunc
	spreadDone  chan struct{}
	spreadStore *pgkv.Store
	// spreadLeader: this node holds the region's lease (cluster.spread).
	spreadLeader atomic.Bool
	// resumeKick asks for the replications of file systems that came here
	// to start; resumeStop and resumeDone end that.
	resumeKick chan struct{}
	resumeStop context.CancelFunc
	resumeDone chan struct{}
	engine     *engine.Engine
	keyring    *kms.Keyring
	nfsCA      *tlsca.CA    // the region's NFS CA (mount-target certificates)
	targets    *nfs.Targets // the mount targets
	control    *controlPlane
	repl       *replicationPlane // nil when replication is not configured
	stacks     *cfn.Engine
	keys       *keys.Keys
	mon        *monitoring
	drills     *drill.Service // nil when replication is not configured
	apiOpts    region.Options
	lock       *os.File // flock on the data directory; nil until created
	space      *space.Guard

	// lns holds the listeners bound at start until they serve (nil after).
	lns *regionListeners
	// giveUp, once closed, ends the backends' retries (PostgreSQL, S3):
	// see giveUpAfter.
	giveUp     chan struct{}
	giveUpOnce sync.Once

	mu   sync.Mutex     // guards the fields below
	api  *serve.Running // nil while the API is down
	down bool
}

// openNode opens a region from its config; cache, when set, is a Pebble
// block cache shared with other regions of the process. onFatal ends the
// process after a storage error. It reads every file the config names and
// binds the region's listeners before it creates anything (startup.go), and
// on failure it closes whatever it opened.
func openNode(ctx context.Context, cfg *config.Config, log *slog.Logger, cache *pebble.Cache, onFatal func(error)) (*node, error) {
	files, err := loadRegionFiles(cfg)
	if err != nil {
		return nil, err
	}
	// On a shared PostgreSQL store the node first becomes the region's
	// owner (a standby waits here), and only then binds the region's
	// addresses, which the owner holds.
	// With cluster.spread the node serves its share of the file systems
	// first, and waits for the region's lease (the API, the control plane)
	// in open.
	var store kv.Store
	var lease *cluster.RegionLease
	giveUp := make(chan struct{})
	if cfg.Metadata != "" && !cfg.Cluster.Spread {
		if store, lease, err = openMetadata(ctx, cfg, regionLogger(log, cfg.Region), cache, onFatal, nil, giveUp); err != nil {
			return nil, err
		}
	}
	var lns *regionListeners
	if !cfg.Cluster.Spread {
		lns, err = bindRegion(cfg)
	}
	if err != nil {
		if lease != nil {
			lease.Release(context.WithoutCancel(ctx))
		}
		if store != nil {
			store.Close()
		}
		return nil, err
	}
	n := &node{cfg: cfg, log: regionLogger(log, cfg.Region), reg: prometheus.NewRegistry(),
		keyring: files.keyring, lns: lns, store: store, lease: lease, giveUp: giveUp}
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := n.open(ctx, files, cache, onFatal); err != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if cerr := n.close(sctx); cerr != nil {
			n.log.Warn("closing after a failed start", "err", cerr)
		}
		return nil, err
	}
	return n, nil
}

// open creates and locks the data directory and opens the store, engine,
// control plane and replication.
func (n *node) open(ctx context.Context, files *regionFiles, cache *pebble.Cache, onFatal func(error)) error {
	cfg, log := n.cfg, n.log
	var err error
	if n.lock, err = prepareDataDir(cfg.DataDir); err != nil {
		return err
	}
	if err := n.keyring.Attach(filepath.Join(cfg.DataDir, "kms", "keyring.json")); err != nil {
		return fmt.Errorf("kms keyring: %w", err)
	}
	// The space guard before the metadata store: on a full disk it gives
	// the reserve back so that the store can replay its log.
	dataDisk, err := disk.NewOS(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	reserve := int64(cfg.Engine.ReservedSpace)
	if cfg.Metadata != "" && cfg.Blocks != "" {
		// Nothing the region stores is on this disk (only the block
		// cache, which gives way): no reserve to give back to a metadata
		// store's log or to deletions of block files.
		reserve = -1
	}
	if n.space, err = space.Open(space.Options{Disk: dataDisk, MinFreeBytes: int64(cfg.Engine.MinFreeSpace),
		ReserveBytes: reserve, Logger: log, Registerer: n.reg}); err != nil {
		return err
	}
	switch {
	case n.store != nil:
	case cfg.Cluster.Spread:
		if err := n.openSpread(ctx); err != nil {
			return err
		}
	default:
		if n.store, n.lease, err = openMetadata(ctx, cfg, log, cache, onFatal, n.space, n.giveUp); err != nil {
			return err
		}
	}
	if ps, ok := n.store.(*pebblekv.Store); ok {
		n.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "regionfs_kv_background_errors_total",
			Help: "Errors of the metadata store's background work (flushes, compactions; e.g. no space left), which it retries.",
		}, func() float64 { return float64(ps.BackgroundErrors()) }))
	}
	blockStores, err := openBlocks(ctx, cfg, log, n.giveUp)
	if err != nil {
		return err
	}
	d, err := disk.NewOS(filepath.Join(cfg.DataDir, "blocks"))
	if err != nil {
		return fmt.Errorf("block store: %w", err)
	}
	e := cfg.Engine
	n.engine, err = engine.Open(ctx, engine.Options{
		KV: n.store, Disk: d, Blocks: blockStores, Keyring: n.keyring, Logger: log,
		InlineMax: int(e.InlineMax), MaxRecordBytes: int(e.MaxRecordSize), MaxGroup: e.MaxGroup,
		QueueDepth: e.QueueDepth, BatchEntries: e.BatchEntries, BlockCacheBytes: int64(e.BlockCacheSize),
		GCInterval: e.GCInterval, MergeDelay: e.MergeDelay, ScrubInterval: e.ScrubInterval,
		OnFatal: onFatal, Registerer: n.reg, Space: n.space, Valid: n.leaseValid(),
		Shared: n.spread != nil, Claim: n.claim(),
	})
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	if n.spread != nil {
		n.spread.SetEngine(n.engine)
	}
	n.space.Start()
	if n.nfsCA, err = tlsca.Open(filepath.Join(cfg.DataDir, "tls"), "regionfs "+cfg.Region+" NFS CA"); err != nil {
		return fmt.Errorf("nfs tls: %w", err)
	}
	n.targets = nfs.NewTargets(nfs.TargetsOptions{Logger: log, Registerer: n.reg, Bind: subnetBinder(cfg),
		CA: n.nfsCA, Region: cfg.Region, ClientAuth: nfsClientAuth(cfg.NFS.TLSClientAuth),
		RequestBufferBytes: int64(cfg.NFS.RequestBuffer), ReplyBufferBytes: int64(cfg.NFS.ReplyBuffer),
		RecordTimeout: cfg.NFS.RecordTimeout, IdleTimeout: cfg.NFS.IdleTimeout, MaxConns: cfg.NFS.MaxConnections})
	if n.spread != nil {
		if err := n.startSpread(ctx, onFatal); err != nil {
			return err
		}
	}
	if n.control, err = openControl(ctx, n); err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	if n.repl, err = openReplication(ctx, n, files); err != nil {
		return fmt.Errorf("replication: %w", err)
	}
	n.startResuming()
	n.apiOpts = region.Options{
		Name:     cfg.Region,
		TLS:      files.apiTLS,
		Secret:   func(id string) (string, bool) { s, ok := files.access[id]; return s, ok },
		EFS:      n.control.efs,
		EC2:      ec2Handler(cfg, n.control, log),
		Registry: n.reg,
		Logger:   n.log,
	}
	if n.keys, err = openKeys(n); err != nil {
		return fmt.Errorf("kms: %w", err)
	}
	if n.mon, err = openMonitoring(n, cache); err != nil {
		return fmt.Errorf("monitoring: %w", err)
	}
	if n.stacks, err = openStacks(n); err != nil {
		return fmt.Errorf("cloudformation: %w", err)
	}
	if n.drills, err = openDrills(n); err != nil {
		return fmt.Errorf("drills: %w", err)
	}
	if n.repl != nil {
		n.repl.startAutoFailover(n)
	}
	return nil
}

// leaseValid returns the engine's ownership check: the domain leases'
// with cluster.spread, the region lease's on a shared store, none on an
// embedded one.
func (n *node) leaseValid() func(uint64) bool {
	if n.spread != nil {
		return n.spread.Valid
	}
	if n.lease == nil {
		return nil
	}
	return func(uint64) bool { return n.lease.Valid() }
}

// startAPI starts serving the region's API; it fails when the address
// cannot be bound.
func (n *node) startAPI(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.api != nil {
		return nil
	}
	s, err := region.New(n.apiOpts)
	if err != nil {
		return err
	}
	var ln net.Listener
	if n.lns != nil && n.lns.api != nil {
		ln, n.lns.api = n.lns.api, nil // bound at start
	} else if ln, err = listenTCP("api.listen", n.cfg.API.Listen); err != nil {
		return fmt.Errorf("region %s: %w", n.cfg.Region, err)
	}
	n.api = serve.Start(ctx, s, ln)
	return nil
}

func (n *node) stopAPI(ctx context.Context) error {
	n.mu.Lock()
	api := n.api
	n.api = nil
	n.mu.Unlock()
	if api == nil {
		return nil
	}
	return api.Stop(ctx)
}

// outage takes the region's API and NFS down (a regional outage in
// `regionfs dev`); recover brings them back.
func (n *node) outage(ctx context.Context) error {
	n.mu.Lock()
	if n.down {
		n.mu.Unlock()
		return nil
	}
	n.down = true
	n.mu.Unlock()
	err := errors.Join(n.stopAPI(ctx), n.targets.Suspend(ctx))
	if n.repl != nil {
		err = errors.Join(err, n.repl.suspend(ctx))
	}
	n.mon.pause(true)
	n.log.Warn("region down (outage on demand)")
	return err
}

func (n *node) recover(ctx context.Context) error {
	n.mu.Lock()
	if !n.down {
		n.mu.Unlock()
		return nil
	}
	n.down = false
	n.mu.Unlock()
	err := errors.Join(n.targets.Resume(), n.startAPI(ctx))
	if n.repl != nil {
		err = errors.Join(err, n.repl.resume())
	}
	n.mon.pause(false)
	n.log.Info("region up again")
	return err
}

func (n *node) isDown() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.down
}

// backendGrace is how long a node shutting down waits for a metadata
// database or object store it cannot reach (its last commits, the lease's
// release) before it gives up on them: with the backends up, shutdown
// takes far less; with them gone (stopped first, unreachable) the process
// still exits, and what it acknowledged is already stored.
const backendGrace = 3 * time.Second

// giveUpAfter makes the backends stop retrying after d (shutdown; the
// first call counts).
func (n *node) giveUpAfter(d time.Duration) {
	n.giveUpOnce.Do(func() { time.AfterFunc(d, func() { close(n.giveUp) }) })
}

// close shuts everything down in order: API, control plane (and its mount
// targets), engine, store. Backends still unreachable backendGrace after
// it starts are given up on (giveUpAfter).
func (n *node) close(ctx context.Context) error {
	n.giveUpAfter(backendGrace)
	var errs []error
	errs = append(errs, n.stopAPI(ctx))
	n.lns.close()
	if n.drills != nil {
		errs = append(errs, n.drills.Close())
	}
	if n.stacks != nil {
		errs = append(errs, n.stacks.Close())
	}
	errs = append(errs, n.mon.close())
	if n.keys != nil {
		errs = append(errs, n.keys.Close())
	}
	n.stopResuming()
	if n.repl != nil {
		errs = append(errs, n.repl.close(ctx))
	}
	if n.control != nil {
		errs = append(errs, n.control.close())
	}
	if n.targets != nil {
		errs = append(errs, n.targets.Shutdown(ctx))
	}
	errs = append(errs, n.closeStorage())
	return errors.Join(errs...)
}

func (n *node) closeStorage() error {
	var errs []error
	if n.spreadStop != nil {
		// Every file system handed over before the engine closes.
		n.spreadStop()
		<-n.spreadDone
		n.spreadStop = nil
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		n.spread.Release(ctx)
		cancel()
	}
	if n.engine != nil {
		if err := n.engine.Close(); err != nil {
			// What the operator needs to know: the data acknowledged is
			// durable either way; the start after this one is slower.
			errs = append(errs, fmt.Errorf("the store was not closed cleanly, so the next start sweeps it for orphaned files and blocks (acknowledged writes are durable already): %w", err))
		}
		n.engine = nil
	}
	if n.lease != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := n.lease.Release(ctx); err != nil {
			errs = append(errs, fmt.Errorf("the region's lease was not released, so another node can take the region over only once it runs out: %w", err))
		}
		cancel()
		n.lease = nil
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
		n.store = nil
	}
	if n.space != nil {
		n.space.Close()
		n.space = nil
	}
	if n.lock != nil {
		errs = append(errs, n.lock.Close()) // releases the flock
		n.lock = nil
	}
	return errors.Join(errs...)
}

// serveUntilDone runs the API until ctx ends or the node is drained, then
// closes the node; ready, when set, is called once the API serves (every
// listener is bound before), and the function it returns once serving
// stops, before the node closes.
func (n *node) serveUntilDone(ctx context.Context, ready func() (stopping func())) error {
	if err := n.startAPI(ctx); err != nil {
		return err
	}
	stopping := func() {}
	if ready != nil {
		stopping = ready()
	}
	var drained <-chan struct{}
	if n.lease != nil {
		drained = n.lease.Drained()
	}
	select {
	case <-ctx.Done():
	case <-drained:
		n.log.Warn("drained: stopping and handing the region over")
	}
	stopping()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return n.close(sctx)
}

// subnetBinder maps mount-target addresses of subnets with a listen_address
// to that address.
func subnetBinder(cfg *config.Config) func(netip.AddrPort) netip.AddrPort {
	type bind struct {
		cidr netip.Prefix
		addr netip.Addr
	}
	var binds []bind
	for _, s := range cfg.Subnets {
		if s.ListenAddress != "" {
			binds = append(binds, bind{netip.MustParsePrefix(s.CIDR), netip.MustParseAddr(s.ListenAddress)})
		}
	}
	if len(binds) == 0 {
		return nil
	}
	return func(a netip.AddrPort) netip.AddrPort {
		for _, b := range binds {
			if b.cidr.Contains(a.Addr()) {
				return netip.AddrPortFrom(b.addr, a.Port())
			}
		}
		return a
	}
}

// ec2Handler serves the region's EC2 subset: its subnets and VPC from the
// configuration, its security groups from the network domain.
func ec2Handler(cfg *config.Config, c *controlPlane, log *slog.Logger) *ec2.Handler {
	h := ec2.NewHandler(ec2Region(cfg, c.usedAddresses), log)
	h.SetNetwork(c.net, c.region.MountTargetsUsingGroup)
	return h
}

// nfsClientAuth is the config's nfs.tls_client_auth: whether mount targets
// ask for client certificates ("request") or require them ("require").
func nfsClientAuth(s string) tls.ClientAuthType {
	switch s {
	case "request":
		return tls.VerifyClientCertIfGiven
	case "require":
		return tls.RequireAndVerifyClientCert
	}
	return tls.NoClientCert
}

// ec2Region is what the EC2 subset describes for cfg.
func ec2Region(cfg *config.Config, used func(subnetID string) int) ec2.Region {
	r := ec2.Region{Name: cfg.Region, AccountID: cfg.AccountID, UsedAddresses: used,
		VPC: ec2.VPC{ID: cfg.VPC.ID, CIDR: netip.MustParsePrefix(cfg.VPC.CIDR)}}
	r.Endpoint = cfg.API.Listen
	for _, p := range cfg.Peers {
		r.Peers = append(r.Peers, ec2.RegionInfo{Name: p.Name, Endpoint: p.API})
	}
	for _, s := range cfg.Subnets {
		r.Subnets = append(r.Subnets, ec2.Subnet{ID: s.ID, AvailabilityZone: s.AvailabilityZone, AvailabilityZoneID: s.AvailabilityZoneID,
			CIDR: netip.MustParsePrefix(s.CIDR), Name: s.Name})
	}
	for _, g := range cfg.SecurityGroups {
		sg := ec2.SecurityGroup{ID: g.ID, Name: g.Name, Description: g.Description, NFSPort: cfg.NFS.Port}
		for _, c := range g.Ingress {
			sg.Ingress = append(sg.Ingress, netip.MustParsePrefix(c))
		}
		r.Groups = append(r.Groups, sg)
	}
	return r
}

// loadKeyring builds the keyring: the configured KMS keys (static, AWS
// managed) and the keys made through the KMS API, kept in
// DataDir/kms/keyring.json.
func loadKeyring(keys []config.KMSKey) (*kms.Keyring, error) {
	var ks []kms.Key
	for _, k := range keys {
		material, err := readKeyFile(k.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kms key %s: %w", k.ID, err)
		}
		ks = append(ks, kms.Key{ID: k.ID, Aliases: k.Aliases, Material: material})
	}
	// Attached to its state file in the data directory once that exists.
	return kms.New(ks...)
}

// readKeyFile reads 32 bytes of key material: raw, hex or base64.
func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) == kms.KeySize {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	if m, err := hex.DecodeString(s); err == nil && len(m) == kms.KeySize {
		return m, nil
	}
	if m, err := base64.StdEncoding.DecodeString(s); err == nil && len(m) == kms.KeySize {
		return m, nil
	}
	return nil, fmt.Errorf("%s: want %d bytes of key material (raw, hex or base64)", path, kms.KeySize)
}

// serverTLS loads a server certificate, and client CAs for mutual TLS.
func serverTLS(t *config.TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, err
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pool, err := loadPool(t.CAFile)
		if err != nil {
			return nil, err
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// clientTLS loads the CA that authenticates a server, and a client
// certificate.
func clientTLS(t *config.TLS) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pool, err := loadPool(t.CAFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificates", path)
	}
	return pool, nil
}

// exitOnFatal is the engine's OnFatal in every command: a storage error
// (a failed fsync) is never retried; the process ends.
func exitOnFatal(log *slog.Logger) func(error) {
	return func(err error) {
		log.Error("fatal storage error, exiting", "err", err)
		os.Exit(2)
	}
}
