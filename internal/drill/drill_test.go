package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/refusal"
	"github.com/regionfs/regionfs/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func TestTimeJSON(t *testing.T) {
	at := time.Date(2026, 12, 5, 3, 4, 5, 250_000_000, time.UTC)
	b, err := json.Marshal(Time{at})
	if err != nil || string(b) != "1796439845.250000" {
		t.Fatalf("marshal: %s %v", b, err)
	}
	var got Time
	if err := json.Unmarshal(b, &got); err != nil || got.Sub(at).Abs() > time.Microsecond {
		t.Fatalf("unmarshal %s: %v %v", b, got, err)
	}
	if b, _ := json.Marshal(Time{}); string(b) != "null" {
		t.Fatalf("zero time: %s", b)
	}
	got = Time{at}
	if err := json.Unmarshal([]byte("null"), &got); err != nil || !got.IsZero() {
		t.Fatalf("null: %v %v", got, err)
	}
	if err := json.Unmarshal([]byte(`"yesterday"`), &got); err == nil {
		t.Fatal("a string read as a time")
	}
}

func TestCheckInput(t *testing.T) {
	ok := Input{FileSystemID: "fs-0123456789abcdef0"}
	for _, tc := range []struct {
		name string
		f    func(in *Input)
		want string // "" = valid
	}{
		{"id", func(*Input) {}, ""},
		{"arn", func(in *Input) {
			in.FileSystemID = "arn:aws:elasticfilesystem:us-west-2:123456789012:file-system/fs-0123456789abcdef0"
		}, ""},
		{"everything", func(in *Input) {
			in.SubnetID, in.SecurityGroups, in.Hold = "subnet-0aaaaaaaaaaaaaaa1", []string{"sg-01234567"}, MaxHold
			in.MaxRPO, in.MaxRTO = time.Second, time.Minute
			in.NotificationTopicARN = "arn:aws:sns:us-west-2:123456789012:dr-drills"
		}, ""},
		{"no file system", func(in *Input) { in.FileSystemID = "" }, "FileSystemId is required"},
		{"bad file system", func(in *Input) { in.FileSystemID = "fs-xyz" }, "at 'fileSystemId' failed to satisfy constraint"},
		{"long file system", func(in *Input) { in.FileSystemID = "fs-" + strings.Repeat("0", 200) }, "at 'fileSystemId' failed to satisfy constraint"},
		{"bad subnet", func(in *Input) { in.SubnetID = "subnet-1; rm" }, "not a subnet id"},
		{"six groups", func(in *Input) { in.SecurityGroups = make([]string, 6) }, "at most 5 security groups"},
		{"bad group", func(in *Input) { in.SecurityGroups = []string{"default"} }, "not a security group id"},
		{"negative hold", func(in *Input) { in.Hold = -time.Second }, "HoldSeconds"},
		{"long hold", func(in *Input) { in.Hold = MaxHold + time.Second }, "HoldSeconds"},
		{"negative objective", func(in *Input) { in.MaxRTO = -time.Second }, "must not be negative"},
		{"bad topic", func(in *Input) { in.NotificationTopicARN = "arn:aws:sqs:us-west-2:123456789012:q" }, "not an SNS topic ARN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ok
			tc.f(&in)
			err := checkInput(in)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (!errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want a bad request saying %q", err, tc.want)
			}
		})
	}
}

func TestRunCheck(t *testing.T) {
	ctx := context.Background()
	d := Drill{DrillID: "drill-0123456789abcdef0", Region: "us-west-2", FileSystemID: "fs-0aaaaaaaaaaaaaaa1",
		Clone: &Clone{FileSystemID: "fs-0bbbbbbbbbbbbbbb2", MountTargetID: "fsmt-1", IPAddress: "127.0.0.9", NFSPort: 2049}}
	res := RunCheck(ctx, `test "$REGIONFS_DRILL_FILE_SYSTEM_ID" = fs-0bbbbbbbbbbbbbbb2 && echo "$REGIONFS_DRILL_NFS_URL"`, 0, CheckEnv(d))
	if !res.Passed || res.ExitCode != 0 || res.By != "region" || !strings.Contains(res.Output, "nfs://127.0.0.9/?nfsport=2049&mountport=2049") {
		t.Fatalf("passing check: %+v", res)
	}
	res = RunCheck(ctx, "echo broken >&2; exit 3", 0, nil)
	if res.Passed || res.ExitCode != 3 || !strings.Contains(res.Output, "broken") {
		t.Fatalf("failing check: %+v", res)
	}
	res = RunCheck(ctx, "sleep 30", 200*time.Millisecond, nil)
	if res.Passed || res.ExitCode != -1 || !strings.Contains(lastLine(res.Output), "did not finish within 200ms") || res.Seconds > 20 {
		t.Fatalf("check past its timeout: %+v", res)
	}
	res = RunCheck(ctx, fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x; echo END", 3*maxOutput), 0, nil)
	if !res.Passed || len(res.Output) != maxOutput || !strings.HasSuffix(res.Output, "xEND\n") {
		t.Fatalf("long output: %d bytes, ends %q", len(res.Output), res.Output[max(0, len(res.Output)-8):])
	}
}

func TestScheduleCheck(t *testing.T) {
	in := Input{FileSystemID: "fs-0123456789abcdef0"}
	for _, tc := range []struct {
		sc   Schedule
		want string
	}{
		{Schedule{Name: "nightly", Cron: "30 2 * * *", Input: in}, ""},
		{Schedule{Name: "often", Cron: "@every 1h", Input: in}, ""},
		{Schedule{Cron: "@daily", Input: in}, "a name is required"},
		{Schedule{Name: "x", Cron: "61 * * * *", Input: in}, "drill schedule x"},
		{Schedule{Name: "x", Cron: "@daily"}, "file_system_id is required"},
		{Schedule{Name: "x", Cron: "@daily", Input: Input{FileSystemID: "fs-0123456789abcdef0", SubnetID: "nope"}}, "not a subnet id"},
	} {
		err := tc.sc.check()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.sc, err, tc.want)
		}
	}
}

// fakeControl is the part of a region's control plane drills use.
type fakeControl struct {
	mu       sync.Mutex
	fss      map[string]control.FileSystem
	mts      map[string]control.MountTarget
	n        int
	cloneErr error
	// cloned, when set, runs once the clone exists, before
	// CloneFileSystem returns; an error is returned (the clone stays).
	cloned func() error
	// down: the region is dead (a kill): deletions fail.
	down bool
}

func newFakeControl(fss ...control.FileSystem) *fakeControl {
	c := &fakeControl{fss: map[string]control.FileSystem{}, mts: map[string]control.MountTarget{}}
	for _, f := range fss {
		c.fss[f.ID] = f
	}
	return c
}

func (c *fakeControl) DescribeFileSystem(_ context.Context, ref string) (control.FileSystem, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.fss[ref]
	if !ok {
		return control.FileSystem{}, control.Errorf(control.ErrFileSystemNotFound, "File system '%s' does not exist.", ref)
	}
	return f, nil
}

func (c *fakeControl) DescribeFileSystems(context.Context, control.FileSystemQuery) ([]control.FileSystem, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []control.FileSystem
	for _, f := range c.fss {
		out = append(out, f)
	}
	return out, "", nil
}

func (c *fakeControl) CloneFileSystem(_ context.Context, in control.CloneInput) (control.FileSystem, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cloneErr != nil {
		return control.FileSystem{}, c.cloneErr
	}
	c.n++
	f := control.FileSystem{ID: fmt.Sprintf("fs-0c%015d", c.n), Tags: in.Tags}
	c.fss[f.ID] = f
	if c.cloned != nil {
		c.mu.Unlock()
		err := c.cloned()
		c.mu.Lock()
		if err != nil {
			return control.FileSystem{}, err
		}
	}
	return f, nil
}

func (c *fakeControl) tagged(drill string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, f := range c.fss {
		if tagValue(f.Tags, TagDrill) == drill {
			out = append(out, f.ID)
		}
	}
	return out
}

func (c *fakeControl) CreateMountTarget(_ context.Context, in control.CreateMountTargetInput) (control.MountTarget, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	m := control.MountTarget{ID: fmt.Sprintf("fsmt-0%016d", c.n), FileSystemID: in.FileSystemID, SubnetID: in.SubnetID, IPAddress: "127.0.0.1"}
	c.mts[m.ID] = m
	return m, nil
}

func (c *fakeControl) DescribeMountTargets(_ context.Context, q control.MountTargetQuery) ([]control.MountTarget, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.fss[q.FileSystemID]; !ok {
		return nil, "", control.Errorf(control.ErrFileSystemNotFound, "File system '%s' does not exist.", q.FileSystemID)
	}
	var out []control.MountTarget
	for _, m := range c.mts {
		if m.FileSystemID == q.FileSystemID {
			out = append(out, m)
		}
	}
	return out, "", nil
}

func (c *fakeControl) DeleteMountTarget(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return errors.New("the region is down")
	}
	if _, ok := c.mts[id]; !ok {
		return control.Errorf(control.ErrMountTargetNotFound, "Mount target '%s' does not exist.", id)
	}
	delete(c.mts, id)
	return nil
}

func (c *fakeControl) DeleteFileSystem(_ context.Context, ref string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return errors.New("the region is down")
	}
	for _, m := range c.mts {
		if m.FileSystemID == ref {
			return control.Errorf(control.ErrFileSystemInUse, "File system '%s' has mount targets.", ref)
		}
	}
	delete(c.fss, ref)
	return nil
}

func (c *fakeControl) has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.fss[id]
	return ok
}

func (c *fakeControl) mountTargets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.mts)
}

// fakeReplicas is one replication whose destination is here.
type fakeReplicas struct {
	rep Replication
	// reachable: the source region commits canaries; lost: they never
	// reach the replica.
	reachable, lost bool
}

func (r *fakeReplicas) Destination(_ context.Context, fsID string) (Replication, error) {
	if fsID != r.rep.FileSystemID && fsID != r.rep.SourceFileSystemID {
		return Replication{}, refusal.Errorf(ErrNotDestination, "%s is not a replication destination here.", fsID)
	}
	return r.rep, nil
}

func (r *fakeReplicas) Status(context.Context, string) (Replication, error) { return r.rep, nil }

func (r *fakeReplicas) Canary(context.Context, string, string) (CanaryResult, error) {
	if !r.reachable {
		return CanaryResult{}, refusal.Errorf(ErrSourceUnreachable, "Region %s does not answer.", r.rep.SourceRegion)
	}
	now := time.Now()
	return CanaryResult{Seq: 77, SourceTime: now, Committed: now}, nil
}

func (r *fakeReplicas) WaitCanary(ctx context.Context, _ string, seq uint64, _ string) (time.Time, error) {
	if !r.reachable || seq != 77 {
		return time.Time{}, errors.New("no such canary was committed")
	}
	if r.lost {
		<-ctx.Done()
		return time.Time{}, ctx.Err()
	}
	return time.Now(), nil
}

type published struct {
	mu      sync.Mutex
	data    []Datum
	notes   []string // topic: subject
	noteTxt []string
}

func (p *published) PutMetrics(_ context.Context, data []Datum) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.data = append(p.data, data...)
	return nil
}

func (p *published) Notify(_ context.Context, topic, subject, message string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notes = append(p.notes, topic+": "+subject)
	p.noteTxt = append(p.noteTxt, message)
	return nil
}

const (
	replicaID = "fs-0aaaaaaaaaaaaaaa1"
	sourceID  = "fs-0eeeeeeeeeeeeeee1"
	topic     = "arn:aws:sns:us-west-2:123456789012:dr-drills"
)

type env struct {
	kv   *kv.Memory
	ctl  *fakeControl
	reps *fakeReplicas
	pub  *published
	reg  *prometheus.Registry
	s    *Service
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{kv: kv.NewMemory(), ctl: newFakeControl(control.FileSystem{ID: replicaID}), pub: &published{},
		reps: &fakeReplicas{rep: Replication{ID: "rc-1", SourceFileSystemID: sourceID, SourceRegion: "us-east-1", FileSystemID: replicaID,
			Status: "ENABLED", LastReplicated: time.Now().Add(-3 * time.Second), AppliedSeq: 42, Consistent: true, ReadOnly: true}}}
	e.open(t, Options{})
	return e
}

// open (re)opens the service over the env's store.
func (e *env) open(t *testing.T, o Options) {
	t.Helper()
	if e.s != nil {
		e.s.Close()
	}
	o.Region, o.Control, o.Replicas, o.KV, o.Publisher = "us-west-2", e.ctl, e.reps, e.kv, e.pub
	o.Subnets = []Subnet{{ID: "subnet-0aaaaaaaaaaaaaaa1", AvailabilityZone: "us-west-2a"}}
	o.NFSPort = 2049
	e.reg = prometheus.NewRegistry()
	o.Registerer = e.reg
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	e.s = s
	t.Cleanup(func() { s.Close() })
}

func (e *env) wait(t *testing.T, id string) Drill {
	t.Helper()
	var d Drill
	testkit.WaitFor(t, "drill "+id+" to end", 30*time.Second, func() bool {
		var err error
		d, err = e.s.Get(context.Background(), id)
		return err == nil && d.Done()
	})
	return d
}

// A drill whose clone cannot be made fails, says why, measures the RPO
// from the recovery point when the source region does not answer, leaves
// nothing behind, and is counted, published, notified and kept in the
// history across a restart.
func TestDrillFailsWithoutClone(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.ctl.cloneErr = control.Errorf(control.ErrConflict, "The replica is being resynchronised.")
	d, err := e.s.Start(ctx, Input{FileSystemID: sourceID, NotificationTopicARN: topic})
	if err != nil {
		t.Fatal(err)
	}
	if d.FileSystemID != replicaID || d.SubnetID != "subnet-0aaaaaaaaaaaaaaa1" || d.Trigger != "api" || d.Done() {
		t.Fatalf("started %+v", d)
	}
	d = e.wait(t, d.DrillID)
	if d.State != StateFailed || d.Failure != "no clone of the replica: The replica is being resynchronised." {
		t.Fatalf("drill ended %s: %q", d.State, d.Failure)
	}
	if d.SourceReachable || !strings.Contains(d.SourceMessage, "us-east-1 does not answer") || d.RPOMethod != RPORecoveryPointAge ||
		d.RPOSeconds == nil || *d.RPOSeconds < 3 || *d.RPOSeconds > 60 || d.RTOSeconds != nil {
		t.Fatalf("measurements: reachable=%v %q rpo=%v (%s) rto=%v", d.SourceReachable, d.SourceMessage, ptrValue(d.RPOSeconds), d.RPOMethod, ptrValue(d.RTOSeconds))
	}
	steps := map[string]bool{}
	for _, ev := range d.Timeline {
		steps[ev.Step] = true
	}
	for _, s := range []string{"start", "source-unreachable", "clone", "done"} {
		if !steps[s] {
			t.Errorf("no %q step in the timeline %+v", s, d.Timeline)
		}
	}
	if fss, _, _ := e.ctl.DescribeFileSystems(ctx, control.FileSystemQuery{}); e.ctl.mountTargets() != 0 || len(fss) != 1 {
		t.Fatalf("left behind: %d file systems, %d mount targets", len(fss), e.ctl.mountTargets())
	}
	// The record shows the end before the metrics and the notification go
	// out.
	testkit.WaitFor(t, "the drill's notification", 30*time.Second, func() bool {
		e.pub.mu.Lock()
		defer e.pub.mu.Unlock()
		return len(e.pub.notes) > 0
	})
	if got := testutil.ToFloat64(e.s.metrics.failed.WithLabelValues(replicaID)); got != 1 {
		t.Fatalf("regionfs_drill_failed = %v", got)
	}
	if got := testutil.ToFloat64(e.s.metrics.runs.WithLabelValues("failed")); got != 1 {
		t.Fatalf("regionfs_drill_runs_total{result=failed} = %v", got)
	}
	e.pub.mu.Lock()
	data, notes := append([]Datum(nil), e.pub.data...), append([]string(nil), e.pub.notes...)
	e.pub.mu.Unlock()
	if len(data) < 1 || data[0].Name != "DrillFailed" || data[0].Value != 1 || data[0].Dimensions["FileSystemId"] != replicaID {
		t.Fatalf("published %+v", data)
	}
	if len(notes) != 1 || !strings.HasPrefix(notes[0], topic+": ") {
		t.Fatalf("notified %q", notes)
	}
	if _, err := e.s.Start(ctx, Input{FileSystemID: replicaID}); err != nil {
		t.Fatalf("a second drill after the first ended: %v", err)
	}
	e.open(t, Options{})
	got, err := e.s.Get(ctx, d.DrillID)
	if err != nil || got.State != StateFailed || got.Failure != d.Failure || len(got.Timeline) != len(d.Timeline) {
		t.Fatalf("after a restart: %+v %v", got, err)
	}
	if got := testutil.ToFloat64(e.s.metrics.failed.WithLabelValues(replicaID)); got != 1 {
		t.Fatalf("regionfs_drill_failed after a restart = %v", got)
	}
	if l := e.s.List(ctx, sourceID, 0); len(l) != 2 {
		t.Fatalf("history of %s: %d drills", sourceID, len(l))
	}
}

func TestStartRefusals(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for _, tc := range []struct {
		in   Input
		kind error
	}{
		{Input{FileSystemID: "fs-0123456789abcdef0"}, ErrNotDestination},
		{Input{FileSystemID: "bad"}, ErrBadRequest},
	} {
		if _, err := e.s.Start(ctx, tc.in); !errors.Is(err, tc.kind) {
			t.Errorf("%+v: %v, want %v", tc.in, err, tc.kind)
		}
	}
	e.reps.rep.Consistent = false
	if _, err := e.s.Start(ctx, Input{FileSystemID: replicaID}); !errors.Is(err, ErrNotReady) {
		t.Fatalf("a replica in its initial sync: %v", err)
	}
	e.reps.rep.Consistent = true
	if err := e.s.ReportCheck(ctx, "drill-0123456789abcdef0", CheckResult{Passed: true}); !errors.Is(err, ErrDrillNotFound) {
		t.Fatalf("check for an unknown drill: %v", err)
	}
	if l := e.s.List(ctx, "", 0); len(l) != 0 {
		t.Fatalf("refused drills in the history: %+v", l)
	}
}

// A drill a restart interrupted is failed when the region opens again and
// its clone and mount target are deleted; a clone of a finished drill
// that was not to be kept is swept, a kept one stays.
func TestInterruptedDrillCleanedUp(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	put := func(d Drill) {
		b, _ := json.Marshal(d)
		bt := e.kv.NewBatch()
		bt.Set(drillKey(d.DrillID), b)
		if err := bt.Commit(true); err != nil {
			t.Fatal(err)
		}
	}
	clone := func(drill string) string {
		f, _ := e.ctl.CloneFileSystem(ctx, control.CloneInput{FileSystemID: replicaID, Tags: []control.Tag{{Key: TagDrill, Value: drill}}})
		return f.ID
	}
	now := time.Now()
	running := Drill{DrillID: "drill-000000000000000a1", FileSystemID: replicaID, SourceRegion: "us-east-1", State: StateRunning, StartTime: Time{now.Add(-time.Minute)}}
	running.Clone = &Clone{FileSystemID: clone(running.DrillID)}
	if _, err := e.ctl.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: running.Clone.FileSystemID}); err != nil {
		t.Fatal(err)
	}
	put(running)
	leftover := Drill{DrillID: "drill-000000000000000b2", FileSystemID: replicaID, State: StateSucceeded, StartTime: Time{now.Add(-time.Hour)}}
	leftoverClone := clone(leftover.DrillID)
	put(leftover)
	kept := Drill{DrillID: "drill-000000000000000c3", FileSystemID: replicaID, State: StateSucceeded, Keep: true, StartTime: Time{now.Add(-2 * time.Hour)}}
	keptClone := clone(kept.DrillID)
	put(kept)
	unknownClone := clone("drill-000000000000000d4") // a drill gone from the history may have kept it

	e.open(t, Options{})
	d := e.wait(t, running.DrillID)
	if d.State != StateFailed || !strings.Contains(d.Failure, "interrupted") || !d.CleanedUp {
		t.Fatalf("interrupted drill after the restart: %s %q cleaned=%v", d.State, d.Failure, d.CleanedUp)
	}
	// Interrupted before its canary was answered, it does not know
	// whether the source region answered: it does not say it did not.
	if txt := Text(d); strings.Contains(txt, "unreachable") {
		t.Fatalf("the interrupted drill's report says the source region was unreachable:\n%s", txt)
	}
	testkit.WaitFor(t, "the leftover clones to go", 30*time.Second, func() bool {
		return !e.ctl.has(running.Clone.FileSystemID) && !e.ctl.has(leftoverClone)
	})
	if e.ctl.mountTargets() != 0 {
		t.Fatal("the interrupted drill's mount target is left")
	}
	e.s.Close() // the sweep is over
	if !e.ctl.has(keptClone) || !e.ctl.has(unknownClone) || !e.ctl.has(replicaID) {
		t.Fatalf("deleted what was to be kept: kept %v, unknown %v, replica %v", e.ctl.has(keptClone), e.ctl.has(unknownClone), e.ctl.has(replicaID))
	}
}

// A region killed after the drill's clone exists but before the record
// names it (and after the canary measured the RPO): the restart reports
// the RPO that was measured, names the clone in the record, and deletes
// it, or keeps it when asked (never an orphan clone no record names).
func TestDrillKilledBeforeCloneRecord(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t)
			e.reps.reachable = true
			var crashed *kv.Memory
			s, mem := e.s, e.kv
			e.ctl.cloned = func() error {
				// The canary ran beside the clone: once it measured the
				// RPO, the record may hold it; the region dies now.
				testkit.Until(5*time.Second, func() bool {
					l := s.List(ctx, "", 0)
					return len(l) == 1 && l[0].RPOSeconds != nil
				})
				crashed = mem.CrashClone()
				e.ctl.mu.Lock()
				e.ctl.down = true // the dead region deletes nothing
				e.ctl.mu.Unlock()
				return errors.New("killed")
			}
			d, err := e.s.Start(ctx, Input{FileSystemID: replicaID, Keep: keep})
			if err != nil {
				t.Fatal(err)
			}
			e.wait(t, d.DrillID)
			e.s.Close()
			if crashed == nil {
				t.Fatal("the clone hook did not run")
			}
			e.ctl.mu.Lock()
			e.ctl.cloned, e.ctl.down = nil, false
			e.ctl.mu.Unlock()
			clones := e.ctl.tagged(d.DrillID)
			if len(clones) != 1 {
				t.Fatalf("clones of the drill before the restart: %v", clones)
			}
			e.kv = crashed
			e.open(t, Options{})
			got := e.wait(t, d.DrillID)
			if got.State != StateFailed || !strings.Contains(got.Failure, "interrupted") {
				t.Fatalf("after the restart: %s %q", got.State, got.Failure)
			}
			if got.RPOSeconds == nil || got.RPOMethod != RPOCanary {
				t.Fatalf("the RPO measured before the kill is lost: %v %q\n%s", got.RPOSeconds, got.RPOMethod, Text(got))
			}
			if got.Clone == nil || got.Clone.FileSystemID != clones[0] {
				t.Fatalf("the record does not name the clone %s: %+v", clones[0], got.Clone)
			}
			e.s.Close() // the sweep is over
			if keep {
				if !e.ctl.has(clones[0]) || got.CleanedUp {
					t.Fatalf("the kept clone: exists %v, cleaned up %v", e.ctl.has(clones[0]), got.CleanedUp)
				}
				return
			}
			if e.ctl.has(clones[0]) || !got.CleanedUp || !got.Clone.Deleted {
				t.Fatalf("the clone: exists %v, cleaned up %v, deleted %v", e.ctl.has(clones[0]), got.CleanedUp, got.Clone.Deleted)
			}
		})
	}
}

// The history keeps the newest drills up to Options.History; a scheduled
// drill that cannot start is in it as a failed drill.
func TestHistoryTrimmed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	clock := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	e.open(t, Options{History: 3, Clock: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Second)
		return clock
	}})
	var ids []string
	for range 5 {
		in := Input{FileSystemID: "fs-0123456789abcdef0", Trigger: "schedule:nightly"}
		_, err := e.s.Start(ctx, in)
		if !errors.Is(err, ErrNotDestination) {
			t.Fatalf("start: %v", err)
		}
		e.s.refused(ctx, in, err)
		l := e.s.List(ctx, "", 1)
		ids = append(ids, l[0].DrillID)
		if l[0].State != StateFailed || l[0].Trigger != "schedule:nightly" || !strings.Contains(l[0].Failure, "could not start: fs-0123456789abcdef0 is not a replication destination") {
			t.Fatalf("refused scheduled drill: %+v", l[0])
		}
	}
	l := e.s.List(ctx, "", 0)
	if len(l) != 3 || l[0].DrillID != ids[4] || l[2].DrillID != ids[2] {
		t.Fatalf("history %d drills, want the last 3 of %v", len(l), ids)
	}
	e.open(t, Options{History: 3})
	if l := e.s.List(ctx, "", 0); len(l) != 3 {
		t.Fatalf("history after a restart: %d drills", len(l))
	}
	if _, err := e.s.Get(ctx, ids[0]); !errors.Is(err, ErrDrillNotFound) {
		t.Fatalf("trimmed drill: %v", err)
	}
}

// The canary measures the RPO when the source region answers; one that
// does not reach the replica in time fails the drill with the time waited
// as a lower bound.
func TestDrillCanary(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.open(t, Options{CanaryTimeout: 100 * time.Millisecond})
	e.ctl.cloneErr = control.Errorf(control.ErrConflict, "No clone today.")
	e.reps.reachable = true
	d, err := e.s.Start(ctx, Input{FileSystemID: replicaID})
	if err != nil {
		t.Fatal(err)
	}
	d = e.wait(t, d.DrillID)
	if !d.SourceReachable || d.RPOMethod != RPOCanary || d.RPOSeconds == nil || *d.RPOSeconds > 10 ||
		d.Canary == nil || d.Canary.Seq != 77 || d.Canary.Replicated.IsZero() || d.Canary.Replicated.Before(d.Canary.Requested.Time) {
		t.Fatalf("canary drill: reachable=%v %s rpo=%v canary %+v", d.SourceReachable, d.RPOMethod, ptrValue(d.RPOSeconds), d.Canary)
	}

	e.reps.lost = true
	d, err = e.s.Start(ctx, Input{FileSystemID: replicaID})
	if err != nil {
		t.Fatal(err)
	}
	d = e.wait(t, d.DrillID)
	timedOut := false
	for _, ev := range d.Timeline {
		if ev.Step == "canary-timeout" && ev.Failed && strings.Contains(ev.Message, "did not reach the replica within 100ms") {
			timedOut = true
		}
	}
	if d.State != StateFailed || !timedOut || d.RPOMethod != RPOCanaryTimeout || d.RPOSeconds == nil || *d.RPOSeconds != 0.1 {
		t.Fatalf("lost canary: %s %s rpo=%v timeline %+v", d.State, d.RPOMethod, ptrValue(d.RPOSeconds), d.Timeline)
	}
}

// A measurement past its objective fails the drill, saying by how much.
func TestObjectives(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		rpo, rto, maxRPO, maxRTO *float64
		want                     string
	}{
		{rpo: seconds(2 * time.Second), maxRPO: seconds(time.Second), want: "RPO 2.000s exceeds the objective of 1s"},
		{rto: seconds(90 * time.Second), maxRTO: seconds(time.Minute), want: "RTO 90.000s exceeds the objective of 60s"},
		{rpo: seconds(time.Second), maxRPO: seconds(time.Second), rto: seconds(time.Second), maxRTO: seconds(2 * time.Second)},
		{rpo: seconds(time.Hour), rto: seconds(time.Hour)}, // no objectives
		{maxRPO: seconds(time.Second)}, // not measured
	} {
		d := &Drill{DrillID: newDrillID(), StartTime: Time{time.Now()}, RPOSeconds: tc.rpo, RTOSeconds: tc.rto, MaxRPOSeconds: tc.maxRPO, MaxRTOSeconds: tc.maxRTO}
		r := &run{s: e.s, d: d, log: e.s.log}
		r.objectives()
		if d.Failure != tc.want {
			t.Errorf("rpo %v/%v rto %v/%v: failure %q, want %q", ptrValue(tc.rpo), ptrValue(tc.maxRPO), ptrValue(tc.rto), ptrValue(tc.maxRTO), d.Failure, tc.want)
		}
	}
}
