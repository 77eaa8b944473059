package nfs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/nfs/tlsca"
	"github.com/regionfs/regionfs/internal/serve"
)

// targetStopTimeout bounds stopping one mount target's server.
const targetStopTimeout = 30 * time.Second

// TargetsOptions configure Targets.
type TargetsOptions struct {
	Logger *slog.Logger
	// Registerer, when set, receives each mount target's NFS metrics,
	// labelled mount_target and fs_id (removed again when it stops).
	Registerer prometheus.Registerer
	// Bind maps a mount target's address to the address it listens on (a
	// subnet's listen_address); nil keeps the address.
	Bind func(netip.AddrPort) netip.AddrPort
	// CA, when set, offers NFS over TLS on every mount target, with a
	// certificate it issues for the mount target's address and its
	// EFS-style names in Region. ClientAuth asks for or requires client
	// certificates (mutual TLS, verified against CA).
	CA         *tlsca.CA
	Region     string
	ClientAuth tls.ClientAuthType
	// RequestBufferBytes and ReplyBufferBytes size the budgets every mount
	// target of the region shares (the defaults when 0); RecordTimeout
	// bounds receiving one request (see limits.go).
	RequestBufferBytes, ReplyBufferBytes int64
	RecordTimeout                        time.Duration
	// IdleTimeout closes a connection idle that long (Options.IdleTimeout;
	// its default when 0).
	IdleTimeout time.Duration
	// MaxConns bounds the client connections of every mount target of the
	// region together (NewConnLimit's default when 0).
	MaxConns int
}

// Targets serves a region's mount targets, each an NFS server on its own
// address whose security groups' ingress CIDRs are checked at accept. It
// is the control plane's data plane (control.MountTargetServer): the
// control plane starts, updates and stops mount targets through it, and
// a planned failover flushes buffered writes through Flush. Suspend and
// Resume take every mount target off the network and back (a regional
// outage in `regionfs dev`); Shutdown stops them all.
type Targets struct {
	o   TargetsOptions
	log *slog.Logger
	// budgets bound the request and reply bytes of every mount target of
	// the region together.
	budgets Budgets

	mu        sync.Mutex // guards the fields below
	targets   map[string]*servedTarget
	suspended bool
}

var _ control.MountTargetServer = (*Targets)(nil)

type servedTarget struct {
	spec    control.MountTargetSpec
	metrics *trackingRegisterer
	ingress atomic.Pointer[[]netip.Prefix]
	srv     *Server        // nil while suspended
	run     *serve.Running // srv serving its listener
}

// NewTargets returns a data plane that serves no mount target yet.
func NewTargets(o TargetsOptions) *Targets {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	b := NewBudgets(o.RequestBufferBytes, o.ReplyBufferBytes)
	if o.MaxConns > 0 {
		b.Conns = NewConnLimit(o.MaxConns)
	}
	return &Targets{o: o, log: o.Logger, targets: map[string]*servedTarget{}, budgets: b}
}

// Start serves mt until Stop; a mount target already served is updated.
func (m *Targets) Start(_ context.Context, mt control.MountTargetSpec) error {
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

// Update replaces a served mount target's security groups, access points,
// read-only and TLS rules; its address and file system cannot change.
func (m *Targets) Update(_ context.Context, mt control.MountTargetSpec) error {
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

func (m *Targets) updateLocked(t *servedTarget, mt control.MountTargetSpec) {
	t.spec = mt
	t.ingress.Store(&mt.Ingress)
	if t.srv != nil {
		t.srv.SetExports(exportsOf(mt))
	}
	m.log.Info("mount target updated", "mount_target", mt.ID, "fs_id", mt.FileSystemID, "access_points", len(mt.AccessPoints), "ingress", len(mt.Ingress))
}

// Stop stops serving a mount target (a no-op for one not served).
func (m *Targets) Stop(ctx context.Context, id string) error {
	m.mu.Lock()
	t, ok := m.targets[id]
	delete(m.targets, id)
	m.mu.Unlock()
	if !ok {
		return nil
	}
	return m.shutdown(ctx, t)
}

// Flush makes every buffered (UNSTABLE) write to the file system fsID
// durable, through each mount target that serves it: a planned failover
// calls it before and after it fences the source.
func (m *Targets) Flush(ctx context.Context, fsID string) error {
	m.mu.Lock()
	type job struct {
		srv *Server
		t   *servedTarget
	}
	var jobs []job
	for _, t := range m.targets {
		if t.srv != nil && t.spec.FileSystemID == fsID {
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

// Suspend stops every mount target's listener but remembers them; Resume
// serves them again (a regional outage in `regionfs dev`).
func (m *Targets) Suspend(ctx context.Context) error {
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

// Resume serves again the mount targets Suspend stopped.
func (m *Targets) Resume() error {
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

// Shutdown stops every mount target (each making its buffered writes
// durable first).
func (m *Targets) Shutdown(ctx context.Context) error {
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

func (m *Targets) listenLocked(t *servedTarget) error {
	addr := t.spec.Addr
	if m.o.Bind != nil {
		addr = m.o.Bind(addr)
	}
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return fmt.Errorf("mount target %s: listen on %s: %w", t.spec.ID, addr, err)
	}
	var reg prometheus.Registerer
	if m.o.Registerer != nil {
		t.metrics = &trackingRegisterer{inner: prometheus.WrapRegistererWith(
			prometheus.Labels{"mount_target": t.spec.ID, "fs_id": t.spec.FileSystemID}, m.o.Registerer)}
		reg = t.metrics
	}
	var tcfg *tls.Config
	if m.o.CA != nil {
		if tcfg, err = m.tlsConfig(t.spec, addr); err != nil {
			ln.Close()
			return fmt.Errorf("mount target %s: %w", t.spec.ID, err)
		}
	}
	srv := NewServer(Options{
		TLS:           tcfg,
		Registerer:    reg,
		Budgets:       m.budgets,
		RecordTimeout: m.o.RecordTimeout,
		IdleTimeout:   m.o.IdleTimeout,
		Logger:        m.log.With("mount_target", t.spec.ID, "fs_id", t.spec.FileSystemID),
		Admit: func(remote netip.AddrPort) bool {
			for _, p := range *t.ingress.Load() {
				if p.Contains(remote.Addr().Unmap()) {
					return true
				}
			}
			return false
		},
	})
	srv.SetExports(exportsOf(t.spec))
	t.srv, t.run = srv, serve.Start(context.Background(), srv, ln)
	m.log.Info("mount target serving", "mount_target", t.spec.ID, "fs_id", t.spec.FileSystemID, "addr", ln.Addr().String(),
		"read_only", t.spec.ReadOnly, "tls", tcfg != nil, "require_tls", t.spec.RequireTLS)
	return nil
}

func (m *Targets) shutdown(ctx context.Context, t *servedTarget) error {
	m.mu.Lock()
	run, metrics := t.run, t.metrics
	t.srv, t.run, t.metrics = nil, nil, nil
	m.mu.Unlock()
	if run == nil {
		return nil
	}
	sctx, stop := context.WithTimeout(ctx, targetStopTimeout)
	defer stop()
	err := run.Stop(sctx)
	if metrics != nil {
		metrics.unregisterAll()
	}
	m.log.Info("mount target stopped", "mount_target", t.spec.ID, "fs_id", t.spec.FileSystemID)
	return err
}

// tlsConfig is the TLS configuration of one mount target: a certificate
// for its address (and the address it listens on), its file system's and
// its own EFS-style DNS names.
func (m *Targets) tlsConfig(mt control.MountTargetSpec, listen netip.AddrPort) (*tls.Config, error) {
	ips := []netip.Addr{mt.Addr.Addr()}
	if a := listen.Addr(); a != mt.Addr.Addr() && a.IsValid() && !a.IsUnspecified() {
		ips = append(ips, a)
	}
	cert, err := m.o.CA.Issue(tlsca.Request{
		CommonName: mt.ID,
		DNSNames: []string{
			mt.FileSystemID + ".efs." + m.o.Region + ".amazonaws.com",
			mt.ID + ".efs." + m.o.Region + ".amazonaws.com",
		},
		IPs: ips,
	})
	if err != nil {
		return nil, err
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, ClientAuth: m.o.ClientAuth}
	if m.o.ClientAuth != tls.NoClientCert {
		c.ClientCAs = m.o.CA.Pool()
	}
	return c, nil
}

// exportsOf are a mount target's NFS exports: the root ("/", which is
// also the empty MOUNT path) and "/<access point id>" for each access
// point.
func exportsOf(mt control.MountTargetSpec) []Export {
	exps := []Export{{Path: "/", FS: mt.FS, ReadOnly: mt.ReadOnly, Clients: mt.Ingress, RequireTLS: mt.RequireTLS}}
	for _, ap := range mt.AccessPoints {
		dir := ap.Path
		if dir == "/" {
			dir = ""
		}
		x := Export{
			Path:       "/" + ap.ID,
			FS:         mt.FS,
			Dir:        dir,
			ReadOnly:   mt.ReadOnly,
			Clients:    mt.Ingress,
			PosixUser:  ap.PosixUser,
			RequireTLS: mt.RequireTLS,
		}
		if ci := ap.CreationInfo; ci != nil {
			x.CreateDir = &DirCreation{UID: ci.UID, GID: ci.GID, Mode: ci.Mode}
		}
		exps = append(exps, x)
	}
	return exps
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
