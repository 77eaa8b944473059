package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs"
	"github.com/regionfs/regionfs/internal/nfs/tlsca"
)

// mountTarget is what one mount target serves: the control plane's
// MountTargetSpec without the control package's types.
type mountTarget struct {
	ID, FileSystemID string
	Addr             netip.AddrPort
	FS               *engine.FS
	Ingress          []netip.Prefix
	AccessPoints     []accessPoint
	ReadOnly         bool
	RequireTLS       bool
}

type accessPoint struct {
	ID, Path  string
	PosixUser *engine.Cred
	Create    *nfs.DirCreation
}

// mountTargets serves the mount targets of one region, each an NFS server
// on its own address. It implements the control plane's mount-target seam
// (see controlMountTargets) and lets `regionfs dev region stop` take every
// mount target of the region down and up again.
type mountTargets struct {
	log *slog.Logger
	// reg, when set, receives each mount target's NFS metrics, labelled
	// mount_target and fs_id.
	reg prometheus.Registerer
	// bind maps a mount target's address to the address it listens on
	// (a subnet's listen_address); nil keeps the address.
	bind func(netip.AddrPort) netip.AddrPort
	// tls, when set, offers NFS over TLS on every mount target.
	tls *mountTLS
	// budgets bound the request and reply bytes of every mount target of
	// the region together.
	budgets nfs.Budgets

	mu        sync.Mutex // guards the fields below
	targets   map[string]*servedTarget
	suspended bool
}

type servedTarget struct {
	spec    mountTarget
	metrics *trackingRegisterer
	ingress atomic.Pointer[[]netip.Prefix]
	srv     *nfs.Server // nil while suspended
	done    chan error
	cancel  context.CancelFunc
}

func newMountTargets(log *slog.Logger, reg prometheus.Registerer, bind func(netip.AddrPort) netip.AddrPort) *mountTargets {
	return &mountTargets{log: log, reg: reg, bind: bind, targets: map[string]*servedTarget{}, budgets: nfs.NewBudgets(0, 0)}
}

// start serves mt until stop; a mount target already served is updated.
func (m *mountTargets) start(ctx context.Context, mt mountTarget) error {
	if mt.FS == nil || !mt.Addr.IsValid() {
		return fmt.Errorf("mount target %s: no file system or address", mt.ID)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.targets[mt.ID]; ok {
		m.updateLocked(t, mt)
		return nil
	}
	t := &servedTarget{spec: mt}
	t.ingress.Store(&mt.Ingress)
	if !m.suspended {
		if err := m.listenLocked(t); err != nil {
			return err
		}
	}
	m.targets[mt.ID] = t
	return nil
}

// update replaces a served mount target's security groups and access
// points.
func (m *mountTargets) update(_ context.Context, mt mountTarget) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.targets[mt.ID]
	if !ok {
		return fmt.Errorf("mount target %s is not served", mt.ID)
	}
	if mt.Addr != t.spec.Addr || mt.FS != t.spec.FS {
		return fmt.Errorf("mount target %s: address and file system cannot change", mt.ID)
	}
	m.updateLocked(t, mt)
	return nil
}

func (m *mountTargets) updateLocked(t *servedTarget, mt mountTarget) {
	t.spec = mt
	t.ingress.Store(&mt.Ingress)
	if t.srv != nil {
		t.srv.SetExports(exports(mt))
	}
	m.log.Info("mount target updated", "mount_target", mt.ID, "fs_id", mt.FileSystemID, "access_points", len(mt.AccessPoints), "ingress", len(mt.Ingress))
}

// stop stops serving a mount target (a no-op for one not served).
func (m *mountTargets) stop(ctx context.Context, id string) error {
	m.mu.Lock()
	t, ok := m.targets[id]
	delete(m.targets, id)
	m.mu.Unlock()
	if !ok {
		return nil
	}
	return m.shutdown(ctx, t)
}

// suspend stops every mount target's listener but remembers them; resume
// serves them again (a regional outage in `regionfs dev`).
func (m *mountTargets) suspend(ctx context.Context) error {
	m.mu.Lock()
	m.suspended = true
	ts := make([]*servedTarget, 0, len(m.targets))
	for _, t := range m.targets {
		ts = append(ts, t)
	}
	m.mu.Unlock()
	var errs []error
	for _, t := range ts {
		errs = append(errs, m.shutdown(ctx, t))
	}
	return errors.Join(errs...)
}

func (m *mountTargets) resume() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.suspended = false
	var errs []error
	for _, t := range m.targets {
		if t.srv == nil {
			errs = append(errs, m.listenLocked(t))
		}
	}
	return errors.Join(errs...)
}

// flush makes every buffered (UNSTABLE) write to the engine file system
// named fsName durable, through each mount target that serves it (planned
// failover).
func (m *mountTargets) flush(ctx context.Context, fsName string) error {
	m.mu.Lock()
	type job struct {
		srv *nfs.Server
		t   *servedTarget
	}
	var jobs []job
	for _, t := range m.targets {
		if t.srv != nil && t.spec.FS != nil && t.spec.FS.Name() == fsName {
			jobs = append(jobs, job{t.srv, t})
		}
	}
	m.mu.Unlock()
	var errs []error
	for _, j := range jobs {
		errs = append(errs, j.srv.Flush(ctx, j.t.spec.FS))
	}
	return errors.Join(errs...)
}

// close stops every mount target.
func (m *mountTargets) close(ctx context.Context) error {
	m.mu.Lock()
	ts := m.targets
	m.targets = map[string]*servedTarget{}
	m.mu.Unlock()
	var errs []error
	for _, t := range ts {
		errs = append(errs, m.shutdown(ctx, t))
	}
	return errors.Join(errs...)
}

func (m *mountTargets) listenLocked(t *servedTarget) error {
	addr := t.spec.Addr
	if m.bind != nil {
		addr = m.bind(addr)
	}
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return fmt.Errorf("mount target %s: listen on %s: %w", t.spec.ID, addr, err)
	}
	var reg prometheus.Registerer
	if m.reg != nil {
		t.metrics = &trackingRegisterer{inner: prometheus.WrapRegistererWith(
			prometheus.Labels{"mount_target": t.spec.ID, "fs_id": t.spec.FileSystemID}, m.reg)}
		reg = t.metrics
	}
	var tcfg *tls.Config
	if m.tls != nil {
		if tcfg, err = m.tls.config(t.spec, addr); err != nil {
			ln.Close()
			return fmt.Errorf("mount target %s: %w", t.spec.ID, err)
		}
	}
	srv := nfs.NewServer(nfs.Options{
		TLS:        tcfg,
		Registerer: reg,
		Budgets:    m.budgets,
		Logger:     m.log.With("mount_target", t.spec.ID, "fs_id", t.spec.FileSystemID),
		Admit: func(remote netip.AddrPort) bool {
			for _, p := range *t.ingress.Load() {
				if p.Contains(remote.Addr().Unmap()) {
					return true
				}
			}
			return false
		},
	})
	srv.SetExports(exports(t.spec))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.srv, t.done, t.cancel = srv, done, cancel
	m.log.Info("mount target serving", "mount_target", t.spec.ID, "fs_id", t.spec.FileSystemID, "addr", ln.Addr().String(),
		"read_only", t.spec.ReadOnly, "tls", tcfg != nil, "require_tls", t.spec.RequireTLS)
	return nil
}

func (m *mountTargets) shutdown(ctx context.Context, t *servedTarget) error {
	m.mu.Lock()
	srv, done, cancel, metrics := t.srv, t.done, t.cancel, t.metrics
	t.srv, t.done, t.cancel, t.metrics = nil, nil, nil, nil
	m.mu.Unlock()
	if srv == nil {
		return nil
	}
	sctx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	err := srv.Shutdown(sctx)
	cancel()
	serr := <-done
	if errors.Is(serr, nfs.ErrServerClosed) || errors.Is(serr, context.Canceled) {
		serr = nil
	}
	if metrics != nil {
		metrics.unregisterAll()
	}
	m.log.Info("mount target stopped", "mount_target", t.spec.ID, "fs_id", t.spec.FileSystemID)
	return errors.Join(err, serr)
}

// trackingRegisterer remembers what it registered so that a stopped mount
// target's collectors can be removed (a restarted one registers again).
type trackingRegisterer struct {
	inner prometheus.Registerer
	mu    sync.Mutex // guards cs
	cs    []prometheus.Collector
}

func (r *trackingRegisterer) Register(c prometheus.Collector) error {
	if err := r.inner.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	r.cs = append(r.cs, c)
	r.mu.Unlock()
	return nil
}

func (r *trackingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *trackingRegisterer) Unregister(c prometheus.Collector) bool { return r.inner.Unregister(c) }

func (r *trackingRegisterer) unregisterAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.cs {
		r.inner.Unregister(c)
	}
	r.cs = nil
}

// exports are a mount target's NFS exports: the root ("/", which is also
// the empty MOUNT path) and "/<access point id>" for each access point.
func exports(mt mountTarget) []nfs.Export {
	exps := []nfs.Export{{Path: "/", FS: mt.FS, ReadOnly: mt.ReadOnly, Clients: mt.Ingress, RequireTLS: mt.RequireTLS}}
	for _, ap := range mt.AccessPoints {
		dir := ap.Path
		if dir == "/" {
			dir = ""
		}
		exps = append(exps, nfs.Export{
			Path:       "/" + ap.ID,
			FS:         mt.FS,
			Dir:        dir,
			ReadOnly:   mt.ReadOnly,
			Clients:    mt.Ingress,
			PosixUser:  ap.PosixUser,
			CreateDir:  ap.Create,
			RequireTLS: mt.RequireTLS,
		})
	}
	return exps
}

// mountTLS issues mount-target certificates from the region's NFS CA.
type mountTLS struct {
	ca         *tlsca.CA
	region     string
	clientAuth tls.ClientAuthType
}

// newMountTLS opens (creating at the first start) the region's NFS CA in
// DATA_DIR/tls; clientAuth is the config's nfs.tls_client_auth.
func newMountTLS(dataDir, region, clientAuth string) (*mountTLS, error) {
	ca, err := tlsca.Open(filepath.Join(dataDir, "tls"), "regionfs "+region+" NFS CA")
	if err != nil {
		return nil, err
	}
	m := &mountTLS{ca: ca, region: region}
	switch clientAuth {
	case "request":
		m.clientAuth = tls.VerifyClientCertIfGiven
	case "require":
		m.clientAuth = tls.RequireAndVerifyClientCert
	}
	return m, nil
}

// config is the TLS configuration of one mount target: a certificate for
// its address (and the address it listens on), its file system's and its
// own EFS-style DNS names.
func (m *mountTLS) config(mt mountTarget, listen netip.AddrPort) (*tls.Config, error) {
	ips := []netip.Addr{mt.Addr.Addr()}
	if a := listen.Addr(); a != mt.Addr.Addr() && a.IsValid() && !a.IsUnspecified() {
		ips = append(ips, a)
	}
	cert, err := m.ca.Issue(tlsca.Request{
		CommonName: mt.ID,
		DNSNames: []string{
			mt.FileSystemID + ".efs." + m.region + ".amazonaws.com",
			mt.ID + ".efs." + m.region + ".amazonaws.com",
		},
		IPs: ips,
	})
	if err != nil {
		return nil, err
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, ClientAuth: m.clientAuth}
	if m.clientAuth != tls.NoClientCert {
		c.ClientCAs = m.ca.Pool()
	}
	return c, nil
}
