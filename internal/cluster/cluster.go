package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/kv/pgkv"
)

// leasePrefix starts the name of every domain's lease.
const leasePrefix = "domain/"

// LeaseName is the name of domain dom's lease.
func LeaseName(dom uint64) string { return leasePrefix + strconv.FormatUint(dom, 10) }

// leaseDomain parses a domain lease's name.
func leaseDomain(name string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, leasePrefix)
	if !ok {
		return 0, false
	}
	d, err := strconv.ParseUint(s, 10, 64)
	return d, err == nil
}

// FenceKey returns pgkv's Options.FenceKey for a node: a key of a domain is
// guarded by the domain's lease, any other key by regionLease. eng returns
// the node's engine, nil until it is open (the keys it writes while opening
// are the region's).
func FenceKey(eng func() *engine.Engine, regionLease string) func(key []byte) string {
	return func(key []byte) string {
		if e := eng(); e != nil {
			if dom, ok := e.KeyDomain(key); ok {
				return LeaseName(dom)
			}
		}
		return regionLease
	}
}

// ErrOwned: the domain is owned by another node.
var ErrOwned = errors.New("cluster: domain owned by another node")

// Options configure a Manager.
type Options struct {
	// Store is the region's shared metadata store (leases, nodes).
	Store *pgkv.Store
	// Node names this node (unique in the region); Addr is where it runs.
	Node, Addr string
	// TTL is the lease time: a dead node's domains are taken over within
	// TTL plus a third of it.
	TTL    time.Duration
	Logger *slog.Logger
	// OnChange, when set, is called with the domains held here after a
	// round, a Claim, a Pull or a Release (possibly from two goroutines at
	// once).
	OnChange func(attached []uint64)
	// Leader, when set, reports whether this node holds the region's
	// lease (it runs the control plane and the replication endpoint).
	Leader func() bool
	// Pinned, when set, lists the domains that belong on the leader: the
	// file systems that replicate, whose shipping and apply run where the
	// region's replication endpoint and control plane are. The leader
	// takes them (reserving those another node holds, which hands them
	// over at its next round); the other nodes take none of them (a dead
	// leader's wait for the next one); they do not count in the shares.
	Pinned func(ctx context.Context) (map[uint64]bool, error)
}

// pullPinFor is how long a domain Pull brought here counts as pinned
// without Options.Pinned listing it (the replication being set up records
// its configuration meanwhile).
const pullPinFor = time.Minute

// Manager holds a node's share of the region's domains (see the package
// doc). Claim and Valid are the engine's Options.Claim and Options.Valid;
// SetEngine hands it the engine once open.
type Manager struct {
	opts Options
	log  *slog.Logger

	engMu sync.Mutex // guards eng
	eng   *engine.Engine

	// opMu serialises the changes of ownership (a round, Claim, Release).
	opMu sync.Mutex

	mu    sync.Mutex           // guards the fields below
	until map[uint64]time.Time // held domains → when their lease surely runs out
	// pulled: domains Pull brought here → when (pinned for pullPinFor).
	pulled map[uint64]time.Time
}

// New returns a manager; Run starts it.
func New(o Options) *Manager {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{opts: o, log: o.Logger, until: map[uint64]time.Time{}, pulled: map[uint64]time.Time{}}
}

// SetEngine hands the manager the node's engine (opened with Shared,
// Claim and Valid of this manager).
func (m *Manager) SetEngine(e *engine.Engine) {
	m.engMu.Lock()
	m.eng = e
	m.engMu.Unlock()
}

func (m *Manager) engine() *engine.Engine {
	m.engMu.Lock()
	defer m.engMu.Unlock()
	return m.eng
}

// Engine returns the engine handed to SetEngine (nil before).
func (m *Manager) Engine() *engine.Engine { return m.engine() }

// Valid reports whether this node surely still holds domain dom's lease.
func (m *Manager) Valid(dom uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.until[dom]
	return ok && time.Now().Before(u)
}

// Held lists the domains whose leases this node holds, sorted.
func (m *Manager) Held() []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]uint64, 0, len(m.until))
	for d := range m.until {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

func (m *Manager) granted(dom uint64, sent time.Time) {
	m.mu.Lock()
	m.until[dom] = sent.Add(m.opts.TTL - m.opts.TTL/10)
	m.mu.Unlock()
}

func (m *Manager) dropped(dom uint64) {
	m.mu.Lock()
	delete(m.until, dom)
	m.mu.Unlock()
}

// Claim takes domain dom (engine Options.Claim: a domain created here, or
// one an operation here must write): it acquires the lease, which must be
// free, expired or this node's, and attaches the domain. It does not wait
// for a round (the engine calls it holding its registry lock, which a
// round's Refresh takes).
func (m *Manager) Claim(ctx context.Context, dom uint64) error {
	if err := m.take(ctx, dom); err != nil {
		return err
	}
	m.changed()
	return nil
}

// take acquires dom's lease and attaches it.
func (m *Manager) take(ctx context.Context, dom uint64) error {
	name := LeaseName(dom)
	sent := time.Now()
	l, ok, err := m.opts.Store.Acquire(ctx, name, m.opts.Node, m.opts.TTL)
	if err != nil {
		return fmt.Errorf("cluster: take domain %d: %w", dom, err)
	}
	if !ok {
		return fmt.Errorf("cluster: domain %d (node %s): %w", dom, l.Holder, ErrOwned)
	}
	m.granted(dom, sent)
	e := m.engine()
	if e == nil {
		return nil // being created while the engine opens: nothing to attach
	}
	if err := e.Attach(ctx, dom); err != nil {
		m.dropped(dom)
		if rerr := m.opts.Store.Release(context.WithoutCancel(ctx), name); rerr != nil {
			m.log.Warn("release after a failed attach", "domain", dom, "err", rerr)
		}
		return fmt.Errorf("cluster: take domain %d: %w", dom, err)
	}
	m.log.Info("domain taken", "domain", dom, "node", m.opts.Node, "token", l.Token)
	return nil
}

// give detaches dom and releases its lease; opMu held.
func (m *Manager) give(ctx context.Context, dom uint64, why string) {
	if e := m.engine(); e != nil {
		if err := e.Detach(ctx, dom); err != nil {
			m.log.Warn("detach domain", "domain", dom, "err", err)
		}
	}
	m.dropped(dom)
	if err := m.opts.Store.Release(ctx, LeaseName(dom)); err != nil {
		m.log.Warn("release domain lease", "domain", dom, "err", err)
	}
	m.log.Info("domain given up", "domain", dom, "node", m.opts.Node, "why", why)
}

// lost forgets dom, whose lease another node took over; opMu held.
func (m *Manager) lost(ctx context.Context, dom uint64) {
	m.dropped(dom)
	if e := m.engine(); e != nil {
		// Its clean-detach marker is fenced: the new owner sweeps.
		_ = e.Detach(ctx, dom)
	}
	m.log.Warn("domain lost: another node took its lease over", "domain", dom, "node", m.opts.Node)
}

func (m *Manager) changed() {
	if m.opts.OnChange != nil {
		m.opts.OnChange(m.Held())
	}
}

// Run announces the node and keeps its share until ctx ends; it leaves the
// leases held (Release gives them up).
func (m *Manager) Run(ctx context.Context) error {
	if err := m.opts.Store.Announce(ctx, m.opts.Node, m.opts.Addr); err != nil {
		return err
	}
	every := m.opts.TTL / 3
	for {
		if err := m.Round(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("cluster round", "node", m.opts.Node, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

// Round renews the node's leases, then balances (see the package doc).
func (m *Manager) Round(ctx context.Context) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	defer m.changed()
	sent := time.Now()
	r, err := m.opts.Store.RenewAll(ctx, m.opts.Node, m.opts.TTL)
	if err != nil {
		return err
	}
	for name := range r.Held {
		if dom, ok := leaseDomain(name); ok {
			m.granted(dom, sent)
		}
	}
	for _, name := range r.Lost {
		if dom, ok := leaseDomain(name); ok {
			m.lost(ctx, dom)
		}
	}
	e := m.engine()
	if e == nil {
		return nil
	}
	for name, want := range r.Held {
		if dom, ok := leaseDomain(name); ok && want != "" && want != m.opts.Node {
			m.give(ctx, dom, "reserved for node "+want)
		}
	}
	nodes, err := m.opts.Store.Nodes(ctx)
	if err != nil {
		return err
	}
	live, draining, others := 0, false, 0
	for _, n := range nodes {
		if n.Name == m.opts.Node {
			draining = n.Draining
		}
		if n.Draining || n.Age >= m.opts.TTL {
			continue
		}
		live++
		if n.Name != m.opts.Node {
			others++
		}
	}
	held := m.Held()
	if draining {
		if others > 0 {
			for _, dom := range held {
				m.give(ctx, dom, "node drained")
			}
		}
		return nil
	}
	if err := e.Refresh(ctx); err != nil {
		return err
	}
	doms := e.Domains()
	if len(doms) == 0 || live == 0 {
		return nil
	}
	pinned, err := m.pinned(ctx)
	if err != nil {
		return err
	}
	leader := m.opts.Leader != nil && m.opts.Leader()
	rest := 0 // domains shared out: those not pinned to the leader
	for d := range doms {
		if !pinned[d] {
			rest++
		}
	}
	share := (rest + live - 1) / live
	leases, err := m.opts.Store.Leases(ctx, leasePrefix)
	if err != nil {
		return err
	}
	taken := map[uint64]bool{}
	elsewhere := map[uint64]pgkv.Lease{} // domains another node holds or is promised
	for _, l := range leases {
		dom, ok := leaseDomain(l.Name)
		if !ok {
			continue
		}
		if l.Holder != "" && !l.Expired && l.Holder != m.opts.Node {
			taken[dom] = true
			elsewhere[dom] = l
		}
		if l.Want != "" && l.Want != m.opts.Node {
			taken[dom] = true
			elsewhere[dom] = l
		}
	}
	mine := map[uint64]bool{} // held domains that count in the share
	for _, d := range held {
		if !pinned[d] {
			mine[d] = true
		}
	}
	// Domains that are gone: give their leases up.
	for _, d := range held {
		if _, ok := doms[d]; !ok {
			m.give(ctx, d, "domain deleted")
			delete(mine, d)
		}
	}
	// The leader takes the pinned domains: free ones at once, the others
	// once their holders hand them over.
	if leader {
		heldNow := map[uint64]bool{}
		for _, d := range m.Held() {
			heldNow[d] = true
		}
		for _, d := range slices.Sorted(maps.Keys(pinned)) {
			if _, ok := doms[d]; !ok || heldNow[d] {
				continue
			}
			if l, ok := elsewhere[d]; ok {
				if l.Want != m.opts.Node {
					if err := m.opts.Store.Reserve(ctx, LeaseName(d), m.opts.Node); err != nil {
						m.log.Warn("reserve a pinned domain", "domain", d, "err", err)
					} else {
						m.log.Info("pinned domain reserved for the leader", "domain", d, "node", m.opts.Node, "holder", l.Holder)
					}
				}
				if l.Holder != "" && !l.Expired {
					continue // handed over at its holder's next round
				}
			}
			if err := m.take(ctx, d); err != nil && !errors.Is(err, ErrOwned) {
				m.log.Warn("take pinned domain", "domain", d, "err", err)
			}
		}
	}
	// Over the share: give the surplus up (another node has room).
	if n := len(mine) - share; n > 0 {
		for _, d := range slices.Sorted(maps.Keys(mine))[len(mine)-n:] {
			m.give(ctx, d, fmt.Sprintf("balancing: share %d of %d domains on %d nodes", share, rest, live))
			delete(mine, d)
		}
	}
	// Under it: take free or expired domains, starting at a place of
	// this node's own so that nodes starting together rarely collide.
	free := make([]uint64, 0, len(doms))
	for d := range doms {
		if !mine[d] && !taken[d] && !pinned[d] {
			free = append(free, d)
		}
	}
	slices.Sort(free)
	if len(free) > 0 {
		h := fnv.New32a()
		h.Write([]byte(m.opts.Node))
		k := int(h.Sum32() % uint32(len(free)))
		free = append(free[k:], free[:k]...)
	}
	for _, d := range free {
		if len(mine) >= share {
			break
		}
		if err := m.take(ctx, d); err != nil {
			if !errors.Is(err, ErrOwned) {
				m.log.Warn("take domain", "domain", d, "err", err)
			}
			continue
		}
		mine[d] = true
	}
	return nil
}

// pinned is Options.Pinned's domains and those pulled here lately.
func (m *Manager) pinned(ctx context.Context) (map[uint64]bool, error) {
	out := map[uint64]bool{}
	if m.opts.Pinned != nil {
		p, err := m.opts.Pinned(ctx)
		if err != nil {
			return nil, fmt.Errorf("cluster: pinned domains: %w", err)
		}
		maps.Copy(out, p)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for d, at := range m.pulled {
		if time.Since(at) > pullPinFor {
			delete(m.pulled, d)
			continue
		}
		out[d] = true
	}
	return out, nil
}

// Pull brings domain dom here (the leader's control plane sets up a
// replication of one of its file systems): it reserves the lease for this
// node, so that its holder hands it over at its next round, and takes it
// then; the domain counts as pinned (Options.Pinned) for a minute. It
// waits until ctx ends.
func (m *Manager) Pull(ctx context.Context, dom uint64) error {
	m.mu.Lock()
	m.pulled[dom] = time.Now()
	_, held := m.until[dom]
	m.mu.Unlock()
	if held {
		return nil
	}
	if err := m.opts.Store.Reserve(ctx, LeaseName(dom), m.opts.Node); err != nil {
		return fmt.Errorf("cluster: pull domain %d: %w", dom, err)
	}
	for {
		m.opMu.Lock()
		err := m.take(ctx, dom)
		m.opMu.Unlock()
		if err == nil {
			m.changed()
			return nil
		}
		if !errors.Is(err, ErrOwned) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: domain %d not handed over: %w", dom, ctx.Err())
		case <-time.After(m.opts.TTL / 20):
		}
	}
}

// Settle runs rounds until this node, the leader, holds every pinned
// domain, or ctx ends (a dead leader's domains are free once their leases
// ran out).
func (m *Manager) Settle(ctx context.Context) error {
	for {
		err := m.Round(ctx)
		if err == nil {
			p, perr := m.pinned(ctx)
			if perr != nil {
				err = perr
			} else {
				doms := map[uint64]bool{}
				if e := m.engine(); e != nil {
					for d := range e.Domains() {
						doms[d] = true
					}
				}
				missing := 0
				for d := range p {
					if doms[d] && !m.Valid(d) {
						missing++
					}
				}
				if missing == 0 {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("cluster: pinned domains not all held: %w (%w)", ctx.Err(), err)
			}
			return fmt.Errorf("cluster: pinned domains not all held: %w", ctx.Err())
		case <-time.After(m.opts.TTL / 10):
		}
	}
}

// Release gives every domain up on a clean stop (after Run returned):
// each is detached, then its lease released, so another node takes it at
// once; the node leaves the list of nodes, so the others' shares grow at
// once too.
func (m *Manager) Release(ctx context.Context) {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	for _, d := range m.Held() {
		m.give(ctx, d, "node stopping")
	}
	if err := m.opts.Store.Depart(ctx, m.opts.Node); err != nil {
		m.log.Warn("node departs", "node", m.opts.Node, "err", err)
	}
	m.changed()
}
