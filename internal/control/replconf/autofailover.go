package replconf

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/replication"
)

// Automatic failover (opt-in per configuration, in the destination
// region): the destination promotes itself when
//
//   - it has heard nothing from the source region (no journal stream, no
//     heartbeat) for the configuration's AutoFailoverAfter,
//   - the source's lease has certainly expired: hard fencing (Options.Lease)
//     makes a source that got no acknowledgement for Lease stop taking
//     writes, and the destination waits Lease and half again since its
//     last contact (a margin for clock rates), so the source can no longer
//     accept a write the replica will not have, and
//   - the source region's control plane does not answer a direct call
//     either (a source that answers is up: its stream is what fails, and
//     an operator decides).
//
// The promotion is the one `regionfs failover` makes (without --force):
// recorded with its reason in the tombstone (a source that comes back
// learns it and fences itself), logged, counted
// (regionfs_replication_auto_failovers_total) and passed to
// Options.OnAutoFailover. A promoted configuration is gone, so it cannot
// be promoted twice; a link that comes back before the timeout resets it.

// DefaultAutoFailoverCheck is how often the conditions are checked.
const DefaultAutoFailoverCheck = time.Second

// AutoFailover is one automatic failover.
type AutoFailover struct {
	ReplicationID      string
	SourceFileSystemID string
	SourceRegion       string
	DestFileSystemID   string
	Region             string
	Time               time.Time
	// Down is how long the source had been out of reach.
	Down      time.Duration
	Reason    string
	Promotion replication.Promotion
}

type autoFailState struct {
	mu      sync.Mutex // guards the fields below
	count   map[string]uint64
	history []AutoFailover
	waiting map[string]string // why a configuration past its timeout is not promoted (logged once)
	started time.Time

	stop   chan struct{}
	done   chan struct{}
	cancel context.CancelFunc // ends a check under way
}

// StartAutoFailover begins checking the automatic failover conditions of
// the destination configurations (Close stops it).
func (m *Manager) StartAutoFailover() {
	a := &m.autoFail
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stop != nil {
		return
	}
	a.started = m.o.Clock()
	stop, done := make(chan struct{}), make(chan struct{})
	a.stop, a.done = stop, done
	every := m.o.AutoFailoverCheck
	if every <= 0 {
		every = DefaultAutoFailoverCheck
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() {
		defer close(done)
		defer cancel()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			m.checkAutoFailover(ctx)
		}
	}()
}

// Close stops the automatic failover checks and the background work.
func (m *Manager) Close() {
	// Background work starts under bgMu only while bgCtx is live
	// (finishPlannedLater): none starts after Wait.
	m.bgMu.Lock()
	m.bgCancel()
	m.bgMu.Unlock()
	m.bg.Wait()
	a := &m.autoFail
	a.mu.Lock()
	stop, done, cancel := a.stop, a.done, a.cancel
	a.stop = nil
	a.mu.Unlock()
	if stop != nil {
		cancel()
		close(stop)
		<-done
	}
}

// AutoFailovers lists the automatic failovers this region made since it
// started, oldest first.
func (m *Manager) AutoFailovers() []AutoFailover {
	m.autoFail.mu.Lock()
	defer m.autoFail.mu.Unlock()
	return append([]AutoFailover(nil), m.autoFail.history...)
}

// SetAutoFailover opts the destination configuration fsID takes part in
// into automatic failover after the source region has been out of reach
// for after (0 turns it off). It needs hard fencing.
func (m *Manager) SetAutoFailover(_ context.Context, fsID string, after time.Duration) (Description, error) {
	if after < 0 || after > 365*24*time.Hour {
		return Description{}, control.Errorf(control.ErrValidation, "The automatic failover delay must be between 0 and 8760h.")
	}
	if after > 0 && m.o.Lease <= 0 {
		return Description{}, control.Errorf(control.ErrValidation, "Automatic failover needs hard fencing (replicate.lease in both regions' configuration): without it a source cut off from %s could still take writes when the replica is promoted.", m.o.Name)
	}
	if after > 0 && after < time.Second {
		return Description{}, control.Errorf(control.ErrValidation, "The automatic failover delay must be at least 1s.")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var c *Config
	for _, x := range m.findLocked(fsID) {
		if x.Role == replication.RoleDestination {
			c = x
		}
	}
	if c == nil {
		return Description{}, control.Errorf(control.ErrReplicationNotFound, "%s is not the destination of a replication configuration in %s: set automatic failover in the destination region.", fsID, m.o.Name)
	}
	n := *c
	n.AutoFailoverAfter = after
	if err := m.save(&n); err != nil {
		return Description{}, err
	}
	c.AutoFailoverAfter = after
	m.log.Info("automatic failover policy set", "replication", c.ID, "fs_id", fsID, "auto_failover_after", after, "lease", m.o.Lease)
	return m.describeLocked(c), nil
}

// checkAutoFailover promotes the destinations whose conditions hold.
func (m *Manager) checkAutoFailover(ctx context.Context) {
	if m.o.Lease <= 0 {
		return
	}
	m.mu.Lock()
	var cs []*Config
	for _, c := range m.configs {
		if c.Role == replication.RoleDestination && c.AutoFailoverAfter > 0 && !c.Deleting && c.Promoted == nil && m.promoting[c.ID] == nil {
			cs = append(cs, c)
		}
	}
	m.mu.Unlock()
	for _, c := range cs {
		if ctx.Err() != nil {
			return
		}
		m.checkOne(ctx, c)
	}
}

func (m *Manager) checkOne(ctx context.Context, c *Config) {
	st, ok := m.o.Node.InboundStatus(c.ID)
	if !ok {
		return
	}
	a := &m.autoFail
	now := m.o.Clock()
	last := st.LastContact
	a.mu.Lock()
	if last.Before(a.started) {
		// Not heard from since this region started: the source may have
		// had acknowledgements from it until then.
		last = a.started
	}
	a.mu.Unlock()
	if last.Before(st.ReceivingSince) {
		// Not heard from since this process began receiving the
		// replication (the replica opened here after the checks began:
		// a region spread over nodes, a configuration received again):
		// the source may have been in contact with it, elsewhere or
		// before, until then. Counted from the checks' start, the delay
		// had run out already and the promotion came as soon as the
		// lease allowed.
		last = st.ReceivingSince
	}
	down := now.Sub(last)
	fence := m.o.Lease + m.o.Lease/2
	if down < c.AutoFailoverAfter || down < fence {
		m.setWaiting(c.ID, "")
		return
	}
	if rep, err := m.o.Engine.Replica(st.FS); err != nil || !rep.Consistent() {
		m.setWaiting(c.ID, "the replica has no consistent state yet (initial sync or resync)")
		return
	}
	err := m.o.Node.Call(ctx, c.SourceRegion, callPing, struct{}{}, nil)
	if !errors.Is(err, replication.ErrUnreachable) {
		m.setWaiting(c.ID, fmt.Sprintf("the source region %s answers calls although its stream has been silent for %s", c.SourceRegion, down.Round(time.Second)))
		return
	}
	down = m.o.Clock().Sub(last) // the ping may have taken a while
	why := fmt.Sprintf("automatic failover: no contact with the source region %s for %s (policy: %s), its hard-fencing lease (%s) has expired, and it does not answer",
		c.SourceRegion, down.Round(time.Millisecond), c.AutoFailoverAfter, m.o.Lease)
	m.log.Warn("automatic failover", "replication", c.ID, "fs_id", c.DestFileSystemID, "source_region", c.SourceRegion,
		"source_fs", c.SourceFileSystemID, "down", down, "policy", c.AutoFailoverAfter, "lease", m.o.Lease)
	p, err := m.promoteDestinationAs(ctx, c, promotion{tellSource: true, fenceSource: true, why: why})
	if err != nil {
		m.setWaiting(c.ID, "promotion failed: "+err.Error())
		return
	}
	f := AutoFailover{ReplicationID: c.ID, SourceFileSystemID: c.SourceFileSystemID, SourceRegion: c.SourceRegion,
		DestFileSystemID: c.DestFileSystemID, Region: m.o.Name, Time: m.o.Clock(), Down: down, Reason: why, Promotion: *p}
	a.mu.Lock()
	if a.count == nil {
		a.count = map[string]uint64{}
	}
	a.count[c.ID]++
	a.history = append(a.history, f)
	if len(a.history) > 64 {
		a.history = a.history[1:]
	}
	delete(a.waiting, c.ID)
	a.mu.Unlock()
	m.log.Warn("automatic failover done", "replication", c.ID, "fs_id", c.DestFileSystemID, "recovery_seq", p.Seq,
		"recovery_time", p.Time, "epoch", p.NewEpoch, "at_least_lost", p.AtLeastLost())
	if m.o.OnAutoFailover != nil {
		m.o.OnAutoFailover(ctx, f)
	}
}

// setWaiting logs, once per reason, why a configuration past its timeout
// is not promoted ("" clears it).
func (m *Manager) setWaiting(id, why string) {
	a := &m.autoFail
	a.mu.Lock()
	if a.waiting == nil {
		a.waiting = map[string]string{}
	}
	prev := a.waiting[id]
	if why == "" {
		delete(a.waiting, id)
	} else {
		a.waiting[id] = why
	}
	a.mu.Unlock()
	if why != "" && why != prev {
		m.log.Warn("automatic failover held back", "replication", id, "why", why)
	}
}

// Collector exports the automatic failover counters
// (regionfs_replication_auto_failovers_total).
func (m *Manager) Collector() prometheus.Collector { return autoFailCollector{m} }

var autoFailDesc = prometheus.NewDesc("regionfs_replication_auto_failovers_total",
	"Automatic failovers this region made (the destination promoted itself after the source region was out of reach past its policy and its lease).",
	[]string{"replication_id", "fs_id", "peer_region", "peer_fs_id"}, nil)

type autoFailCollector struct{ m *Manager }

func (c autoFailCollector) Describe(ch chan<- *prometheus.Desc) { ch <- autoFailDesc }

func (c autoFailCollector) Collect(ch chan<- prometheus.Metric) {
	a := &c.m.autoFail
	a.mu.Lock()
	seen := map[string]bool{}
	var ms []prometheus.Metric
	for i := len(a.history) - 1; i >= 0; i-- {
		f := a.history[i]
		if seen[f.ReplicationID] {
			continue
		}
		seen[f.ReplicationID] = true
		ms = append(ms, prometheus.MustNewConstMetric(autoFailDesc, prometheus.CounterValue, float64(a.count[f.ReplicationID]),
			f.ReplicationID, f.DestFileSystemID, f.SourceRegion, f.SourceFileSystemID))
	}
	a.mu.Unlock()
	for _, x := range ms {
		ch <- x
	}
}
