package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/refusal"
)

// Subnet is a subnet of the region (for the default choice of the clone's
// subnet).
type Subnet struct {
	ID               string
	AvailabilityZone string
}

// Options configure a Service.
type Options struct {
	Region   string
	Control  Control
	Replicas Replicas
	KV       kv.Store
	Subnets  []Subnet
	// NFSPort is the port of mount targets.
	NFSPort int
	// Dial connects to a mount target (default: a net.Dialer).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Publisher gets each finished drill's metrics and notification (nil:
	// none).
	Publisher Publisher
	// NotificationTopicARN is notified of every drill that names no topic
	// of its own ("" = none).
	NotificationTopicARN string
	Schedules            []Schedule
	Registerer           prometheus.Registerer
	Logger               *slog.Logger
	Clock                func() time.Time
	// History is how many drills are kept (default 200).
	History int
	// CanaryTimeout bounds the wait for the canary on the replica
	// (default 30 s); SampleEvery is how often the replication's lag is
	// sampled during a drill (default 10 ms).
	CanaryTimeout time.Duration
	SampleEvery   time.Duration
	// CleanupTimeout bounds the wait for the clone and its mount target to
	// be gone (default 2 min).
	CleanupTimeout time.Duration
}

// Service runs a region's drills and keeps their history.
type Service struct {
	o       Options
	log     *slog.Logger
	metrics *metrics
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu      sync.Mutex        // guards the fields below
	drills  map[string]*Drill // every drill of the history, by id
	running map[string]string // replica id → id of its running drill
	checks  map[string]chan CheckResult
	closed  bool
}

// Open loads the history, fails the drills a restart interrupted (and
// deletes their clones unless they were to be kept) and starts the
// schedules.
func Open(o Options) (*Service, error) {
	if o.Control == nil || o.Replicas == nil || o.KV == nil {
		return nil, fmt.Errorf("drill: Control, Replicas and KV are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.History <= 0 {
		o.History = 200
	}
	if o.CanaryTimeout <= 0 {
		o.CanaryTimeout = 30 * time.Second
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = 10 * time.Millisecond
	}
	if o.CleanupTimeout <= 0 {
		o.CleanupTimeout = 2 * time.Minute
	}
	if o.Dial == nil {
		o.Dial = (&net.Dialer{Timeout: 5 * time.Second}).DialContext
	}
	for _, sc := range o.Schedules {
		if err := sc.check(); err != nil {
			return nil, err
		}
	}
	s := &Service{o: o, log: o.Logger, drills: map[string]*Drill{}, running: map[string]string{}, checks: map[string]chan CheckResult{}}
	var err error
	if s.metrics, err = newMetrics(o.Registerer); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.load(); err != nil {
		s.cancel()
		return nil, err
	}
	var interrupted []*Drill
	for _, d := range s.drills {
		if !d.Done() {
			interrupted = append(interrupted, d)
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.recover(s.ctx, interrupted)
	}()
	for _, sc := range o.Schedules {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.schedule(s.ctx, sc)
		}()
	}
	return s, nil
}

// Close stops the running drills (each is failed and its clone deleted,
// within a few seconds, unless kept) and the schedules, and waits for them.
func (s *Service) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// Key layout: 'd' 'r' id → Drill (JSON).
func drillKey(id string) []byte { return append([]byte{'d', 'r'}, id...) }

func (s *Service) load() error {
	err := kv.Scan(s.o.KV, []byte{'d', 'r'}, []byte{'d', 's'}, func(k, v []byte) error {
		d := &Drill{}
		if err := json.Unmarshal(v, d); err != nil {
			return fmt.Errorf("drill: record %q: %w", k, err)
		}
		s.drills[d.DrillID] = d
		return nil
	})
	if err != nil {
		return err
	}
	var done []*Drill
	for _, d := range s.drills {
		if d.Done() {
			done = append(done, d)
		}
	}
	sort.Slice(done, func(i, j int) bool { return done[i].StartTime.Before(done[j].StartTime.Time) })
	for _, d := range done {
		s.metrics.finished(d, false)
	}
	return nil
}

// save writes a copy of d durably, and trims the history.
func (s *Service) save(d *Drill) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	batch := s.o.KV.NewBatch()
	defer batch.Close()
	batch.Set(drillKey(d.DrillID), b)
	s.mu.Lock()
	s.drills[d.DrillID] = d
	var trim []string
	if len(s.drills) > s.o.History {
		all := s.sortedLocked()
		for _, old := range all[s.o.History:] {
			if old.Done() {
				trim = append(trim, old.DrillID)
			}
		}
		for _, id := range trim {
			delete(s.drills, id)
			batch.Delete(drillKey(id))
		}
	}
	s.mu.Unlock()
	return batch.Commit(true)
}

// sortedLocked returns the drills newest first.
func (s *Service) sortedLocked() []*Drill {
	out := make([]*Drill, 0, len(s.drills))
	for _, d := range s.drills {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartTime.Equal(out[j].StartTime.Time) {
			return out[i].StartTime.After(out[j].StartTime.Time)
		}
		return out[i].DrillID > out[j].DrillID
	})
	return out
}

// Get returns a drill of the history (a copy).
func (s *Service) Get(_ context.Context, id string) (Drill, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.drills[id]
	if !ok {
		return Drill{}, refusal.Errorf(ErrDrillNotFound, "Drill '%s' does not exist in region %s.", clip(id), s.o.Region)
	}
	return copyDrill(d), nil
}

// List returns the history, newest first: every drill, or those of one
// file system (the replica's id or its source's), at most max (0 = all).
func (s *Service) List(_ context.Context, fsID string, max int) []Drill {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Drill
	for _, d := range s.sortedLocked() {
		if fsID != "" && !matchFS(d, fsID) {
			continue
		}
		out = append(out, copyDrill(d))
		if max > 0 && len(out) == max {
			break
		}
	}
	return out
}

func matchFS(d *Drill, ref string) bool {
	id := ref
	if i := strings.LastIndex(ref, "/"); i >= 0 && strings.HasPrefix(ref, "arn:") {
		id = ref[i+1:]
	}
	return d.FileSystemID == id || d.SourceFileSystemID == id || (d.Clone != nil && d.Clone.FileSystemID == id)
}

func copyDrill(d *Drill) Drill {
	b, _ := json.Marshal(d)
	var c Drill
	json.Unmarshal(b, &c)
	return c
}

// ReportCheck records the result of the check a held drill waits for.
func (s *Service) ReportCheck(_ context.Context, id string, r CheckResult) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.drills[id]
	if !ok {
		return refusal.Errorf(ErrDrillNotFound, "Drill '%s' does not exist in region %s.", clip(id), s.o.Region)
	}
	ch := s.checks[id]
	if ch == nil {
		return refusal.Errorf(ErrNotChecking, "Drill '%s' is %s; it does not wait for a check.", id, d.State)
	}
	delete(s.checks, id)
	r.By = "client"
	if len(r.Output) > maxOutput {
		r.Output = r.Output[len(r.Output)-maxOutput:]
	}
	ch <- r
	return nil
}

// maxOutput bounds the output a check result keeps.
const maxOutput = 16 << 10

var (
	subnetPattern   = regexp.MustCompile(`^subnet-[0-9a-f]{8,40}$`)
	groupPattern    = regexp.MustCompile(`^sg-[0-9a-f]{8,40}$`)
	topicARNPattern = regexp.MustCompile(`^arn:aws[-a-z]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$`)
	drillIDPattern  = regexp.MustCompile(`^drill-[0-9a-f]{17}$`)
)

// ValidDrillID reports whether id has the shape of a drill id.
func ValidDrillID(id string) bool { return drillIDPattern.MatchString(id) }

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func checkInput(in Input) error {
	switch {
	case in.FileSystemID == "":
		return refusal.Errorf(ErrBadRequest, "FileSystemId is required.")
	case len(in.FileSystemID) > 128 || !control.FileSystemRefPattern.MatchString(in.FileSystemID):
		return refusal.Errorf(ErrBadRequest, "%s", control.PatternMessage("FileSystemId", in.FileSystemID, control.FileSystemRefPattern))
	case in.SubnetID != "" && !subnetPattern.MatchString(in.SubnetID):
		return refusal.Errorf(ErrBadRequest, "SubnetId '%s' is not a subnet id.", clip(in.SubnetID))
	case len(in.SecurityGroups) > 5:
		return refusal.Errorf(ErrBadRequest, "A mount target can have at most 5 security groups; %d were given.", len(in.SecurityGroups))
	case in.Hold < 0 || in.Hold > MaxHold:
		return refusal.Errorf(ErrBadRequest, "HoldSeconds must be between 0 and %d.", int(MaxHold.Seconds()))
	case in.MaxRPO < 0 || in.MaxRTO < 0:
		return refusal.Errorf(ErrBadRequest, "Objectives must not be negative.")
	case in.NotificationTopicARN != "" && (len(in.NotificationTopicARN) > 1024 || !topicARNPattern.MatchString(in.NotificationTopicARN)):
		return refusal.Errorf(ErrBadRequest, "NotificationTopicArn '%s' is not an SNS topic ARN.", clip(in.NotificationTopicARN))
	}
	for _, g := range in.SecurityGroups {
		if !groupPattern.MatchString(g) {
			return refusal.Errorf(ErrBadRequest, "SecurityGroups: '%s' is not a security group id.", clip(g))
		}
	}
	return nil
}

// Start validates a drill and starts it: the drill runs in the background
// (Get shows its progress) and the first record is returned.
func (s *Service) Start(ctx context.Context, in Input) (Drill, error) {
	if err := checkInput(in); err != nil {
		return Drill{}, err
	}
	rep, err := s.o.Replicas.Destination(ctx, in.FileSystemID)
	if err != nil {
		return Drill{}, err
	}
	if !rep.Consistent {
		return Drill{}, refusal.Errorf(ErrNotReady, "Replica %s has no consistent state yet (its initial sync is not finished); a drill needs one.", rep.FileSystemID)
	}
	replica, err := s.o.Control.DescribeFileSystem(ctx, rep.FileSystemID)
	if err != nil {
		return Drill{}, err
	}
	subnet := in.SubnetID
	if subnet == "" {
		subnet = s.defaultSubnet(replica.AvailabilityZoneName)
		if subnet == "" {
			return Drill{}, refusal.Errorf(ErrBadRequest, "Region %s has no subnet for the clone's mount target; give SubnetId.", s.o.Region)
		}
	}
	trigger := in.Trigger
	if trigger == "" {
		trigger = "api"
	}
	topic := in.NotificationTopicARN
	if topic == "" {
		topic = s.o.NotificationTopicARN
	}
	now := s.o.Clock()
	d := &Drill{
		DrillID: newDrillID(), FileSystemID: rep.FileSystemID, SourceFileSystemID: rep.SourceFileSystemID, SourceRegion: rep.SourceRegion,
		Region: s.o.Region, ReplicationID: rep.ID, Trigger: trigger, State: StateRunning, StartTime: Time{now},
		SubnetID: subnet, SecurityGroups: slices.Clone(in.SecurityGroups), Keep: in.Keep, HoldSeconds: in.Hold.Seconds(),
		NotificationTopicARN: topic,
	}
	if in.MaxRPO > 0 {
		d.MaxRPOSeconds = seconds(in.MaxRPO)
	}
	if in.MaxRTO > 0 {
		d.MaxRTOSeconds = seconds(in.MaxRTO)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Drill{}, refusal.Errorf(ErrClosed, "Region %s is shutting down.", s.o.Region)
	}
	if other, ok := s.running[rep.FileSystemID]; ok {
		s.mu.Unlock()
		return Drill{}, refusal.Errorf(ErrInProgress, "Drill %s of %s is still running; wait for it to end.", other, rep.FileSystemID)
	}
	s.running[rep.FileSystemID] = d.DrillID
	s.mu.Unlock()
	r := &run{s: s, d: d, in: in, rep: rep, log: s.log.With("drill", d.DrillID, "fs_id", rep.FileSystemID)}
	r.event("start", fmt.Sprintf("drill of %s (replica of %s in %s), %s", rep.FileSystemID, rep.SourceFileSystemID, rep.SourceRegion, trigger), false)
	// The history holds copies; the run changes d under its own lock.
	first := copyDrill(d)
	if err := s.save(&first); err != nil {
		s.mu.Lock()
		delete(s.running, rep.FileSystemID)
		s.mu.Unlock()
		return Drill{}, fmt.Errorf("drill: record: %w", err)
	}
	first = copyDrill(d)
	s.metrics.running.Inc()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.metrics.running.Dec()
		r.run(s.ctx)
		s.ended(rep.FileSystemID, d.DrillID)
		s.mu.Lock()
		delete(s.checks, d.DrillID)
		s.mu.Unlock()
	}()
	return first, nil
}

// ended lets the next drill of file system fsID start: drill id is over
// (a later drill's entry is left alone).
func (s *Service) ended(fsID, id string) {
	s.mu.Lock()
	if s.running[fsID] == id {
		delete(s.running, fsID)
	}
	s.mu.Unlock()
}

// defaultSubnet is the first subnet of zone (a One Zone replica's), or of
// the region.
func (s *Service) defaultSubnet(zone string) string {
	for _, sn := range s.o.Subnets {
		if zone == "" || sn.AvailabilityZone == zone {
			return sn.ID
		}
	}
	return ""
}

// recover fails the drills a restart interrupted and deletes what they
// left, then the clones no drill knows of.
func (s *Service) recover(ctx context.Context, interrupted []*Drill) {
	for _, old := range interrupted {
		d := copyDrill(old) // the history keeps copies
		r := &run{s: s, d: &d, log: s.log.With("drill", d.DrillID, "fs_id", d.FileSystemID)}
		r.event("interrupted", "the region restarted during the drill", true)
		r.fail("interrupted: the region restarted during the drill")
		if d.Clone == nil {
			s.adoptClone(ctx, r)
		}
		if !d.Keep {
			r.cleanup(ctx)
		} else if c := d.Clone; c != nil {
			r.event("kept", fmt.Sprintf("clone %s kept", c.FileSystemID), false)
		}
		r.finish(ctx)
	}
	fss, _, err := s.o.Control.DescribeFileSystems(ctx, control.FileSystemQuery{})
	if err != nil {
		s.log.Warn("drill clones not swept", "err", err)
		return
	}
	for _, f := range fss {
		id := tagValue(f.Tags, TagDrill)
		if id == "" {
			continue
		}
		// Only the clones of finished drills that were not to be kept: a
		// drill that is gone from the history may have kept its clone.
		s.mu.Lock()
		d, known := s.drills[id]
		leftover := known && d.Done() && !d.Keep
		s.mu.Unlock()
		if !leftover {
			continue
		}
		s.log.Warn("deleting a drill clone left behind", "fs_id", f.ID, "drill", id)
		if err := deleteClone(ctx, s.o.Control, f.ID, s.o.CleanupTimeout); err != nil {
			s.log.Error("drill clone not deleted", "fs_id", f.ID, "drill", id, "err", err)
		}
	}
}

// adoptClone names in the record of an interrupted drill the clone it
// made but had not recorded yet (the region died between the clone and
// the record): it is then deleted with the drill, or kept in its record,
// never left behind unnamed.
func (s *Service) adoptClone(ctx context.Context, r *run) {
	fss, _, err := s.o.Control.DescribeFileSystems(ctx, control.FileSystemQuery{})
	if err != nil {
		r.log.Warn("drill clone not looked for", "err", err)
		return
	}
	for _, f := range fss {
		if tagValue(f.Tags, TagDrill) == r.d.DrillID {
			r.update(func(d *Drill) { d.Clone = &Clone{FileSystemID: f.ID, NFSPort: s.o.NFSPort} })
			r.event("clone-found", fmt.Sprintf("clone %s (%s) was made before the restart", f.ID, f.LifeCycleState), false)
			return
		}
	}
}

// Tags of a drill's clone.
const (
	TagDrill = "regionfs:drill"
)

func tagValue(tags []control.Tag, key string) string {
	for _, t := range tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}
