package replconf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/replication"
)

// Deletion modes.
const (
	DeleteAll       = "ALL_CONFIGURATIONS"
	DeleteLocalOnly = "LOCAL_CONFIGURATION_ONLY"
)

// Config is one replication configuration as each end stores it.
type Config struct {
	ID                   string           `json:"id"`
	Role                 replication.Role `json:"role"`
	SourceFileSystemID   string           `json:"sourceFs"`
	SourceRegion         string           `json:"sourceRegion"`
	SourceARN            string           `json:"sourceArn"`
	SourceOwnerID        string           `json:"sourceOwner"`
	SourceEngine         string           `json:"sourceEngine,omitempty"`
	OriginalSourceARN    string           `json:"originalSourceArn"`
	CreationTime         time.Time        `json:"created"`
	DestFileSystemID     string           `json:"destFs"`
	DestRegion           string           `json:"destRegion"`
	DestOwnerID          string           `json:"destOwner"`
	DestEngine           string           `json:"destEngine,omitempty"`
	AvailabilityZoneName string           `json:"az,omitempty"`
	KMSKeyID             string           `json:"kms,omitempty"`
	RoleArn              string           `json:"roleArn,omitempty"`
	Fork                 uint64           `json:"fork,omitempty"`
	// KeptCopy is the id of the copy of the destination's state kept
	// before a resync overwrote it.
	KeptCopy string `json:"keptCopy,omitempty"`
	Deleting bool   `json:"deleting,omitempty"`
	// MaxPromotionLag is the promotion guard (regionfs's policy, 0 for
	// none): Failover refuses to promote a replica further behind than
	// this unless forced. DeleteReplicationConfiguration keeps AWS's
	// semantics and always promotes.
	MaxPromotionLag time.Duration `json:"maxPromotionLag,omitempty"`
	// AutoFailoverAfter opts the destination into automatic failover (0:
	// off): once the source region has been out of reach this long and
	// its lease (hard fencing) has expired, the destination promotes
	// itself.
	AutoFailoverAfter time.Duration `json:"autoFailoverAfter,omitempty"`
	// Promoted is the promotion of this destination while its deletion
	// (a failover) is under way: written as soon as the replica is
	// promoted, before the protection changes, the source is told and
	// the configuration is deleted, so that a process that ends in
	// between completes the failover at its next start (Open) with the
	// same recovery point, and a retried deletion does too.
	Promoted *PendingPromotion `json:"promoted,omitempty"`
	// SourceAsked (destination): the promotion under way was asked for
	// by the source (its deletion, not a failover made without it).
	// Written before every promotion (so never left from an earlier one),
	// and read at a start that finds the replica promoted but no
	// Promoted record (the process ended in between): that failover is
	// completed as coordinated, the source writable. Before, it was
	// completed as one made without the source, which its next stream
	// then fenced (DISABLED beside the writable replica).
	SourceAsked bool `json:"sourceAsked,omitempty"`
	// PlannedFailover (source): a planned failover is under way, the
	// source fenced for it; PlannedDeleteSent: the destination has been
	// asked to promote itself (the source drained). A start undoes the
	// first (the source writable again, as after a failed planned
	// failover) and completes the second (PlannedFailover).
	PlannedFailover   bool `json:"plannedFailover,omitempty"`
	PlannedDeleteSent bool `json:"plannedDeleteSent,omitempty"`
	// Adopting (destination): an existing file system is being made the
	// destination (adopt: a copy kept, its state reset or a resync
	// begun). Recorded before, so that a process that ends in between
	// leaves a configuration that a start either drops (the file system
	// untouched) or finishes (it is a replica now: the source's retry gets
	// this configuration; a delete promotes it back to its own state).
	Adopting bool `json:"adopting,omitempty"`
	// Creating (destination): the configuration's new replica is being
	// created (its file system's creation token is the configuration's
	// id). Recorded before, so that a process that ends in between leaves
	// a configuration that a start either drops (no file system made) or
	// finishes (the replica made: the source's retry gets this
	// configuration; a delete promotes the replica), never a replica that
	// no configuration names.
	Creating bool `json:"creating,omitempty"`

	// goneWhileDeleting (source, in memory, m.mu): what the stream
	// learned while this region's delete was in flight, a promotion that
	// does not say it was coordinated. The delete's answer says whether
	// it was (deleteAtSource).
	goneWhileDeleting *replication.Gone
}

// PendingPromotion is a destination's promotion whose configuration is
// not deleted yet (Config.Promoted).
type PendingPromotion struct {
	Promotion replication.Promotion `json:"promotion"`
	// Coordinated: the source asked for the deletion (it stays
	// writable); otherwise a source that learns of it later fences itself.
	Coordinated bool `json:"coordinated,omitempty"`
	// Why is added to the reason the tombstone gives.
	Why string `json:"why,omitempty"`
}

// Tombstone remembers a configuration this region deleted, so that a
// source that calls later learns why.
type Tombstone struct {
	replication.Gone
	ID   string           `json:"id"`
	Role replication.Role `json:"role"`
	// SourceRegion is the configuration's source region: the only one
	// told what the tombstone says (empty in tombstones of earlier
	// versions).
	SourceRegion string    `json:"sourceRegion,omitempty"`
	SourceFS     string    `json:"sourceFs"`
	DestFS       string    `json:"destFs"`
	Deleted      time.Time `json:"deleted"`
	// Promotion is, at a destination, the promotion that ended the
	// configuration: what a retried deletion answers.
	Promotion *replication.Promotion `json:"promotion,omitempty"`
	// Unanswered: the failover was completed by a start after the
	// process ended in the middle of it, so its caller never had the
	// answer; a repeated DeleteReplicationConfiguration or failover of
	// the file system answers with Promotion.
	Unanswered bool `json:"unanswered,omitempty"`
	// Planned (source): a planned failover ended the configuration; the
	// source is fenced and lost nothing (no loss report).
	Planned bool `json:"planned,omitempty"`
}

// Description is a configuration as DescribeReplicationConfigurations
// shows it.
type Description struct {
	Config
	Status         replication.State
	StatusMessage  string
	LastReplicated time.Time
	Live           replication.Status
}

// Promotion is where a promoted destination's history stops, and what the
// source had announced by then (replication's own record of it).
type Promotion = replication.Promotion

// Change is one change a failover lost (engine's record of a journal
// transaction).
type Change = engine.Change

// Destination is the destination asked for at creation.
type Destination struct {
	Region               string
	FileSystemID         string // existing destination (id or ARN)
	AvailabilityZoneName string
	KMSKeyID             string
	RoleArn              string
}

// Node is the region's replication endpoint (package replication's Node)
// as the configurations use it: it knows its peer regions, ships and
// receives the file systems it is told to, reports their status,
// promotes a destination, drains a source, and carries the unary calls
// through which the two ends' control planes coordinate.
type Node interface {
	HasPeer(region string) bool
	AddOutbound(replication.OutboundSpec) error
	AddInbound(replication.InboundSpec) error
	RemoveOutbound(id string)
	AwaitLease(ctx context.Context, id string) error
	OutboundStatus(id string) (replication.Status, bool)
	InboundStatus(id string) (replication.Status, bool)
	Promote(ctx context.Context, id string) (replication.Promotion, error)
	ForcePromote(ctx context.Context, id string) (replication.Promotion, error)
	Drain(ctx context.Context, id string) (uint64, error)
	Verify(ctx context.Context, id string) (replication.VerifyResult, error)
	Call(ctx context.Context, region, method string, req, resp any) error
}

var _ Node = (*replication.Node)(nil)

// Options configure a Manager.
type Options struct {
	// Name is the region's name (us-east-1).
	Name string
	// Region holds the file systems; the configurations create, adopt,
	// protect and fence them through it, and flush their buffered writes
	// through its data plane.
	Region *control.Region
	Node   Node
	Engine *engine.Engine
	// KV is the server's store; the configurations keep their records
	// under 'r'.
	KV     kv.Store
	Logger *slog.Logger
	Clock  func() time.Time
	// Lease is the hard-fencing lease of the region pair (the node's
	// Options.Lease, the same in both regions); automatic failover needs
	// it (0: soft fencing, no automatic failover).
	Lease time.Duration
	// AutoFailoverCheck is how often the automatic failover conditions
	// are checked (1s).
	AutoFailoverCheck time.Duration
	// OnAutoFailover, when set, is told of every automatic failover
	// (notifications).
	OnAutoFailover func(ctx context.Context, f AutoFailover)
	// Own, when set, returns the engine's file system called name, making
	// this node serve it first when another node of the region does (a
	// region whose file systems are spread over nodes: a replicated file
	// system is served where the replication runs). Default: Engine.FS.
	Own func(ctx context.Context, name string) (*engine.FS, error)
}

// Manager holds a region's replication configurations.
type Manager struct {
	o   Options
	log *slog.Logger

	mu       sync.Mutex         // guards the fields below
	configs  map[string]*Config // by role/id
	creating map[string]bool    // source file systems with a creation under way
	// promoting: destination configurations (by id) whose failover is
	// under way, the replica's promotion outside the lock
	// (promoteDestinationGone) or its completion (resumePromoted);
	// closed when it ends. Nothing else promotes, completes, resumes or
	// re-creates them meanwhile.
	promoting map[string]chan struct{}
	autoFail  autoFailState

	// hook, when set (tests), is called between the steps of the
	// multi-step operations, named by step, to stop or crash there.
	hook func(step, id string)
	// faultHook, when set (tests), returns the error an operation fails
	// with at a step (fault).
	faultHook func(step, id string) error

	// Background work (completing a planned failover after a start, or
	// after its destination did not answer); Close ends it and waits.
	bgMu     sync.Mutex // guards starting work against Close's cancel
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
}

// New builds a manager; Open loads its configurations.
func New(o Options) *Manager {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	m := &Manager{o: o, log: o.Logger.With("region", o.Name), configs: map[string]*Config{}, creating: map[string]bool{},
		promoting: map[string]chan struct{}{}}
	m.bgCtx, m.bgCancel = context.WithCancel(context.Background())
	return m
}

// step calls the test hook, if any, between the steps of an operation.
func (m *Manager) step(name, id string) {
	if m.hook != nil {
		m.hook(name, id)
	}
}

// KV keys: 'r' 'c' role id → Config; 'r' 't' role id → Tombstone.
// Tombstones are keyed by role as configurations are: a same-region
// replication has both ends in one store, and its source's record (a
// planned failover's, a fenced source's loss report) and its
// destination's (the promotion a repeated delete answers) are two. Before,
// both were 'r' 't' id and the later overwrote the earlier; such a
// legacy tombstone is still read (legacyTombKey).
func configKey(role replication.Role, id string) []byte { return []byte("rc" + string(role[0]) + id) }
func tombKey(role replication.Role, id string) []byte   { return []byte("rt" + string(role[0]) + id) }
func legacyTombKey(id string) []byte                    { return []byte("rt" + id) }

func mapKey(role replication.Role, id string) string { return string(role) + "/" + id }

// Open loads the configurations and resumes shipping and receiving.
func (m *Manager) Open(ctx context.Context) error {
	it, err := m.o.KV.NewIter([]byte("rc"), []byte("rd"))
	if err != nil {
		return err
	}
	var cs []*Config
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			it.Close()
			return err
		}
		c := &Config{}
		if err := json.Unmarshal(v, c); err != nil {
			it.Close()
			return fmt.Errorf("replication: config %q: %w", it.Key(), err)
		}
		cs = append(cs, c)
	}
	err = it.Error()
	it.Close()
	if err != nil {
		return err
	}
	if err := m.protectFenced(ctx); err != nil {
		return err
	}
	m.releaseEnded(ctx, cs)
	// An adoption the process ended in the middle of: dropped before the
	// file system was touched, finished after. A creation likewise:
	// dropped before its replica was made, finished after.
	adopted := cs[:0]
	for _, c := range cs {
		if c.Role == replication.RoleDestination && c.Creating {
			keep, err := m.finishCreation(ctx, c)
			if err != nil {
				return fmt.Errorf("replication %s: its creation of a replica: %w", c.ID, err)
			}
			if !keep {
				continue
			}
		}
		if c.Role == replication.RoleDestination && c.Adopting {
			m.mu.Lock()
			keep, err := m.finishAdoptionLocked(ctx, c)
			m.mu.Unlock()
			if err != nil {
				return fmt.Errorf("replication %s: its adoption of %s: %w", c.ID, c.DestFileSystemID, err)
			}
			if !keep {
				continue
			}
		}
		adopted = append(adopted, c)
	}
	cs = adopted
	// A failover the process ended in the middle of, after the replica's
	// promotion: completed (never a replication resumed into a promoted
	// file system).
	live := cs[:0]
	for _, c := range cs {
		if rec := m.promotedAtStart(c); rec != nil {
			if err := m.completePromotion(ctx, c, rec); err != nil {
				return fmt.Errorf("replication %s: complete its failover: %w", c.ID, err)
			}
			continue
		}
		live = append(live, c)
	}
	cs = live
	// A planned failover the process ended in the middle of: undone
	// before the destination was asked to promote itself, completed
	// (finishPlanned, once the destination answers) after.
	var planned []*Config
	for _, c := range cs {
		switch {
		case c.Role != replication.RoleSource || !c.PlannedFailover:
		case c.PlannedDeleteSent:
			// Its stop says why (a planned failover) before the
			// replication resumes: an acknowledgement lifts a lease's
			// stop, never this one. A stop written before the reasons
			// were recorded none, and any acknowledgement lifted it.
			if fs, err := m.o.Engine.FS(c.SourceEngine); err == nil {
				if mode, _ := fs.Mode(); mode == engine.ModeReplica {
					break
				}
				if err := fs.Replica().Stop(ctx, engine.StopPlanned); err != nil {
					return fmt.Errorf("replication %s: keep its planned failover's stop: %w", c.ID, err)
				}
			}
			planned = append(planned, c)
		default:
			if err := m.undoPlanned(ctx, c); err != nil {
				return fmt.Errorf("replication %s: undo its planned failover: %w", c.ID, err)
			}
		}
	}
	// remove clears the file system's role before it deletes the
	// configuration: a crash between the two leaves a configuration whose
	// file system no longer says it is part of one (it could be deleted,
	// its protection changed, under a replication that resumes here).
	// The configuration is still there, so its role is too.
	for _, c := range cs {
		fsID := c.SourceFileSystemID
		if c.Role == replication.RoleDestination {
			fsID = c.DestFileSystemID
		}
		if err := m.o.Region.SetReplicationRole(ctx, fsID, string(c.Role)); err != nil && !errors.Is(err, control.ErrFileSystemNotFound) {
			m.log.Error("replication role not restored", "replication", c.ID, "fs_id", fsID, "err", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range cs {
		m.configs[mapKey(c.Role, c.ID)] = c
		if err := m.start(c); err != nil {
			m.log.Error("resume replication", "replication", c.ID, "err", err)
		}
	}
	for _, c := range planned {
		m.finishPlannedLater(c)
	}
	return nil
}

// releaseEnded lifts, at start, what a replication that ended while the
// process did left on its source's file system: the lease's stop
// (engine.StopLease) of a file system that is the source of none of the
// configurations cs (all of the region's), and the journal pins of
// replications that are none of them. Ending a source's replication
// deletes its configuration, then removes its outbound, which lifts both
// (sourceGone, deleteAtSource; a failover's wait for the lease stops the
// source's writes before the destination tells it, so a coordinated one
// ends there): killed in between, the file system stayed read-only for
// good, its protection ENABLED, and its journal pinned. A source's
// configuration is deleted only once its destination can no longer
// promote under it (the destination answered the delete, or said the
// replication is gone from it, and a promotion this region took no part
// in fenced the file system at the promoted epoch first: Resume keeps
// that fence), or by LOCAL_CONFIGURATION_ONLY, which ends the
// replication here whatever the destination does. Other stops (a planned
// failover's) stay.
func (m *Manager) releaseEnded(ctx context.Context, cs []*Config) {
	sources, ids := map[string]bool{}, map[string]bool{}
	for _, c := range cs {
		if c.Role == replication.RoleSource {
			sources[c.SourceEngine], ids[c.ID] = true, true
		}
	}
	for _, name := range m.o.Engine.Names() {
		fs, err := m.o.Engine.FS(name)
		if err != nil {
			continue
		}
		rep := fs.Replica()
		for pin := range rep.Pins() {
			if id, ok := replication.OutboundPinID(pin); ok && !ids[id] {
				if err := rep.ClearPin(pin); err != nil {
					m.log.Warn("journal pin of an ended replication", "fs_id", name, "replication", id, "err", err)
					continue
				}
				m.log.Info("journal pin of an ended replication released", "fs_id", name, "replication", id)
			}
		}
		if sources[name] || rep.Stops()&engine.StopLease == 0 {
			continue
		}
		if err := rep.Resume(ctx, engine.StopLease); err != nil {
			m.log.Error("lift the lease's stop of an ended replication", "fs_id", name, "err", err)
			continue
		}
		mode, _ := fs.Mode()
		m.log.Warn("the lease's stop of a replication that ended while the process did is lifted", "fs_id", name,
			"mode", mode, "stops", rep.Stops())
	}
}

// own returns the local file system called name (Options.Own).
func (m *Manager) own(ctx context.Context, name string) (*engine.FS, error) {
	if m.o.Own != nil {
		return m.o.Own(ctx, name)
	}
	return m.o.Engine.FS(name)
}

// LocalFileSystems lists the engine names of this region's ends of every
// replication configuration kept in s (sources and destinations), sorted:
// the file systems whose shipping or apply runs in this region.
func LocalFileSystems(s kv.Store) ([]string, error) {
	it, err := s.NewIter([]byte("rc"), []byte("rd"))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			return nil, err
		}
		var c Config
		if err := json.Unmarshal(v, &c); err != nil {
			return nil, fmt.Errorf("replication: config %q: %w", it.Key(), err)
		}
		name := c.SourceEngine
		if c.Role == replication.RoleDestination {
			name = c.DestEngine
		}
		if name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	slices.Sort(out)
	return out, nil
}

// Resume starts shipping or receiving every configuration whose local file
// system this node serves now and whose replication does not run yet (a
// region whose file systems are spread over nodes: one came here after
// Open). It returns how many it started.
func (m *Manager) Resume() (int, error) {
	var errs []error
	// A failover that ended in the middle of it where the file system
	// was served before: completed, as Open does.
	m.mu.Lock()
	var promoted []*Config
	for _, c := range m.configs {
		if m.unpromotedLocked(c) && m.promotedAtStart(c) != nil {
			promoted = append(promoted, c)
		}
	}
	m.mu.Unlock()
	for _, c := range promoted {
		m.step("resume-promoted", c.ID)
		if err := m.resumePromoted(context.Background(), c); err != nil {
			errs = append(errs, fmt.Errorf("replication %s: complete its failover: %w", c.ID, err))
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	started := 0
	for _, c := range m.configs {
		name, running := c.SourceEngine, false
		if c.Role == replication.RoleSource {
			_, running = m.o.Node.OutboundStatus(c.ID)
		} else {
			name = c.DestEngine
			_, running = m.o.Node.InboundStatus(c.ID)
		}
		if running || c.Deleting || c.Promoted != nil || m.promoting[c.ID] != nil {
			continue
		}
		if _, err := m.o.Engine.FS(name); err != nil {
			continue // not served here (yet)
		}
		if c.Role == replication.RoleDestination && c.Adopting {
			// An adoption that failed, or ended with the process, after it
			// made the file system a replica: finished first (or dropped).
			keep, err := m.finishAdoptionLocked(context.Background(), c)
			if err != nil {
				errs = append(errs, fmt.Errorf("replication %s: its adoption of %s: %w", c.ID, c.DestFileSystemID, err))
				continue
			}
			if !keep {
				continue
			}
		}
		if err := m.start(c); err != nil {
			errs = append(errs, fmt.Errorf("replication %s: %w", c.ID, err))
			continue
		}
		started++
		m.log.Info("replication resumed", "replication", c.ID, "role", c.Role, "fs_id", name)
	}
	return started, errors.Join(errs...)
}

// unpromotedLocked reports whether c is a destination configuration of
// this manager whose replica is not received here and no failover of
// which is under way or recorded: one whose file system the engine says
// is promoted is a failover that ended before its record (Resume
// completes it). m.mu held.
func (m *Manager) unpromotedLocked(c *Config) bool {
	if c.Role != replication.RoleDestination || c.Deleting || c.Promoted != nil || m.promoting[c.ID] != nil ||
		m.configs[mapKey(c.Role, c.ID)] != c {
		return false
	}
	_, running := m.o.Node.InboundStatus(c.ID)
	return !running
}

// resumePromoted completes, for Resume, the failover of c, whose replica
// Resume found promoted without a record of it (completePromotion), under
// the same claim (m.promoting) as a failover: unless c ended, or a
// failover of it began, since Resume looked. Before, it ran unclaimed: a
// delete of c meanwhile completed the failover too and the two wrote
// their tombstones over each other, and a configuration created over the
// same file system since had its protection set ENABLED and its role
// cleared by the stale completion.
func (m *Manager) resumePromoted(ctx context.Context, c *Config) error {
	m.mu.Lock()
	var rec *PendingPromotion
	if m.unpromotedLocked(c) {
		rec = m.promotedAtStart(c)
	}
	if rec == nil {
		m.mu.Unlock()
		return nil
	}
	done := make(chan struct{})
	m.promoting[c.ID] = done
	m.mu.Unlock()
	defer m.endPromoting(c.ID, done)
	return m.completePromotion(ctx, c, rec)
}

// claimPromotionLocked claims c's failover (m.promoting), waiting for one under
// way to end first; it fails (ErrReplicationNotFound) once c is no
// longer a configuration of m. m.mu held, and held again on return.
func (m *Manager) claimPromotionLocked(ctx context.Context, c *Config) (chan struct{}, error) {
	for {
		if m.configs[mapKey(c.Role, c.ID)] != c {
			return nil, control.Errorf(control.ErrReplicationNotFound, "Replication configuration %s does not exist.", c.ID)
		}
		busy := m.promoting[c.ID]
		if busy == nil {
			break
		}
		m.mu.Unlock()
		m.step("claim-wait", c.ID)
		select {
		case <-busy:
		case <-ctx.Done():
			m.mu.Lock()
			return nil, ctx.Err()
		}
		m.mu.Lock()
	}
	done := make(chan struct{})
	m.promoting[c.ID] = done
	return done, nil
}

// endPromoting ends the claim done of c's failover (m.mu not held).
func (m *Manager) endPromoting(id string, done chan struct{}) {
	m.mu.Lock()
	if m.promoting[id] == done {
		delete(m.promoting, id)
	}
	m.mu.Unlock()
	close(done)
}

// receiveLocked starts receiving the destination configuration c unless
// it is received already or its file system is not served by this node
// (Resume starts it once it is). m.mu held.
func (m *Manager) receiveLocked(c *Config) error {
	if _, running := m.o.Node.InboundStatus(c.ID); running {
		return nil
	}
	if _, err := m.o.Engine.FS(c.DestEngine); err != nil {
		return nil
	}
	return m.start(c)
}

// fault returns the error a test injects at step (SetFault), if any.
func (m *Manager) fault(step, id string) error {
	if m.faultHook != nil {
		return m.faultHook(step, id)
	}
	return nil
}

func (m *Manager) start(c *Config) error {
	switch c.Role {
	case replication.RoleSource:
		return m.o.Node.AddOutbound(replication.OutboundSpec{ID: c.ID, SourceFS: c.SourceEngine, DestRegion: c.DestRegion, DestFS: c.DestFileSystemID})
	default:
		return m.o.Node.AddInbound(replication.InboundSpec{ID: c.ID, SourceRegion: c.SourceRegion, SourceFS: c.SourceFileSystemID, DestFS: c.DestEngine, Fork: c.Fork})
	}
}

func (m *Manager) save(c *Config) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	batch := m.o.KV.NewBatch()
	defer batch.Close()
	batch.Set(configKey(c.Role, c.ID), b)
	return batch.Commit(true)
}

func (m *Manager) remove(c *Config, tomb *Tombstone) error {
	fsID := c.SourceFileSystemID
	if c.Role == replication.RoleDestination {
		fsID = c.DestFileSystemID
	}
	// fsID is empty for a creation that made no replica (Creating).
	if fsID != "" {
		if err := m.o.Region.SetReplicationRole(context.Background(), fsID, ""); err != nil && !errors.Is(err, control.ErrFileSystemNotFound) {
			m.log.Warn("replication role not cleared", "fs_id", fsID, "err", err)
		}
	}
	batch := m.o.KV.NewBatch()
	defer batch.Close()
	batch.Delete(configKey(c.Role, c.ID))
	if tomb != nil {
		b, err := json.Marshal(tomb)
		if err != nil {
			return err
		}
		batch.Set(tombKey(c.Role, c.ID), b)
	}
	if err := batch.Commit(true); err != nil {
		return err
	}
	delete(m.configs, mapKey(c.Role, c.ID))
	return nil
}

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "rc-" + hex.EncodeToString(b)
}

// findLocked returns the configurations of this region that have fsID (id
// or ARN) at either end, destination roles first: either region answers
// for a configuration by the id of either of its file systems.
func (m *Manager) findLocked(fsID string) []*Config {
	var out []*Config
	for _, c := range m.configs {
		if c.SourceFileSystemID == fsID || c.SourceARN == fsID || c.DestFileSystemID == fsID || destARN(c) == fsID {
			out = append(out, c)
		}
	}
	sortByRole(out)
	return out
}

// sortByRole puts destination ends before source ends (a stable order for
// the ends of a same-region replication, both in this region).
func sortByRole(cs []*Config) {
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].Role < cs[j].Role })
}

func destARN(c *Config) string {
	return fmt.Sprintf("arn:aws:elasticfilesystem:%s:%s:file-system/%s", c.DestRegion, c.DestOwnerID, c.DestFileSystemID)
}

// Create makes a replication configuration with sourceID as its source.
// A retry that matches an existing configuration returns it.
func (m *Manager) Create(ctx context.Context, sourceID string, dests []Destination) (Description, error) {
	if len(dests) != 1 {
		return Description{}, control.Errorf(control.ErrValidation, "A replication configuration has exactly one destination, %d given.", len(dests))
	}
	d := dests[0]
	if d.Region == "" {
		d.Region = m.o.Name
	}
	if !m.o.Node.HasPeer(d.Region) {
		return Description{}, control.Errorf(control.ErrValidation, "Destination region %q is not one this region replicates to.", d.Region)
	}
	src, err := m.o.Region.DescribeFileSystem(ctx, sourceID)
	if err != nil {
		return Description{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.findLocked(src.ID) {
		if c.Role == replication.RoleDestination && c.DestFileSystemID == src.ID {
			return Description{}, control.Errorf(control.ErrBadRequest, "File system %s is the destination of replication configuration %s and cannot be a source.", src.ID, c.ID)
		}
	}
	for _, c := range m.findLocked(src.ID) {
		if c.Role != replication.RoleSource || c.SourceFileSystemID != src.ID {
			continue
		}
		// A retry, answered with c if it asks for c's destination (an
		// availability zone or key of its own is another destination;
		// the destination region checks the rest when the source's
		// configuration was never made: sameDestination).
		same := c.DestRegion == d.Region && (d.FileSystemID == "" || d.FileSystemID == c.DestFileSystemID || d.FileSystemID == destARN(c)) &&
			d.AvailabilityZoneName == c.AvailabilityZoneName && d.RoleArn == c.RoleArn
		if same && d.KMSKeyID == c.KMSKeyID {
			return m.describeLocked(c), nil
		}
		if same && m.sameKeyAtDestination(ctx, c, src, d) {
			// Another name of the same key in the destination region
			// (an alias and its id, an ARN): only that region knows.
			return m.describeLocked(c), nil
		}
		return Description{}, control.Errorf(control.ErrReplicationAlreadyExists, "File system %s is already the source of replication configuration %s (to %s in %s).", src.ID, c.ID, c.DestFileSystemID, c.DestRegion)
	}
	if src.LifeCycleState != control.StateAvailable {
		return Description{}, control.Errorf(control.ErrIncorrectLifeCycleState, "File system %s is %s.", src.ID, src.LifeCycleState)
	}
	if src.Protection == control.ProtectionReplicating {
		return Description{}, control.Errorf(control.ErrBadRequest, "File system %s is a replication destination.", src.ID)
	}
	if d.Region == m.o.Name && d.FileSystemID != "" {
		if dst, err := m.o.Region.DescribeFileSystem(ctx, d.FileSystemID); err == nil && dst.ID == src.ID {
			return Description{}, control.Errorf(control.ErrBadRequest, "A file system cannot replicate to itself.")
		}
	}
	fs, err := m.own(ctx, src.ID)
	if err != nil {
		return Description{}, err
	}
	epochs, err := fs.Replica().EpochHistory()
	if err != nil {
		return Description{}, err
	}
	now := m.o.Clock().UTC().Truncate(time.Second)
	req := createDestReq{
		ID: newID(), SourceFS: src.ID, SourceARN: src.ARN, SourceOwner: src.OwnerID, OriginalARN: src.ARN,
		Created: now, Dest: d, Lineage: fs.Lineage(), Epochs: epochs, SourceDurable: fs.Replica().DurableSeq(),
	}
	if m.creating[src.ID] {
		return Description{}, control.Errorf(control.ErrConflict, "A replication configuration for %s is being created.", src.ID)
	}
	m.creating[src.ID] = true
	var resp createDestResp
	m.mu.Unlock()
	err = fromPeer(m.o.Node.Call(ctx, d.Region, callCreateDestination, req, &resp))
	m.mu.Lock()
	delete(m.creating, src.ID)
	if err != nil {
		return Description{}, err
	}
	c := &Config{
		ID: resp.ID, Role: replication.RoleSource, SourceFileSystemID: src.ID, SourceRegion: m.o.Name, SourceARN: src.ARN,
		SourceOwnerID: src.OwnerID, SourceEngine: src.ID, OriginalSourceARN: src.ARN, CreationTime: now,
		DestFileSystemID: resp.FS, DestRegion: d.Region, DestOwnerID: resp.Owner,
		AvailabilityZoneName: d.AvailabilityZoneName, KMSKeyID: d.KMSKeyID, RoleArn: d.RoleArn, KeptCopy: resp.KeptCopy,
	}
	if err := m.o.Region.SetReplicationRole(ctx, src.ID, string(replication.RoleSource)); err != nil {
		return Description{}, err
	}
	if err := m.save(c); err != nil {
		return Description{}, err
	}
	m.configs[mapKey(c.Role, c.ID)] = c
	if err := m.start(c); err != nil {
		return Description{}, err
	}
	m.log.Info("replication created", "replication", c.ID, "fs_id", src.ID, "dest_region", d.Region, "dest_fs", resp.FS)
	desc := m.describeLocked(c)
	m.mu.Unlock()
	m.awaitFirstLease(ctx, c)
	m.mu.Lock()
	return desc, nil
}

// createLeaseWait bounds how long a creation waits for its source's first
// lease (awaitFirstLease).
const createLeaseWait = 2 * time.Second

// awaitFirstLease waits, for at most createLeaseWait, until the new
// configuration c's source holds the lease its destination's first
// answer grants. With hard fencing a source takes writes only under such
// a lease (replication.AddOutbound stops them until then): its
// destination began its promotion's wait when it added the replication,
// before this region even had the answer to its creation. Waiting here,
// CreateReplicationConfiguration returns (as on AWS, ENABLING) with the
// source taking writes, a round trip or two later, instead of returning
// first and refusing the writes that follow it as a read-only file
// system. A destination that does not answer in time leaves the source
// read-only until it does (logged); the creation stands. Without hard
// fencing it returns at once. m.mu not held.
func (m *Manager) awaitFirstLease(ctx context.Context, c *Config) {
	wctx, cancel := context.WithTimeout(ctx, createLeaseWait)
	defer cancel()
	start := m.o.Clock()
	if err := m.o.Node.AwaitLease(wctx, c.ID); err != nil {
		m.log.Warn("replication created: its destination has not answered yet; the source takes writes once it does (hard fencing)",
			"replication", c.ID, "fs_id", c.SourceFileSystemID, "dest_region", c.DestRegion, "waited", m.o.Clock().Sub(start), "err", err)
	}
}

// sameKeyAtDestination asks c's destination region whether d, which asks
// for c's destination with a KMS key named otherwise, asks for the same
// key (callExistingDestination: createDestination answers with c only if
// sameDestination finds it the same, and makes nothing).
// m.mu held; released during the call.
func (m *Manager) sameKeyAtDestination(ctx context.Context, c *Config, src control.FileSystem, d Destination) bool {
	if m.creating[src.ID] {
		return false
	}
	m.creating[src.ID] = true
	req := createDestReq{ID: c.ID, SourceFS: src.ID, SourceARN: src.ARN, SourceOwner: src.OwnerID, OriginalARN: c.OriginalSourceARN,
		Created: c.CreationTime, Dest: d, Existing: true}
	var resp createDestResp
	m.mu.Unlock()
	err := fromPeer(m.o.Node.Call(ctx, d.Region, callExistingDestination, req, &resp))
	m.mu.Lock()
	delete(m.creating, src.ID)
	if pe := (*PeerError)(nil); errors.As(err, &pe) && pe.Code == codeUnknownCall {
		// A release from before the question: it cannot say, and the
		// keys are compared as strings (as that release does).
		m.log.Warn("retried creation names the destination's KMS key otherwise and the destination region's release cannot compare key names: refused as another destination",
			"replication", c.ID, "dest_region", d.Region, "kms", d.KMSKeyID, "configured_kms", c.KMSKeyID)
		return false
	}
	if err != nil {
		m.log.Debug("retried creation: the destination region does not take the KMS key for the configuration's", "replication", c.ID, "kms", d.KMSKeyID, "err", err)
		return false
	}
	_, live := m.configs[mapKey(c.Role, c.ID)]
	return live && resp.ID == c.ID && resp.FS == c.DestFileSystemID
}

// createDestination is the destination region's side of Create.
func (m *Manager) createDestination(ctx context.Context, from string, req createDestReq) (createDestResp, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.configs {
		if c.Role == replication.RoleDestination && c.SourceRegion == from && c.SourceFileSystemID == req.SourceFS {
			if c.Promoted != nil || m.promoting[c.ID] != nil {
				return createDestResp{}, control.Errorf(control.ErrConflict, "Replication configuration %s of %s is being deleted (failover); try again once it is.", c.ID, req.SourceFS)
			}
			// A retry of a creation whose reply was lost, or that failed
			// after the file system was adopted: the configuration is
			// finished and received here before it is answered (before,
			// a failed adoption's configuration was answered as it was:
			// never received, its protection not REPLICATING, until a
			// restart).
			if c.Adopting {
				keep, err := m.finishAdoptionLocked(ctx, c)
				if err != nil {
					return createDestResp{}, err
				}
				if !keep {
					break // untouched, dropped: adopted anew below
				}
			}
			// It is answered with c only if c is what it asks for;
			// before, any request from the same source file system was.
			if err := m.sameDestination(ctx, c, req.Dest); err != nil {
				return createDestResp{}, err
			}
			if err := m.receiveLocked(c); err != nil {
				return createDestResp{}, err
			}
			return createDestResp{ID: c.ID, FS: c.DestFileSystemID, Owner: c.DestOwnerID, KeptCopy: c.KeptCopy}, nil
		}
	}
	if req.Existing {
		return createDestResp{}, control.Errorf(control.ErrReplicationNotFound, "No replication configuration of %s from %s here.", req.SourceFS, from)
	}
	// The id names another configuration (of another source file system,
	// or from another region): refused, nothing changed. Before, its record
	// was overwritten by this one (save) and, if the replica could not be
	// made, removed. (An empty id or source file system is refused as
	// malformed by Hooks.Call.)
	if _, used := m.configs[mapKey(replication.RoleDestination, req.ID)]; used {
		return createDestResp{}, control.Errorf(control.ErrConflict, "Replication configuration id %s is already in use in %s for another source file system.", req.ID, m.o.Name)
	}
	d := req.Dest
	c := &Config{
		ID: req.ID, Role: replication.RoleDestination, SourceFileSystemID: req.SourceFS, SourceRegion: from, SourceARN: req.SourceARN,
		SourceOwnerID: req.SourceOwner, OriginalSourceARN: req.OriginalARN, CreationTime: req.Created,
		DestRegion: m.o.Name, AvailabilityZoneName: d.AvailabilityZoneName, KMSKeyID: d.KMSKeyID, RoleArn: d.RoleArn,
	}
	if d.FileSystemID == "" {
		// A file system with the creation's token (its id) is the replica
		// an earlier try made and did not record (the source's retry gets
		// it), unless it is no replica or another configuration's: then
		// the token is not this creation's (before, CreateReplica's
		// idempotent answer made this region's own file system, or
		// another configuration's replica, this one's destination).
		fss, _, err := m.o.Region.DescribeFileSystems(ctx, control.FileSystemQuery{CreationToken: req.ID})
		if err != nil {
			return createDestResp{}, err
		}
		if len(fss) > 0 && (!fss[0].Replica || len(m.findLocked(fss[0].ID)) > 0) {
			return createDestResp{}, control.Errorf(control.ErrReplicationAlreadyExists,
				"Replication configuration %s names a file system here that is not its replica.", req.ID)
		}
		c.Creating = true
		if err := m.save(c); err != nil {
			return createDestResp{}, err
		}
		m.step("creating", c.ID)
		dst, err := m.o.Region.CreateReplica(ctx, control.ReplicaInput{CreationToken: req.ID, SourceARN: req.SourceARN,
			AvailabilityZoneName: d.AvailabilityZoneName, KMSKeyID: d.KMSKeyID})
		if err != nil {
			if rerr := m.remove(c, nil); rerr != nil {
				m.log.Error("forget a failed creation", "replication", c.ID, "err", rerr)
			}
			return createDestResp{}, err
		}
		m.step("created", c.ID)
		c.DestFileSystemID, c.DestOwnerID, c.DestEngine = dst.ID, dst.OwnerID, dst.ID
		c.Creating = false
	} else {
		dst, err := m.o.Region.DescribeFileSystem(ctx, d.FileSystemID)
		if err != nil {
			return createDestResp{}, err
		}
		if len(m.findLocked(dst.ID)) > 0 {
			return createDestResp{}, control.Errorf(control.ErrReplicationAlreadyExists, "File system %s is already part of a replication configuration.", dst.ID)
		}
		if dst.LifeCycleState != control.StateAvailable {
			return createDestResp{}, control.Errorf(control.ErrIncorrectLifeCycleState, "Destination file system %s is %s.", dst.ID, dst.LifeCycleState)
		}
		if dst.Protection != control.ProtectionDisabled {
			return createDestResp{}, control.Errorf(control.ErrConflict, "Destination file system %s has replication overwrite protection %s; set it to DISABLED first.", dst.ID, dst.Protection)
		}
		c.DestFileSystemID, c.DestOwnerID, c.DestEngine = dst.ID, dst.OwnerID, dst.ID
		c.Adopting = true
		if err := m.save(c); err != nil {
			return createDestResp{}, err
		}
		m.step("adopting", c.ID)
		err = m.adopt(ctx, c, dst, req)
		if err == nil {
			err = m.fault("adopt", c.ID)
		}
		if err != nil {
			if fs, ferr := m.o.Engine.FS(c.DestEngine); ferr == nil {
				if mode, _ := fs.Mode(); mode == engine.ModeReplica {
					// Adopted, then failed: kept, Adopting (the source's
					// retry, Resume or a start finishes it; a delete
					// promotes it back).
					m.configs[mapKey(c.Role, c.ID)] = c
					return createDestResp{}, err
				}
			}
			if rerr := m.remove(c, nil); rerr != nil {
				m.log.Error("forget a failed adoption", "replication", c.ID, "err", rerr)
			}
			return createDestResp{}, err
		}
		// Adopted: from here a failure keeps the configuration, Adopting,
		// for the source's retry (or a start) to finish; its fork and
		// kept copy are recorded first.
		m.configs[mapKey(c.Role, c.ID)] = c
		if err := m.save(c); err != nil {
			return createDestResp{}, err
		}
		m.step("adopted", c.ID)
		if err := m.o.Region.SetProtection(ctx, dst.ID, control.ProtectionReplicating); err != nil {
			return createDestResp{}, err
		}
		n := *c
		n.Adopting = false
		if err := m.save(&n); err != nil {
			return createDestResp{}, err
		}
		c.Adopting = false
	}
	if err := m.o.Region.SetReplicationRole(ctx, c.DestFileSystemID, string(replication.RoleDestination)); err != nil {
		return createDestResp{}, err
	}
	if err := m.save(c); err != nil {
		return createDestResp{}, err
	}
	m.configs[mapKey(c.Role, c.ID)] = c
	if err := m.start(c); err != nil {
		return createDestResp{}, err // kept: the source's retry starts it
	}
	m.log.Info("replication destination ready", "replication", c.ID, "fs_id", c.DestFileSystemID, "source_region", from,
		"source_fs", req.SourceFS, "fork", c.Fork, "kept_copy", c.KeptCopy)
	return createDestResp{ID: c.ID, FS: c.DestFileSystemID, Owner: c.DestOwnerID, KeptCopy: c.KeptCopy}, nil
}

// sameDestination refuses (ReplicationAlreadyExists, naming what exists)
// a creation asking for d when the destination configuration c of the
// same source file system exists: a retry whose first try's answer was
// lost is answered with c only if c is what d asks for (the existing
// file system d names, or a replica c made when d names none; the same
// availability zone, key and role).
func (m *Manager) sameDestination(ctx context.Context, c *Config, d Destination) error {
	var differs []string
	if d.FileSystemID != "" {
		if f, err := m.o.Region.DescribeFileSystem(ctx, d.FileSystemID); err != nil || f.ID != c.DestFileSystemID {
			differs = append(differs, fmt.Sprintf("the existing file system %s", d.FileSystemID))
		}
	} else {
		f, err := m.o.Region.DescribeFileSystem(ctx, c.DestFileSystemID)
		if err != nil {
			return err
		}
		if f.CreationToken != c.ID {
			differs = append(differs, "a new replica")
		}
	}
	if d.AvailabilityZoneName != c.AvailabilityZoneName {
		differs = append(differs, fmt.Sprintf("availability zone %q", d.AvailabilityZoneName))
	}
	// The same key by another name (an alias, its id, an ARN) is the
	// same key.
	if !m.o.Region.SameKMSKey(d.KMSKeyID, c.KMSKeyID) {
		differs = append(differs, fmt.Sprintf("KMS key %q", d.KMSKeyID))
	}
	if d.RoleArn != c.RoleArn {
		differs = append(differs, fmt.Sprintf("role %q", d.RoleArn))
	}
	if len(differs) == 0 {
		return nil
	}
	made := "adopted the existing file system"
	if f, err := m.o.Region.DescribeFileSystem(ctx, c.DestFileSystemID); err == nil && f.CreationToken == c.ID {
		made = "made the replica"
	}
	return control.Errorf(control.ErrReplicationAlreadyExists,
		"File system %s already replicates to %s in %s (replication configuration %s, which %s, availability zone %q, KMS key %q: an earlier creation, whose answer may have been lost); this request asks for %s. Delete that configuration first, or repeat the earlier request.",
		c.SourceFileSystemID, c.DestFileSystemID, m.o.Name, c.ID, made, c.AvailabilityZoneName, c.KMSKeyID, strings.Join(differs, ", "))
}

// finishAdoptionLocked settles the configuration c whose adoption of an
// existing file system the process ended in the middle of (at a start),
// or that failed after it made the file system a replica (at the
// source's retry of the creation, or Resume): one
// whose file system is untouched (not a replica) is dropped, as if the
// creation had not begun (the source had no answer; its retry adopts it
// again); one whose file system is a replica now is finished (protection
// REPLICATING) and kept: the source's retry gets it, or a delete promotes
// the file system back to its own state (abandoning the resync) or, when
// it was reset, to what it received. keep says whether c stays.
func (m *Manager) finishAdoptionLocked(ctx context.Context, c *Config) (keep bool, err error) {
	fs, err := m.o.Engine.FS(c.DestEngine)
	if err != nil {
		return true, nil // not served here: settled where it is
	}
	if mode, _ := fs.Mode(); mode != engine.ModeReplica {
		m.log.Warn("replication creation undone: it ended before it adopted the destination", "replication", c.ID, "fs_id", c.DestFileSystemID)
		return false, m.remove(c, nil)
	}
	if err := m.o.Region.SetProtection(ctx, c.DestFileSystemID, control.ProtectionReplicating); err != nil && !errors.Is(err, control.ErrFileSystemNotFound) {
		return true, err
	}
	n := *c
	n.Adopting = false
	if err := m.save(&n); err != nil {
		return true, err
	}
	c.Adopting = false
	m.log.Warn("replication creation finished: it ended after it adopted the destination", "replication", c.ID, "fs_id", c.DestFileSystemID, "kept_copy", c.KeptCopy)
	return true, nil
}

// finishCreation settles, at a start, the configuration c whose creation
// of a new replica the process ended in the middle of: without a replica
// (none has its creation token, c.ID) it is dropped, as if the creation
// had not begun (the source had no answer); with one, it is finished and
// kept, as the source's retry would have found it: the retry gets it, or
// a delete promotes the replica. keep says whether c stays.
func (m *Manager) finishCreation(ctx context.Context, c *Config) (keep bool, err error) {
	fss, _, err := m.o.Region.DescribeFileSystems(ctx, control.FileSystemQuery{CreationToken: c.ID})
	if err != nil {
		return true, err
	}
	if len(fss) == 0 {
		m.log.Warn("replication creation undone at start: the process ended before it made the replica", "replication", c.ID)
		m.mu.Lock()
		defer m.mu.Unlock()
		return false, m.remove(c, nil)
	}
	n := *c
	n.DestFileSystemID, n.DestOwnerID, n.DestEngine = fss[0].ID, fss[0].OwnerID, fss[0].ID
	n.Creating = false
	if err := m.save(&n); err != nil {
		return true, err
	}
	*c = n
	m.log.Warn("replication creation finished at start: the process ended after it made the replica", "replication", c.ID, "fs_id", c.DestFileSystemID)
	return true, nil
}

// adopt readies an existing file system to become the destination: one of
// the source's lineage is resynced (differences only); another is reset.
// Its state is kept as a copy first when it holds anything the source does
// not.
func (m *Manager) adopt(ctx context.Context, c *Config, dst control.FileSystem, req createDestReq) error {
	fs, err := m.own(ctx, dst.ID)
	if err != nil {
		return err
	}
	sameLineage := string(fs.Lineage()) == string(req.Lineage)
	divergent := true
	if sameLineage {
		local, err := fs.Replica().EpochHistory()
		if err != nil {
			return err
		}
		divergent = replication.ForkPoint(local, req.Epochs, fs.Replica().DurableSeq(), req.SourceDurable) < fs.Replica().DurableSeq()
	}
	if divergent {
		id, err := m.o.Region.KeepCopy(ctx, dst.ID, fmt.Sprintf("state of %s before replication %s from %s overwrote it", dst.ID, c.ID, req.SourceARN))
		if err != nil {
			return fmt.Errorf("replication: keep a copy of %s: %w", dst.ID, err)
		}
		c.KeptCopy = id
	}
	if !sameLineage {
		return m.o.Region.ResetToReplica(ctx, dst.ID, c.KMSKeyID)
	}
	fork, err := replication.PrepareResync(ctx, fs.Replica(), req.Epochs, req.SourceDurable)
	if err != nil {
		return err
	}
	c.Fork = fork
	return nil
}

// Describe lists the configurations fsID (id or ARN; "" = all) takes part
// in, in this region, one per configuration: of a same-region replication,
// whose two ends are both here, the destination's end (it knows what was
// applied).
func (m *Manager) Describe(ctx context.Context, fsID string) ([]Description, error) {
	return m.describe(ctx, fsID, false)
}

// DescribeEnds is Describe with both ends of a same-region replication, for
// a status that shows each end's figures (what is pending at the source,
// what is applied at the destination).
func (m *Manager) DescribeEnds(ctx context.Context, fsID string) ([]Description, error) {
	return m.describe(ctx, fsID, true)
}

func (m *Manager) describe(ctx context.Context, fsID string, bothEnds bool) ([]Description, error) {
	m.mu.Lock()
	var cs []*Config
	if fsID == "" {
		for _, c := range m.configs {
			cs = append(cs, c)
		}
		sortByRole(cs)
	} else {
		cs = m.findLocked(fsID)
	}
	seen := map[string]bool{}
	var out []Description
	for _, c := range cs {
		if seen[c.ID] && !bothEnds {
			continue // same-region: the destination's end came first
		}
		seen[c.ID] = true
		out = append(out, m.describeLocked(c))
	}
	m.mu.Unlock()
	if len(out) == 0 && fsID != "" {
		if _, err := m.o.Region.DescribeFileSystem(ctx, fsID); err != nil {
			return nil, err
		}
		return nil, control.Errorf(control.ErrReplicationNotFound, "No replication configuration for %s.", fsID)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreationTime.Equal(out[j].CreationTime) {
			return out[i].CreationTime.Before(out[j].CreationTime)
		}
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Role < out[j].Role
	})
	return out, nil
}

func (m *Manager) describeLocked(c *Config) Description {
	d := Description{Config: *c}
	var st replication.Status
	var ok bool
	if c.Role == replication.RoleSource {
		st, ok = m.o.Node.OutboundStatus(c.ID)
	} else {
		st, ok = m.o.Node.InboundStatus(c.ID)
	}
	d.Live = st
	switch {
	case c.Role == replication.RoleSource && c.PlannedDeleteSent:
		// Its completion deletes the configuration (plannedWaiting).
		d.Status = replication.StateDeleting
		d.StatusMessage = fmt.Sprintf("planned failover: waiting for %s to answer whether %s promoted itself; %s is read-only until then",
			c.DestRegion, c.DestFileSystemID, c.SourceFileSystemID)
	case c.Deleting || c.Promoted != nil || m.promoting[c.ID] != nil:
		d.Status, d.StatusMessage = replication.StateDeleting, "the configuration is being deleted"
	case !ok:
		d.Status, d.StatusMessage = replication.StateError, "replication is not running in this region"
	default:
		d.Status, d.StatusMessage, d.LastReplicated = st.State, st.Message, st.LastReplicated
	}
	if d.Status == replication.StateEnabling {
		d.LastReplicated = time.Time{} // absent until the initial sync is done
	}
	return d
}

// Delete ends the configuration fsID takes part in. In the destination
// region the replica is promoted (durably, at a transaction boundary) and,
// with DeleteAll, the source region is told; in the source region with
// DeleteAll the destination region must confirm the promotion first
// (an unreachable destination fails the call and changes nothing).
func (m *Manager) Delete(ctx context.Context, fsID, mode string) (*replication.Promotion, error) {
	if mode == "" {
		mode = DeleteAll
	}
	if mode != DeleteAll && mode != DeleteLocalOnly {
		return nil, control.Errorf(control.ErrValidation, "DeletionMode must be %s or %s.", DeleteAll, DeleteLocalOnly)
	}
	m.mu.Lock()
	cs := m.findLocked(fsID)
	m.mu.Unlock()
	if len(cs) == 0 {
		// The source's id names no file system of this region: a delete
		// repeated by it in the destination region (as the CLI's
		// --source-file-system-id suggests) is answered as one by the
		// destination's id (before, FileSystemNotFound, even for a
		// failover completed at a start whose caller had no answer).
		if t, ok := m.lastDeleted(fsID); ok && t.SourceFS == fsID {
			if t.Unanswered && t.Promotion != nil {
				return t.Promotion, nil
			}
			if _, err := m.o.Region.DescribeFileSystem(ctx, fsID); errors.Is(err, control.ErrFileSystemNotFound) {
				return nil, control.Errorf(control.ErrReplicationNotFound, "No replication configuration for %s (its replication to %s was deleted).%s", fsID, t.DestFS, failoverNote(t))
			}
		}
		f, err := m.o.Region.DescribeFileSystem(ctx, fsID)
		if err != nil {
			return nil, err
		}
		if p, ok := m.unanswered(f.ID); ok {
			return p, nil // a failover completed at a start: its answer
		}
		// A failover completed and answered, whose answer may still
		// have been lost (its process killed before the reply, its
		// caller timed out): AWS's answer to a file system without a
		// configuration (ReplicationNotFound), its message saying which
		// failover ended it and what it recovered; regionfs's failover
		// call repeated answers with the recovery point (Failover).
		note := ""
		if t, ok := m.lastDeleted(f.ID); ok && t.DestFS == f.ID {
			note = failoverNote(t)
		}
		return nil, control.Errorf(control.ErrReplicationNotFound, "No replication configuration for %s.%s", fsID, note)
	}
	c := cs[0]
	// Both ends here (same region) by either end's id: AWS refuses
	// LOCAL_CONFIGURATION_ONLY for it (BadRequest). By the destination's
	// id it deleted the destination's configuration only before.
	if c.SourceRegion == c.DestRegion && mode == DeleteLocalOnly {
		return nil, control.Errorf(control.ErrBadRequest, "LOCAL_CONFIGURATION_ONLY is for configurations between regions.")
	}
	if c.Role == replication.RoleDestination {
		return m.deleteAtDestination(ctx, c, mode == DeleteAll)
	}
	m.mu.Lock()
	waiting := c.PlannedDeleteSent
	m.mu.Unlock()
	if waiting {
		// A planned failover waits for its destination's answer: the
		// delete would ask the same (the failover completes by itself
		// once the destination answers), except LOCAL_CONFIGURATION_ONLY,
		// the way out when the destination will not come back.
		if mode == DeleteAll {
			return nil, m.plannedWaiting(c)
		}
		return m.abandonPlanned(ctx, c)
	}
	return m.deleteAtSource(ctx, c, mode == DeleteAll, false)
}

// plannedWaiting is the answer to a planned failover of c (or a delete of
// c) while the failover waits for its destination to say whether it
// promoted itself: where the file systems are, that it completes by itself
// and what else can be done.
func (m *Manager) plannedWaiting(c *Config) error {
	src, dst := c.SourceFileSystemID, c.DestFileSystemID
	return control.Errorf(control.ErrConflict, "The planned failover of %[1]s to %[2]s in %[3]s is waiting for %[3]s: "+
		"%[1]s stopped taking writes and %[2]s has everything it had, but %[3]s has not answered whether %[2]s promoted itself. "+
		"%[1]s stays read-only until %[3]s answers; the failover then completes by itself (%[2]s takes writes, %[1]s shows replication overwrite protection DISABLED), "+
		"or is undone if %[2]s was not promoted (%[1]s takes writes again). No change is lost either way. "+
		"DescribeReplicationConfigurations shows the configuration until then. "+
		"If %[3]s will not come back, DeleteReplicationConfiguration of %[1]s in %[4]s with DeletionMode %[5]s ends the replication here and makes %[1]s writable again "+
		"(if %[2]s was promoted meanwhile, both then take writes).",
		src, dst, c.DestRegion, m.o.Name, DeleteLocalOnly)
}

// abandonPlanned ends at the source, with LOCAL_CONFIGURATION_ONLY, a
// replication whose planned failover waits for its destination's answer:
// the source takes writes again (its planned failover's stop is lifted
// before the configuration goes: a crash between the two finds the
// configuration and waits for the destination again, never a file system
// stopped for a failover nothing completes).
func (m *Manager) abandonPlanned(ctx context.Context, c *Config) (*replication.Promotion, error) {
	fs, err := m.own(ctx, c.SourceEngine)
	if err != nil {
		return nil, err
	}
	if err := fs.Replica().Resume(ctx, engine.StopPlanned); err != nil {
		return nil, err
	}
	p, err := m.deleteAtSource(ctx, c, false, false)
	if err != nil {
		return nil, err
	}
	m.log.Warn("planned failover abandoned: its destination had not answered; the replication is deleted here (LOCAL_CONFIGURATION_ONLY) and the source takes writes again",
		"replication", c.ID, "fs_id", c.SourceFileSystemID, "dest_fs", c.DestFileSystemID, "dest_region", c.DestRegion)
	return p, nil
}

// Failover promotes the destination fsID now (called in the destination
// region): DeleteReplicationConfiguration with ALL_CONFIGURATIONS, except
// that force does not wait for the source's lease (hard fencing) to run
// out: the operator vouches that the source is down.
func (m *Manager) Failover(ctx context.Context, fsID string, force bool) (*replication.Promotion, error) {
	m.mu.Lock()
	var c *Config
	for _, x := range m.findLocked(fsID) {
		if x.Role == replication.RoleDestination {
			c = x
		}
	}
	var guard time.Duration
	if c != nil {
		guard = c.MaxPromotionLag
	}
	m.mu.Unlock()
	if c == nil {
		f, err := m.o.Region.DescribeFileSystem(ctx, fsID)
		if err != nil {
			return nil, err
		}
		if p, ok := m.unanswered(f.ID); ok {
			return p, nil // a failover completed at a start: its answer
		}
		if p, ok := m.repeatedFailover(f.ID); ok {
			return p, nil // the last failover of f: its answer again
		}
		return nil, control.Errorf(control.ErrReplicationNotFound, "%s is not the destination of a replication configuration in %s.", fsID, m.o.Name)
	}
	if guard > 0 && !force {
		if err := m.checkPromotionLag(c, guard); err != nil {
			return nil, err
		}
	}
	return m.promoteDestination(ctx, c, true, force)
}

// checkPromotionLag refuses (ErrConflict) the promotion of c's replica
// when its recovery point is older than limit, saying what would be lost.
func (m *Manager) checkPromotionLag(c *Config, limit time.Duration) error {
	st, ok := m.o.Node.InboundStatus(c.ID)
	if !ok {
		return nil // not running here: promoteDestination says so
	}
	now := m.o.Clock()
	if st.LastReplicated.IsZero() {
		// Not heard from the source since this region started: the time
		// of the last change applied is the recovery point (the lag is at
		// most now minus that).
		if rep, err := m.o.Engine.Replica(st.FS); err == nil && rep.Consistent() {
			_, _, st.LastReplicated = rep.Applied()
		}
	}
	if st.LastReplicated.IsZero() {
		return control.Errorf(control.ErrConflict, "The replica %s has no recovery point yet (its initial sync is not finished: promoted now, it becomes a new, empty file system); the promotion policy allows at most %s of lag. Use Force (regionfs failover --force) to promote anyway.", c.DestFileSystemID, limit)
	}
	lag := st.Lag(now)
	if lag <= limit {
		return nil
	}
	lost := "an unknown number of transactions: the source has not been heard from since this region started"
	switch heard := st.LastContact.UTC().Format(time.RFC3339); {
	case st.LastContact.IsZero() || st.SourceDurable < st.Applied:
	case st.SourceDurable == st.Applied:
		lost = fmt.Sprintf("whatever the source committed after it was last heard from at %s; it had nothing more then", heard)
	default:
		lost = fmt.Sprintf("at least %d transactions the source reported durable when last heard from at %s, and whatever it committed since",
			st.SourceDurable-st.Applied, heard)
	}
	return control.Errorf(control.ErrConflict, "The replica %s is %s behind its source %s in %s, more than the promotion policy's %s: its recovery point is seq %d at %s, and promoting it loses the changes after that (%s). Use Force (regionfs failover --force) to promote anyway.",
		c.DestFileSystemID, lag.Round(time.Millisecond), c.SourceFileSystemID, c.SourceRegion, limit, st.Applied,
		st.LastReplicated.UTC().Format(time.RFC3339Nano), lost)
}

// SetPolicy sets the promotion guard of the configuration fsID takes part
// in, in this region (the destination's is the one Failover reads): a
// replica further behind than maxLag is promoted only when forced; 0
// removes the guard.
func (m *Manager) SetPolicy(_ context.Context, fsID string, maxLag time.Duration) (Description, error) {
	if maxLag < 0 || maxLag > 365*24*time.Hour {
		return Description{}, control.Errorf(control.ErrValidation, "The maximum promotion lag must be between 0 and 8760h.")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cs := m.findLocked(fsID)
	if len(cs) == 0 {
		return Description{}, control.Errorf(control.ErrReplicationNotFound, "%s is not part of a replication configuration in %s.", fsID, m.o.Name)
	}
	var last *Config
	for _, c := range cs {
		n := *c
		n.MaxPromotionLag = maxLag
		if err := m.save(&n); err != nil {
			return Description{}, err
		}
		c.MaxPromotionLag = maxLag
		last = c
	}
	m.log.Info("replication policy set", "replication", last.ID, "fs_id", fsID, "max_promotion_lag", maxLag)
	return m.describeLocked(last), nil
}

func (m *Manager) deleteAtDestination(ctx context.Context, c *Config, tellSource bool) (*replication.Promotion, error) {
	return m.promoteDestination(ctx, c, tellSource, false)
}

func (m *Manager) promoteDestination(ctx context.Context, c *Config, tellSource, force bool) (*replication.Promotion, error) {
	return m.promoteDestinationAs(ctx, c, promotion{tellSource: tellSource, force: force})
}

// promotion says how a destination is promoted.
type promotion struct {
	// tellSource: call the source region now (it learns it from the
	// tombstone at its next contact otherwise).
	tellSource bool
	// force: do not wait for the source's lease to expire.
	force bool
	// fenceSource: the source takes no part in the promotion even if the
	// call reaches it; it fences itself (an automatic failover). Without
	// it, a source the call reaches stays writable (AWS's semantics of
	// DeleteReplicationConfiguration).
	fenceSource bool
	// sourceAsked: the source asked for the promotion (its delete, the
	// "delete" call). Otherwise, and not told (tellSource), the source
	// takes no part in it (LOCAL_CONFIGURATION_ONLY in this region): it
	// fences itself when it learns of it. Before, a promotion without a
	// call to the source was taken as the source's own.
	sourceAsked bool
	// why is recorded in the tombstone (what a source learns) when given.
	why string
}

// promoteDestinationAs promotes c's replica as pr says.
//
// Its steps, each durable before the next: the replica is promoted (the
// engine's commit), the promotion is recorded in the configuration
// (Config.Promoted), the protection shows ENABLED, the source is told
// (when asked), and the configuration is deleted with its tombstone. A
// process that ends before the promotion leaves the replica a replica and
// the configuration as it was; one that ends after it has the failover
// completed by its next start (Open, completePromotion), and a retry
// completes it too, with the same recovery point.
func (m *Manager) promoteDestinationAs(ctx context.Context, c *Config, pr promotion) (*replication.Promotion, error) {
	p, _, err := m.promoteDestinationGone(ctx, c, pr)
	return p, err
}

// promoteDestinationGone is promoteDestinationAs that also returns what
// its tombstone tells the source (Gone: was the promotion coordinated).
func (m *Manager) promoteDestinationGone(ctx context.Context, c *Config, pr promotion) (*replication.Promotion, replication.Gone, error) {
	m.mu.Lock()
	// The manager's lock is not held across the promotion, which may
	// wait for the source's lease (hard fencing) or for the engine: the
	// claim keeps every other promotion, completion or resumption of c
	// out meanwhile, and the rest of the region's calls go on.
	done, err := m.claimPromotionLocked(ctx, c)
	if err != nil {
		m.mu.Unlock()
		return nil, replication.Gone{}, err
	}
	defer m.endPromoting(c.ID, done)
	// Whether the source takes part: it does when it asked
	// (sourceAsked) for a promotion made now, or is told of it in time
	// (tellSource, below); one made earlier without it (a
	// failover here, stopped before the configuration was deleted) stays
	// one it had no part in.
	coordinated := pr.sourceAsked && !pr.fenceSource
	rec := c.Promoted
	if rec != nil {
		coordinated = coordinated && rec.Coordinated
	}
	if rec == nil {
		if asked := pr.sourceAsked && !pr.fenceSource; asked != c.SourceAsked {
			n := *c
			n.SourceAsked = asked
			if err := m.save(&n); err != nil {
				m.mu.Unlock()
				return nil, replication.Gone{}, err
			}
			c.SourceAsked = asked
		}
		m.mu.Unlock()
		m.step("promote", c.ID)
		p, err := m.promoteReplica(ctx, c, pr.force)
		if err != nil {
			return nil, replication.Gone{}, err
		}
		m.step("promoted", c.ID)
		m.mu.Lock()
		rec = &PendingPromotion{Promotion: p, Coordinated: pr.sourceAsked && !pr.fenceSource, Why: pr.why}
		n := *c
		n.Promoted = rec
		if err := m.save(&n); err != nil {
			// Promoted, not recorded: a retry, or the next start, finds
			// the file system promoted and completes the failover.
			m.mu.Unlock()
			return nil, replication.Gone{}, err
		}
		c.Promoted = rec
	}
	if m.hook != nil {
		m.hook("recorded", c.ID)
	}
	if err := m.o.Region.SetProtection(ctx, c.DestFileSystemID, control.ProtectionEnabled); err != nil {
		m.mu.Unlock()
		return nil, replication.Gone{}, err
	}
	m.mu.Unlock()
	if m.hook != nil {
		m.hook("protected", c.ID)
	}
	p := rec.Promotion
	why := pr.why
	if why == "" {
		why = rec.Why
	}
	g := m.gone(c, p, why)
	// Tell the source (unless it asked): then the delete is coordinated and
	// the source stays writable. A source that does not hear of it now
	// learns it at its next contact, from the tombstone, and fences itself.
	// A source to be fenced is told so whether or not the call reaches it
	// in time: a call the network delivers after this side gave up on it
	// must not leave the source writable while the tombstone says it was
	// not coordinated.
	g.Coordinated = coordinated
	if pr.tellSource {
		cg := g
		cg.Coordinated = !pr.fenceSource
		if c.SourceRegion == m.o.Name {
			m.sourceGone(ctx, c.ID, cg)
			g.Coordinated = cg.Coordinated
		} else {
			tctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
			err := m.o.Node.Call(tctx, c.SourceRegion, callDeleted, deletedReq{ID: c.ID, Gone: cg}, nil)
			cancel()
			if err == nil {
				g.Coordinated = cg.Coordinated
			} else {
				m.log.Warn("source region not told of the failover; it fences itself at its next contact", "replication", c.ID, "err", err)
			}
		}
	}
	if m.hook != nil {
		m.hook("told", c.ID)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.tombstone(c, g)
	t.Promotion = &p
	if err := m.remove(c, t); err != nil {
		return nil, replication.Gone{}, err
	}
	return &p, g, nil
}

// promoteReplica promotes c's replica (m.mu not held: the caller claimed
// c's failover, m.promoting). A replica that is not
// received on this node is received first (its file system served here
// since, or not yet: Options.Own); one promoted already (a failover that
// ended before its record) gives the recovery point the engine recorded;
// a file system that no longer exists gives none.
func (m *Manager) promoteReplica(ctx context.Context, c *Config, force bool) (replication.Promotion, error) {
	promote := m.o.Node.Promote
	if force {
		promote = m.o.Node.ForcePromote
	}
	// A replica whose initial sync is not finished is promoted empty
	// (replication.Node.Promote): it holds no consistent state of the
	// source, and AWS lets the configuration go while ENABLING.
	p, err := promote(ctx, c.ID)
	if errors.Is(err, replication.ErrNotFound) {
		fs, ferr := m.own(ctx, c.DestEngine)
		switch {
		case errors.Is(ferr, engine.ErrFSNotFound):
			return replication.Promotion{}, nil // deleted: nothing to promote
		case ferr != nil:
			return replication.Promotion{}, ferr
		}
		if rp, ok := fs.Replica().Promoted(); ok {
			return recordedPromotion(rp, c.Fork), nil
		}
		if err := m.start(c); err != nil {
			return replication.Promotion{}, err
		}
		p, err = promote(ctx, c.ID)
	}
	if errors.Is(err, engine.ErrNotReady) {
		// Only a resync begun by a version that kept no undo of the
		// state it replaces (one that does is abandoned instead).
		return replication.Promotion{}, control.Errorf(control.ErrConflict, "A resync of %s begun before an upgrade is running: it replaces the replica's earlier state range by range, keeps no copy to go back to, so the replica has no consistent state to fail over to until it ends, and discarding it could lose the only copy of the data. Try again once the replication is ENABLED.", c.DestFileSystemID)
	}
	return p, err
}

// gone is what the source learns of p, the promotion of c's replica
// (logged).
func (m *Manager) gone(c *Config, p replication.Promotion, why string) replication.Gone {
	g := replication.Gone{Promoted: true, Epoch: p.NewEpoch, RecoverySeq: p.Seq, RecoveryTime: p.Time,
		Reason: fmt.Sprintf("the destination %s in %s was promoted (failover) at seq %d", c.DestFileSystemID, m.o.Name, p.Seq)}
	switch {
	case p.Empty:
		m.log.Warn("failover: "+p.EmptyReason()+"; the destination is a new, empty file system",
			"replication", c.ID, "fs_id", c.DestFileSystemID, "epoch", p.NewEpoch, "source_region", c.SourceRegion)
		g.Empty = true
		g.Reason = fmt.Sprintf("the destination %s in %s was promoted (failover) before its initial sync finished: it holds nothing of the source", c.DestFileSystemID, m.o.Name)
	case p.Abandoned:
		// What the destination shares with the source (the fork, for
		// a failback): the source's loss report starts there.
		shared := p.Shared
		g.Abandoned, g.RecoverySeq = true, shared
		if shared != p.Seq {
			g.RecoveryTime = time.Time{} // the fork's source time is not known here
		}
		m.log.Warn("failover: "+p.AbandonedReason(),
			"replication", c.ID, "fs_id", c.DestFileSystemID, "seq", p.Seq, "shared_seq", shared, "epoch", p.NewEpoch,
			"source_region", c.SourceRegion, "source_fs", c.SourceFileSystemID, "kept_copy", c.KeptCopy)
		g.Reason = fmt.Sprintf("the destination %s in %s was promoted (failover) while a resync from the source was replacing its state: the resync was abandoned and %s is back at its own state from before the resync (its seq %d); the source's changes after seq %d are not in it",
			c.DestFileSystemID, m.o.Name, c.DestFileSystemID, p.Seq, shared)
	default:
		m.log.Info("failover", "replication", c.ID, "fs_id", c.DestFileSystemID, "recovery_seq", p.Seq, "recovery_time", p.Time,
			"at_least_lost", p.AtLeastLost(), "source_region", c.SourceRegion)
	}
	if why != "" {
		g.Reason += ": " + why
	}
	return g
}

// promotedAtStart returns the promotion of the destination configuration
// c whose failover the process did not finish: its record, or, for a
// process that ended between the promotion and the record, the recovery
// point the engine recorded. nil: c's replica is a replica (or not served
// here: Resume looks again).
func (m *Manager) promotedAtStart(c *Config) *PendingPromotion {
	if c.Role != replication.RoleDestination || c.Adopting {
		return nil
	}
	if c.Promoted != nil {
		return c.Promoted
	}
	fs, err := m.o.Engine.FS(c.DestEngine)
	if err != nil {
		return nil
	}
	rp, ok := fs.Replica().Promoted()
	if !ok {
		return nil
	}
	return &PendingPromotion{Promotion: recordedPromotion(rp, c.Fork), Coordinated: c.SourceAsked}
}

// recordedPromotion is the promotion the engine recorded (rp), for a
// failover completed without the node's answer (the process ended
// before the configuration's record): an abandoned resync's split point,
// where the source's loss report starts, is the engine's when it knew it,
// else the replica's own last seq, and never after the fork of a
// failback (fork), as the node's Promote answers it. Before, the engine
// recorded neither, and the failover was reported as an ordinary one at
// the replica's own last seq: a source's loss report from there missed
// what it wrote between the fork and that seq.
func recordedPromotion(rp engine.RecoveryPoint, fork uint64) replication.Promotion {
	if rp.Abandoned {
		if rp.Shared == 0 || rp.Shared > rp.Seq {
			rp.Shared = rp.Seq
		}
		if fork > 0 {
			rp.Shared = min(rp.Shared, fork)
		}
	}
	return replication.Promotion{RecoveryPoint: rp}
}

// completePromotion completes, at a start, the failover of the
// destination configuration c whose replica was promoted before the
// process ended: the protection as after a failover, the journal kept
// from the fork point (replication.ForkPin), the configuration deleted
// with its tombstone. The source is not called: it learns of the
// promotion from the tombstone at its next contact (and fences itself,
// unless it asked for the deletion). The caller of the failover never had
// its answer: a repeated deletion gets this one (Tombstone.Unanswered).
func (m *Manager) completePromotion(ctx context.Context, c *Config, rec *PendingPromotion) error {
	p := rec.Promotion
	if err := m.o.Region.SetProtection(ctx, c.DestFileSystemID, control.ProtectionEnabled); err != nil && !errors.Is(err, control.ErrFileSystemNotFound) {
		return err
	}
	if fs, err := m.o.Engine.FS(c.DestEngine); err == nil && !p.Empty {
		if _, ok := fs.Replica().Pins()[replication.ForkPin]; !ok {
			if err := fs.Replica().SetPin(replication.ForkPin, p.Seq+1); err != nil {
				m.log.Warn("fork pin", "fs_id", c.DestFileSystemID, "err", err)
			}
		}
	}
	g := m.gone(c, p, rec.Why)
	g.Coordinated = rec.Coordinated
	t := m.tombstone(c, g)
	t.Promotion, t.Unanswered = &p, true
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.remove(c, t); err != nil {
		return err
	}
	m.log.Warn("failover completed at start: the process ended in the middle of it; its caller had no answer, a repeated delete gets it",
		"replication", c.ID, "fs_id", c.DestFileSystemID, "recovery_seq", p.Seq, "epoch", p.NewEpoch, "source_region", c.SourceRegion)
	return nil
}

// unanswered returns the promotion of the newest failover of the
// destination fsID (a file system id) when the start that completed it
// is the only one that knows it (Tombstone.Unanswered): what a repeated
// deletion answers.
func (m *Manager) unanswered(fsID string) (*replication.Promotion, bool) {
	t, ok := m.lastDeleted(fsID)
	if !ok || t.DestFS != fsID || !t.Unanswered || t.Promotion == nil {
		return nil, false
	}
	return t.Promotion, true
}

// repeatedFailover returns the promotion of the failover that ended the
// last configuration fsID (a file system id) took part in here, when
// that was its latest (fsID is in no configuration now, and no later one
// of this region with fsID at its end ended since): a failover repeated
// after its answer was lost (the process killed before the reply, the
// caller timed out) gets the same recovery point, as one completed at a
// start does (unanswered).
func (m *Manager) repeatedFailover(fsID string) (*replication.Promotion, bool) {
	m.mu.Lock()
	busy := len(m.findLocked(fsID)) > 0
	m.mu.Unlock()
	if busy {
		return nil, false
	}
	best, found := m.newestTombstone(func(t Tombstone) bool {
		end := t.SourceFS // this region's end of t's configuration
		if t.Role == replication.RoleDestination {
			end = t.DestFS
		}
		return end == fsID
	})
	if !found || best.Role != replication.RoleDestination || best.Promotion == nil {
		return nil, false
	}
	return best.Promotion, true
}

// failoverNote says, for the message of a repeated delete, which failover
// ended the configuration of t (a destination's tombstone) and what it
// recovered; empty when t records no promotion.
func failoverNote(t Tombstone) string {
	p := t.Promotion
	if p == nil {
		return ""
	}
	head := fmt.Sprintf(" Replication configuration %s (from %s in %s) was deleted at %s by a failover that promoted %s (epoch %d)",
		t.ID, t.SourceFS, t.SourceRegion, t.Deleted.UTC().Format(time.RFC3339), t.DestFS, p.NewEpoch)
	var what string
	switch {
	case p.Empty:
		what = "before its initial sync finished: it holds nothing of the source"
	case p.Abandoned:
		what = fmt.Sprintf("while a resync was replacing its state: it is back at its own state (seq %d); the source's changes after seq %d are not in it", p.Seq, p.Shared)
	case p.AtLeastLost() == 0:
		what = fmt.Sprintf("at its recovery point seq %d (%s), all the source had reported durable when last heard (seq %d)",
			p.Seq, p.Time.UTC().Format(time.RFC3339Nano), p.SourceDurable)
	default:
		what = fmt.Sprintf("at its recovery point seq %d (%s); the source had reported seq %d durable when last heard: at least %d of its transactions are not in it",
			p.Seq, p.Time.UTC().Format(time.RFC3339Nano), p.SourceDurable, p.AtLeastLost())
	}
	return head + " " + what + ". regionfs failover " + t.DestFS + " answers with that recovery point again."
}

// lastDeleted returns the newest tombstone of a destination configuration
// of this region with fsID (a file system id) at either end.
func (m *Manager) lastDeleted(fsID string) (Tombstone, bool) {
	return m.newestTombstone(func(t Tombstone) bool {
		return t.Role == replication.RoleDestination && (t.DestFS == fsID || t.SourceFS == fsID)
	})
}

// newestTombstone returns the newest of this region's tombstones that match
// accepts (none when the store cannot be read).
func (m *Manager) newestTombstone(match func(Tombstone) bool) (Tombstone, bool) {
	it, err := m.o.KV.NewIter([]byte("rt"), []byte("ru"))
	if err != nil {
		return Tombstone{}, false
	}
	defer it.Close()
	var best Tombstone
	found := false
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			return Tombstone{}, false
		}
		var t Tombstone
		if json.Unmarshal(v, &t) != nil || !match(t) {
			continue
		}
		if !found || t.Deleted.After(best.Deleted) {
			best, found = t, true
		}
	}
	return best, found
}

// deleteAtSource ends c at the source; with all, the destination is
// promoted first (coordinated: the source stays writable), except for a
// planned failover, which fences the source (plannedDone).
func (m *Manager) deleteAtSource(ctx context.Context, c *Config, all, planned bool) (*replication.Promotion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.configs[mapKey(c.Role, c.ID)]; !ok {
		return nil, control.Errorf(control.ErrReplicationNotFound, "Replication configuration %s does not exist.", c.ID)
	}
	var p *replication.Promotion
	if all {
		c.Deleting = true
		var resp deleteResp
		m.mu.Unlock()
		err := fromPeer(m.o.Node.Call(ctx, c.DestRegion, callDelete, deleteReq{ID: c.ID, Planned: planned}, &resp))
		m.mu.Lock()
		c.Deleting = false
		gone := c.goneWhileDeleting
		c.goneWhileDeleting = nil
		if _, ok := m.configs[mapKey(c.Role, c.ID)]; !ok && err == nil {
			return &resp.Promotion, nil // ended meanwhile (sourceGone)
		}
		if errors.Is(err, control.ErrReplicationNotFound) && !planned {
			err = nil // the destination forgot it already
		}
		if gone != nil && (err != nil || resp.Gone == nil) {
			// The stream, which has ended, learned of a promotion while
			// this delete was in flight, and no answer says whether it
			// was this delete's (the call failed, or the destination
			// sent no Gone): this region cannot prove that it took part,
			// so it fences itself at that promotion, with its record and
			// loss report. Taking it for this delete's (before) left
			// this file system writable beside a destination that may
			// have been promoted without it: two writable regions.
			g := *gone
			g.Coordinated = false
			m.mu.Unlock()
			m.sourceGone(ctx, c.ID, g)
			m.mu.Lock()
			fenced := m.configs[mapKey(c.Role, c.ID)] == nil
			if err == nil && fenced {
				m.log.Warn("replication deleted at the source after its stream learned of a promotion the destination's answer does not vouch for: fenced",
					"replication", c.ID, "fs_id", c.SourceFileSystemID, "epoch", g.Epoch, "recovery_seq", g.RecoverySeq)
				return &replication.Promotion{RecoveryPoint: engine.RecoveryPoint{Seq: g.RecoverySeq, Time: g.RecoveryTime, NewEpoch: g.Epoch, Empty: g.Empty}}, nil
			}
			if err == nil {
				err = errors.New("no answer says whether the promotion was this delete's")
			}
			state := "was fenced (read-only) at it, with its loss report"
			if !fenced {
				state = "could not be fenced (see the log)"
			}
			return nil, fmt.Errorf("replication %s: the destination %s was promoted (epoch %d, recovery seq %d) while this delete was in flight, and %s %s: %w",
				c.ID, c.DestFileSystemID, g.Epoch, g.RecoverySeq, c.SourceFileSystemID, state, err)
		}
		if err != nil {
			return nil, err
		}
		p = &resp.Promotion
		if g := resp.Gone; g != nil && g.Promoted && !g.Coordinated && !planned {
			// The destination had been promoted without this region (a
			// failover in its region while this one was out of reach,
			// an automatic failover), and this source's stream had not
			// learned it yet: fenced at the promoted epoch, with the
			// record of the failover and its loss report, as when the
			// stream learns it. Forgetting the configuration and staying
			// writable would leave two writable regions.
			m.mu.Unlock()
			m.sourceGone(ctx, c.ID, *g)
			m.mu.Lock()
			if _, ok := m.configs[mapKey(c.Role, c.ID)]; ok {
				return nil, fmt.Errorf("replication %s: the destination %s was promoted without this region and %s could not be fenced (see the log)",
					c.ID, c.DestFileSystemID, c.SourceFileSystemID)
			}
			m.log.Warn("replication deleted at the source after its destination was promoted without it: fenced", "replication", c.ID,
				"fs_id", c.SourceFileSystemID, "epoch", g.Epoch, "recovery_seq", g.RecoverySeq)
			return p, nil
		}
	}
	var t *Tombstone
	if planned && p != nil {
		t = m.plannedDone(ctx, c, *p)
	}
	// The configuration goes first (durably), then the outbound, whose
	// removal clears the journal pin and lifts the lease's stop: the
	// source takes writes without its destination's lease only once no
	// configuration of it remains. In the other order a process ended in
	// between restarted with the configuration and neither stop nor pin,
	// and its source took writes before its destination answered (which
	// might have promoted itself meanwhile); a failed removal left it so
	// until a restart. Ended now in between, the start finds no
	// configuration and lifts both (releaseEnded).
	if err := m.remove(c, t); err != nil {
		return nil, err
	}
	m.step("deleted-at-source", c.ID)
	// Not under m.mu: RemoveOutbound waits for the outbound's loop, which
	// may be telling this manager that the destination refused its
	// stream (SourceGone → sourceGone takes m.mu) — as it is after a
	// coordinated delete, the destination having forgotten the
	// configuration first. The configuration is gone from m.configs, and
	// ids are never reused: nothing in between adds this outbound again.
	m.mu.Unlock()
	m.o.Node.RemoveOutbound(c.ID)
	m.mu.Lock()
	m.log.Info("replication deleted at the source", "replication", c.ID, "fs_id", c.SourceFileSystemID, "coordinated", all)
	return p, nil
}

// sourceGone ends a configuration at the source after its destination
// deleted it. A promotion the source did not take part in fences the
// source (it learned of a newer epoch): writes are refused, protection
// shows DISABLED, and its journal after the recovery point is kept for the
// loss report and a failback.
func (m *Manager) sourceGone(ctx context.Context, id string, g replication.Gone) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.configs[mapKey(replication.RoleSource, id)]
	if c == nil {
		return
	}
	m.step("source-gone", id)
	if c.Deleting && g.Promoted && !g.Coordinated && !c.PlannedDeleteSent {
		// This region's delete is in flight: the promotion may be its
		// own (the destination promotes before it forgets the
		// configuration, and a stream meanwhile learns of it as not
		// coordinated) or one made without this region. The delete's
		// answer says which (deleteAtSource): taking it for the
		// delete's own here would leave this file system writable
		// beside a destination promoted without it.
		c.goneWhileDeleting = &g
		return
	}
	coordinated := g.Coordinated || c.Deleting
	// A planned failover past its point of no return ends fenced
	// whatever the destination says (the source is drained: it lost
	// nothing).
	planned := c.PlannedDeleteSent
	if planned {
		coordinated = false
	}
	// The caller may be the outbound itself, whose context RemoveOutbound
	// cancels: fence first, on a context of our own, then remove it.
	ctx = context.WithoutCancel(ctx)
	defer func() { go m.o.Node.RemoveOutbound(id) }()
	if g.Promoted && !coordinated {
		if fs, err := m.own(ctx, c.SourceEngine); err == nil {
			// A destination promoted empty shares no history with this
			// file system: no fork point to keep the journal from.
			if !g.Empty {
				if err := fs.Replica().SetPin(replication.ForkPin, g.RecoverySeq+1); err != nil {
					m.log.Warn("fork pin", "fs_id", c.SourceFileSystemID, "err", err)
				}
			}
			if err := fs.Replica().Fence(ctx, g.Epoch); err != nil {
				m.log.Error("fence", "fs_id", c.SourceFileSystemID, "err", err)
				return
			}
			lost := fs.Replica().DurableSeq() - min(fs.Replica().DurableSeq(), g.RecoverySeq)
			m.log.Warn("fenced: the destination was promoted without this region", "replication", id, "fs_id", c.SourceFileSystemID,
				"epoch", g.Epoch, "recovery_seq", g.RecoverySeq, "changes_not_replicated", lost)
		}
	}
	// The record of the failover (and its loss report) is durable before
	// the protection says DISABLED: a client that sees DISABLED finds the
	// record. A crash between the two leaves the file system fenced
	// (read-only), its record written and its protection unchanged, which
	// Open puts right (fencedWithoutProtection); a crash before the record
	// leaves the configuration, whose next contact with the destination
	// calls sourceGone again.
	t := m.tombstone(c, g)
	if planned {
		t.Planned, t.Coordinated = true, false
	}
	if err := m.remove(c, t); err != nil {
		m.log.Error("forget replication", "replication", id, "err", err)
		return
	}
	m.step("source-gone-removed", id)
	if g.Promoted && !coordinated {
		if err := m.o.Region.SetProtection(ctx, c.SourceFileSystemID, control.ProtectionDisabled); err != nil {
			m.log.Error("protection", "fs_id", c.SourceFileSystemID, "err", err)
		}
	}
}

// protectFenced sets protection DISABLED on every file system of this
// region that a failover made without it fenced (a source-side tombstone
// of an uncoordinated promotion) and that is still fenced but does not
// show it: sourceGone writes the record before the protection, and the
// process may have ended between the two. A file system unfenced since
// (UpdateFileSystemProtection ENABLED) is left alone.
func (m *Manager) protectFenced(ctx context.Context) error {
	it, err := m.o.KV.NewIter([]byte("rt"), []byte("ru"))
	if err != nil {
		return err
	}
	var ids []string
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			it.Close()
			return err
		}
		var t Tombstone
		if json.Unmarshal(v, &t) != nil || t.Role != replication.RoleSource || !t.Promoted || t.Coordinated || slices.Contains(ids, t.SourceFS) {
			continue
		}
		ids = append(ids, t.SourceFS)
	}
	err = it.Error()
	it.Close()
	if err != nil {
		return err
	}
	for _, id := range ids {
		f, err := m.o.Region.DescribeFileSystem(ctx, id)
		if err != nil || f.Protection == control.ProtectionDisabled {
			continue // deleted since, or shown
		}
		fs, err := m.o.Engine.FS(id)
		if err != nil {
			continue // not served by this node
		}
		if mode, _ := fs.Mode(); mode != engine.ModeFenced {
			continue
		}
		if err := m.o.Region.SetProtection(ctx, id, control.ProtectionDisabled); err != nil {
			m.log.Error("protection", "fs_id", id, "err", err)
			continue
		}
		m.log.Warn("fenced file system shown DISABLED at start (its failover's record was written, its protection not)", "fs_id", id)
	}
	return nil
}

func (m *Manager) tombstone(c *Config, g replication.Gone) *Tombstone {
	return &Tombstone{Gone: g, ID: c.ID, Role: c.Role, SourceRegion: c.SourceRegion, SourceFS: c.SourceFileSystemID, DestFS: c.DestFileSystemID, Deleted: m.o.Clock()}
}

// PlannedFailover hands the source role to the destination without losing
// a change: buffered NFS writes are flushed, the source refuses new writes
// (fenced; protection DISABLED, ready for a failback), the destination
// catches up to zero lag and is then promoted, coordinated. Called in the
// source region. If the destination cannot catch up before ctx ends, or
// refuses the promotion, the source is made writable again and nothing
// changes; if it does not answer the request to promote itself, the
// source stays fenced and the failover is completed in the background
// once it answers (an error says so).
func (m *Manager) PlannedFailover(ctx context.Context, fsID string) (*replication.Promotion, error) {
	m.mu.Lock()
	var c *Config
	for _, x := range m.findLocked(fsID) {
		if x.Role == replication.RoleSource {
			c = x
		}
	}
	m.mu.Unlock()
	if c == nil {
		if _, err := m.o.Region.DescribeFileSystem(ctx, fsID); err != nil {
			return nil, err
		}
		return nil, control.Errorf(control.ErrReplicationNotFound, "%s is not the source of a replication configuration in %s.", fsID, m.o.Name)
	}
	fs, err := m.own(ctx, c.SourceEngine)
	if err != nil {
		return nil, err
	}
	flush := func() error { return m.o.Region.FlushWrites(ctx, c.SourceFileSystemID) }
	if err := flush(); err != nil {
		return nil, fmt.Errorf("replication: flush buffered writes of %s: %w", fsID, err)
	}
	// The intent first: a crash from here on finds the source fenced
	// with it, which the next start undoes (before the destination was
	// asked to promote itself) or completes (after).
	if err := m.setPlanned(c, true, false); err != nil {
		return nil, err
	}
	m.step("planned", c.ID)
	// The stop records its reason (a planned failover): a lease renewed
	// meanwhile, or after a restart, does not lift it; a lease's own stop
	// taken before stays beside it.
	if err := fs.Replica().Stop(ctx, engine.StopPlanned); err != nil {
		if uerr := m.setPlanned(c, false, false); uerr != nil {
			m.log.Error("planned failover intent not cleared", "fs_id", fsID, "err", uerr)
		}
		return nil, err
	}
	m.step("planned-fenced", c.ID)
	undo := func(cause error) (*replication.Promotion, error) {
		uctx := context.WithoutCancel(ctx)
		// Only this failover's own stop is lifted: a fence of a newer
		// epoch (the destination promoted without this region meanwhile,
		// sourceGone) stays, and so does a lease's stop (the destination
		// has not answered since the lease ran out).
		if err := fs.Replica().Resume(uctx, engine.StopPlanned); err != nil {
			m.log.Error("unfence after a failed planned failover", "fs_id", fsID, "err", err)
		}
		if err := m.setPlanned(c, false, false); err != nil && !errors.Is(err, control.ErrReplicationNotFound) {
			m.log.Error("planned failover intent not cleared", "fs_id", fsID, "err", err)
		}
		return nil, cause
	}
	flush() // writes buffered meanwhile fail at COMMIT: never acknowledged
	target, err := m.o.Node.Drain(ctx, c.ID)
	if err != nil {
		return undo(fmt.Errorf("replication: the destination did not catch up: %w", err))
	}
	// The point of no return: the destination is asked to promote
	// itself (a crash from here completes the failover at the next start).
	if err := m.setPlanned(c, true, true); err != nil {
		return undo(err)
	}
	m.step("planned-sent", c.ID)
	p, err := m.deleteAtSource(ctx, c, true, true)
	if err != nil && refusedForGood(err) {
		// Refused: the destination did not promote itself; writable
		// again.
		return undo(err)
	}
	if err != nil {
		// No answer (lost, or the destination failing or starting): it
		// may have promoted itself. The source stays fenced, as after a
		// crash past this point, and the failover is completed once the
		// destination answers (finishPlanned; undone if it refuses).
		// Undoing it here (before) left the source writable beside a
		// promoted destination until its stream learned of it.
		m.finishPlannedLater(c)
		m.log.Warn("planned failover: the destination did not answer whether it promoted itself; the source stays read-only and the failover completes once it answers",
			"replication", c.ID, "fs_id", fsID, "dest_fs", c.DestFileSystemID, "dest_region", c.DestRegion, "err", err)
		return nil, m.plannedWaiting(c)
	}
	if p.Seq < target {
		m.log.Error("planned failover lost changes", "fs_id", fsID, "durable", target, "recovery_seq", p.Seq)
	}
	m.step("planned-deleted", c.ID)
	if err := m.o.Region.SetProtection(ctx, c.SourceFileSystemID, control.ProtectionDisabled); err != nil {
		return nil, err
	}
	m.log.Info("planned failover", "replication", c.ID, "fs_id", fsID, "dest_fs", c.DestFileSystemID, "recovery_seq", target)
	return p, nil
}

// setPlanned records how far a planned failover of c got (durably). A
// planned failover begins (failover, not sent) only when none is under
// way.
func (m *Manager) setPlanned(c *Config, failover, sent bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.configs[mapKey(c.Role, c.ID)]; !ok {
		return control.Errorf(control.ErrReplicationNotFound, "Replication configuration %s does not exist.", c.ID)
	}
	if failover && !sent && c.PlannedDeleteSent {
		return m.plannedWaiting(c)
	}
	if failover && !sent && c.PlannedFailover {
		return control.Errorf(control.ErrConflict, "A planned failover of %s is under way.", c.SourceFileSystemID)
	}
	n := *c
	n.PlannedFailover, n.PlannedDeleteSent = failover, sent
	if err := m.save(&n); err != nil {
		return err
	}
	c.PlannedFailover, c.PlannedDeleteSent = failover, sent
	return nil
}

// plannedDone fences the source of a planned failover at the promoted
// destination's epoch (a lease renewal cannot lift it), keeps its journal
// from the fork point for a failback, and returns its record: a source
// tombstone that Open's protectFenced reads (the protection is set
// DISABLED after it). m.mu held.
func (m *Manager) plannedDone(ctx context.Context, c *Config, p replication.Promotion) *Tombstone {
	if fs, err := m.own(ctx, c.SourceEngine); err == nil {
		if err := fs.Replica().SetPin(replication.ForkPin, p.Seq+1); err != nil {
			m.log.Warn("fork pin", "fs_id", c.SourceFileSystemID, "err", err)
		}
		if err := fs.Replica().Fence(context.WithoutCancel(ctx), p.NewEpoch); err != nil {
			m.log.Error("fence", "fs_id", c.SourceFileSystemID, "err", err)
		}
	}
	t := m.tombstone(c, replication.Gone{Promoted: true, Epoch: p.NewEpoch, RecoverySeq: p.Seq, RecoveryTime: p.Time,
		Reason: fmt.Sprintf("planned failover: the destination %s in %s was promoted at seq %d", c.DestFileSystemID, c.DestRegion, p.Seq)})
	t.Planned = true
	return t
}

// undoPlanned makes the source of a planned failover that the process
// ended before it asked the destination to promote itself writable
// again, as a failed planned failover does (a fence of a newer epoch
// stays).
func (m *Manager) undoPlanned(ctx context.Context, c *Config) error {
	if fs, err := m.o.Engine.FS(c.SourceEngine); err == nil {
		if err := fs.Replica().Resume(ctx, engine.StopPlanned); err != nil {
			return err
		}
	}
	n := *c
	n.PlannedFailover, n.PlannedDeleteSent = false, false
	if err := m.save(&n); err != nil {
		return err
	}
	c.PlannedFailover, c.PlannedDeleteSent = false, false
	m.log.Warn("planned failover undone at start: the process ended before the destination was asked to promote itself; the source is writable again",
		"replication", c.ID, "fs_id", c.SourceFileSystemID)
	return nil
}

// finishPlannedLater runs finishPlanned for c in the background, unless
// the manager is closing (the next start completes it then).
func (m *Manager) finishPlannedLater(c *Config) {
	m.bgMu.Lock()
	defer m.bgMu.Unlock()
	if m.bgCtx.Err() != nil {
		return
	}
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		m.finishPlanned(m.bgCtx, c)
	}()
}

// finishPlanned completes, after a start, a planned failover that had
// asked the destination to promote itself: it asks again (a destination
// that did answers with the same promotion) until the destination
// answers, or the configuration ends otherwise (sourceGone). The source
// stays fenced meanwhile. A destination that refuses (it has no such
// configuration, nor a promotion of it) did not promote: the failover is
// undone.
func (m *Manager) finishPlanned(ctx context.Context, c *Config) {
	wait := 100 * time.Millisecond
	for {
		m.mu.Lock()
		_, ok := m.configs[mapKey(c.Role, c.ID)]
		m.mu.Unlock()
		if !ok {
			return
		}
		p, err := m.deleteAtSource(ctx, c, true, true)
		switch {
		case err == nil:
			if err := m.o.Region.SetProtection(ctx, c.SourceFileSystemID, control.ProtectionDisabled); err != nil {
				m.log.Error("protection", "fs_id", c.SourceFileSystemID, "err", err)
			}
			m.log.Warn("planned failover completed after a start", "replication", c.ID, "fs_id", c.SourceFileSystemID,
				"dest_fs", c.DestFileSystemID, "recovery_seq", p.Seq)
			return
		case refusedForGood(err):
			m.mu.Lock()
			_, ok := m.configs[mapKey(c.Role, c.ID)]
			m.mu.Unlock()
			if ok {
				if err := m.undoPlanned(ctx, c); err != nil {
					m.log.Error("planned failover not undone", "replication", c.ID, "err", err)
				}
			}
			m.log.Warn("planned failover refused by the destination after a start", "replication", c.ID, "err", err)
			return
		}
		m.log.Warn("planned failover: the destination does not answer yet", "replication", c.ID, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// refusedForGood reports whether err, the destination's answer to a
// planned failover's delete, refuses it: the destination did not promote
// and will not. A region still starting (configurations not loaded:
// ServiceUnavailable, engine.ErrClosed), closing or failing inside (5xx)
// may have promoted already, or complete its promotion at its start
// (Open): asked again, never undone on the strength of that answer.
func refusedForGood(err error) bool {
	var ce *control.Error
	var pe *PeerError
	switch {
	case errors.As(err, &ce):
		return !errors.Is(err, engine.ErrClosed)
	case errors.As(err, &pe):
		return pe.Status < http.StatusInternalServerError
	}
	return false
}

// LossReport lists the changes the old source fsID committed after the
// promotion of its destination (the failover's loss), from its journal.
func (m *Manager) LossReport(ctx context.Context, fsID string, max int) (Tombstone, []engine.Change, bool, error) {
	f, err := m.o.Region.DescribeFileSystem(ctx, fsID)
	if err != nil {
		return Tombstone{}, nil, false, err
	}
	it, err := m.o.KV.NewIter([]byte("rt"), []byte("ru"))
	if err != nil {
		return Tombstone{}, nil, false, err
	}
	var best Tombstone
	found := false
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			break
		}
		var t Tombstone
		if json.Unmarshal(v, &t) != nil || t.Role != replication.RoleSource || t.SourceFS != f.ID || !t.Promoted || t.Coordinated || t.Planned {
			continue
		}
		if !found || t.Deleted.After(best.Deleted) {
			best, found = t, true
		}
	}
	it.Close()
	if !found {
		return Tombstone{}, nil, false, control.Errorf(control.ErrReplicationNotFound, "%s lost nothing to a failover (it was not left out of one).", f.ID)
	}
	f2, err := m.own(ctx, f.ID)
	if err != nil {
		return Tombstone{}, nil, false, err
	}
	losses, complete, err := f2.Replica().Changes(ctx, best.RecoverySeq, max)
	return best, losses, complete, err
}

// Tombstone returns this region's record of its role's end of the
// deleted configuration id (source: why, for the loss report;
// destination: the promotion that ended it).
func (m *Manager) Tombstone(role replication.Role, id string) (Tombstone, bool) {
	for _, k := range [][]byte{tombKey(role, id), legacyTombKey(id)} {
		v, err := m.o.KV.Get(k)
		if err != nil {
			continue
		}
		var t Tombstone
		if json.Unmarshal(v, &t) != nil || t.Role != role {
			continue
		}
		return t, true
	}
	return Tombstone{}, false
}
