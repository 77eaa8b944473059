package drill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/regionfs/regionfs/internal/control"
)

// run is one drill in progress.
type run struct {
	s   *Service
	in  Input
	rep Replication
	log *slog.Logger

	mu sync.Mutex // guards d (the canary and the sampler run beside the main path)
	d  *Drill

	// saveMu orders the saves of the canary and the recovery path: a
	// copy is saved before any later copy, so the record never goes back
	// (to one without the clone, say).
	saveMu sync.Mutex
}

// event adds a step to the timeline.
func (r *run) event(step, msg string, failed bool) {
	now := r.s.o.Clock()
	r.mu.Lock()
	r.d.Timeline = append(r.d.Timeline, Event{Time: Time{now}, Seconds: now.Sub(r.d.StartTime.Time).Seconds(), Step: step, Message: msg, Failed: failed})
	r.mu.Unlock()
	lvl := slog.LevelInfo
	if failed {
		lvl = slog.LevelWarn
	}
	r.log.Log(context.Background(), lvl, "drill "+step, "msg", msg)
}

// update changes the drill under its lock.
func (r *run) update(f func(d *Drill)) {
	r.mu.Lock()
	f(r.d)
	r.mu.Unlock()
}

// fail records why the drill fails (the first reason wins).
func (r *run) fail(why string) {
	r.update(func(d *Drill) {
		if d.Failure == "" {
			d.Failure = why
		}
	})
}

// persist saves a copy of the drill (Get shows it).
func (r *run) persist() {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	r.mu.Lock()
	c := copyDrill(r.d)
	r.mu.Unlock()
	if err := r.s.save(&c); err != nil {
		r.log.Error("drill record not saved", "err", err)
	}
}

func (r *run) since(t time.Time) time.Duration { return r.s.o.Clock().Sub(t) }

// run is the whole drill: the canary and the recovery path at once, then
// the check, the objectives, the cleanup and the report.
func (r *run) run(ctx context.Context) {
	o := r.s.o
	if st, err := o.Replicas.Status(ctx, r.rep.ID); err == nil {
		r.update(func(d *Drill) {
			d.Replication = &During{StatusBefore: st.Status, AppliedSeqBefore: st.AppliedSeq, ReplicaReadOnly: st.ReadOnly}
		})
	} else {
		r.update(func(d *Drill) { d.Replication = &During{ReplicaReadOnly: true} })
	}
	sctx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.sample(sctx)
	}()
	canaryDone := make(chan struct{})
	go func() {
		defer wg.Done()
		defer close(canaryDone)
		r.canary(ctx)
		// The RPO survives a restart that interrupts the recovery path.
		r.persist()
	}()
	answered := r.recover(ctx)
	<-canaryDone
	r.persist()
	if answered && ctx.Err() == nil {
		r.check(ctx)
	}
	r.objectives()
	if !r.d.Keep {
		r.cleanup(ctx)
	} else if c := r.d.Clone; c != nil {
		r.event("kept", fmt.Sprintf("clone %s and mount target %s (%s) kept", c.FileSystemID, c.MountTargetID, c.IPAddress), false)
	}
	stopSampling()
	wg.Wait()
	if st, err := o.Replicas.Status(context.WithoutCancel(ctx), r.rep.ID); err == nil {
		r.update(func(d *Drill) {
			d.Replication.StatusAfter, d.Replication.AppliedSeqAfter = st.Status, st.AppliedSeq
			if !st.ReadOnly {
				d.Replication.ReplicaReadOnly = false
			}
		})
	}
	if ctx.Err() != nil {
		r.fail("stopped: the region is shutting down")
	}
	r.finish(ctx)
}

// sample follows the replication's lag and the replica's mode until ctx
// ends.
func (r *run) sample(ctx context.Context) {
	t := time.NewTicker(r.s.o.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := r.s.o.Replicas.Status(ctx, r.rep.ID)
		if err != nil {
			continue
		}
		var lag float64
		if !st.LastReplicated.IsZero() {
			lag = max(0, r.s.o.Clock().Sub(st.LastReplicated).Seconds())
		}
		r.update(func(d *Drill) {
			w := d.Replication
			w.Samples++
			w.MaxLagSeconds = max(w.MaxLagSeconds, lag)
			if !st.ReadOnly {
				w.ReplicaReadOnly = false
			}
		})
	}
}

// canary measures the RPO: a canary committed on the source, timed until
// the replica applied it.
func (r *run) canary(ctx context.Context) {
	o := r.s.o
	token := newToken()
	req := o.Clock()
	r.update(func(d *Drill) { d.Canary = &Canary{Token: token, Requested: Time{req}} })
	res, err := o.Replicas.Canary(ctx, r.rep.ID, token)
	if err != nil {
		if !errors.Is(err, ErrSourceUnreachable) {
			r.event("canary", "the source did not commit the canary: "+r.public(err), true)
			r.fail("the source did not commit the canary: " + r.public(err))
			return
		}
		st, serr := o.Replicas.Status(ctx, r.rep.ID)
		msg := fmt.Sprintf("source region %s does not answer: the RPO cannot be measured now", r.rep.SourceRegion)
		r.update(func(d *Drill) {
			d.SourceReachable, d.SourceMessage = false, msg
			if serr == nil && !st.LastReplicated.IsZero() {
				d.RPOSeconds, d.RPOMethod = seconds(max(0, o.Clock().Sub(st.LastReplicated))), RPORecoveryPointAge
			}
		})
		if serr == nil && !st.LastReplicated.IsZero() {
			msg += fmt.Sprintf("; the replica holds the source's changes up to %s (%s ago): a failover now loses at least what came after",
				st.LastReplicated.UTC().Format("2006-01-02 15:04:05.000 UTC"), r.since(st.LastReplicated).Round(time.Millisecond))
		}
		r.event("source-unreachable", msg, false)
		return
	}
	r.update(func(d *Drill) {
		d.SourceReachable = true
		d.Canary.Seq, d.Canary.SourceTime, d.Canary.Committed = res.Seq, Time{res.SourceTime}, Time{res.Committed}
	})
	r.event("canary-committed", fmt.Sprintf("canary committed on %s in %s at seq %d after %s",
		r.rep.SourceFileSystemID, r.rep.SourceRegion, res.Seq, res.Committed.Sub(req).Round(time.Microsecond)), false)
	wctx, cancel := context.WithTimeout(ctx, o.CanaryTimeout)
	at, err := o.Replicas.WaitCanary(wctx, r.rep.ID, res.Seq, token)
	cancel()
	switch {
	case err == nil:
		rpo := at.Sub(req)
		r.update(func(d *Drill) {
			d.Canary.Replicated = Time{at}
			d.RPOSeconds, d.RPOMethod = seconds(max(0, rpo)), RPOCanary
		})
		r.event("canary-replicated", fmt.Sprintf("the replica applied the canary (seq %d) %s after it was requested: RPO now %s",
			res.Seq, rpo.Round(time.Microsecond), rpo.Round(time.Microsecond)), false)
	case ctx.Err() == nil:
		r.update(func(d *Drill) { d.RPOSeconds, d.RPOMethod = seconds(o.CanaryTimeout), RPOCanaryTimeout })
		msg := fmt.Sprintf("the canary (seq %d) did not reach the replica within %s: RPO is at least that", res.Seq, o.CanaryTimeout)
		r.event("canary-timeout", msg, true)
		r.fail(msg)
	}
}

// recover is the recovery path, timed: a writable clone of the replica, a
// mount target, and the first acknowledged NFS write. It reports whether
// the clone answered.
func (r *run) recover(ctx context.Context) bool {
	o := r.s.o
	start := r.d.StartTime.Time
	st, _ := o.Replicas.Status(ctx, r.rep.ID)
	t := o.Clock()
	c, err := o.Control.CloneFileSystem(ctx, control.CloneInput{FileSystemID: r.rep.FileSystemID, Tags: []control.Tag{
		{Key: "Name", Value: "drill " + r.d.DrillID + " of " + r.rep.FileSystemID}, {Key: TagDrill, Value: r.d.DrillID}}})
	if err != nil {
		msg := "no clone of the replica: " + r.public(err)
		r.event("clone", msg, true)
		r.fail(msg)
		return false
	}
	r.update(func(d *Drill) {
		d.Clone = &Clone{FileSystemID: c.ID, NFSPort: o.NFSPort, ReplicaSeq: st.AppliedSeq, RecoveryPoint: Time{st.LastReplicated}}
	})
	rp := "-"
	if !st.LastReplicated.IsZero() {
		rp = st.LastReplicated.UTC().Format("15:04:05.000")
	}
	r.event("clone-created", fmt.Sprintf("writable clone %s of the replica at seq %d (source changes up to %s) in %s",
		c.ID, st.AppliedSeq, rp, r.since(t).Round(time.Microsecond)), false)
	r.persist()
	t = o.Clock()
	mt, err := o.Control.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: c.ID, SubnetID: r.d.SubnetID, SecurityGroups: r.d.SecurityGroups})
	if err != nil {
		msg := "no mount target for the clone: " + r.public(err)
		r.event("mount-target", msg, true)
		r.fail(msg)
		return false
	}
	r.update(func(d *Drill) {
		d.Clone.MountTargetID, d.Clone.IPAddress = mt.ID, mt.IPAddress
		d.SecurityGroups = mt.SecurityGroups
	})
	r.event("mount-target", fmt.Sprintf("mount target %s at %s in %s (%s) in %s", mt.ID, mt.IPAddress, mt.SubnetID, mt.AvailabilityZoneName,
		r.since(t).Round(time.Microsecond)), false)
	r.persist()
	addr := net.JoinHostPort(mt.IPAddress, strconv.Itoa(o.NFSPort))
	t = o.Clock()
	at, err := r.probe(ctx, addr)
	if err != nil {
		msg := fmt.Sprintf("the clone did not answer an NFS write at %s: %s", addr, err)
		r.event("nfs-write", msg, true)
		r.fail(msg)
		return false
	}
	rto := at.Sub(start)
	r.update(func(d *Drill) {
		d.Clone.Answered = Time{at}
		d.RTOSeconds = seconds(rto)
	})
	r.event("nfs-write", fmt.Sprintf("the clone acknowledged an NFS write (FILE_SYNC) at %s after %s: RTO %s",
		addr, at.Sub(t).Round(time.Microsecond), rto.Round(time.Microsecond)), false)
	return true
}

// check runs the drill's check against the answering clone: the region's
// command (scheduled drills), or the client's, reported through the API.
func (r *run) check(ctx context.Context) {
	in := r.in
	if in.Check == "" && in.Hold <= 0 {
		return
	}
	r.update(func(d *Drill) { d.State = StateChecking })
	var res CheckResult
	if in.Check != "" {
		r.event("check", "running the check: "+in.Check, false)
		r.persist()
		res = RunCheck(ctx, in.Check, in.CheckTimeout, CheckEnv(r.snapshot()))
	} else {
		ch := make(chan CheckResult, 1)
		r.s.mu.Lock()
		r.s.checks[r.d.DrillID] = ch
		r.s.mu.Unlock()
		r.event("check", fmt.Sprintf("waiting up to %s for the client's check", in.Hold), false)
		r.persist()
		timer := time.NewTimer(in.Hold)
		select {
		case res = <-ch:
		case <-timer.C:
			res = CheckResult{ExitCode: -1, Output: fmt.Sprintf("no check result within %s", in.Hold), Seconds: in.Hold.Seconds(), By: "client"}
		case <-ctx.Done():
			res = CheckResult{ExitCode: -1, Output: "the region is shutting down", By: "client"}
		}
		timer.Stop()
		r.s.mu.Lock()
		delete(r.s.checks, r.d.DrillID)
		r.s.mu.Unlock()
	}
	r.update(func(d *Drill) {
		d.State = StateRunning
		d.Check = &res
	})
	if res.Passed {
		r.event("check-passed", fmt.Sprintf("the check passed in %.3fs", res.Seconds), false)
		return
	}
	msg := fmt.Sprintf("the check failed (exit %d)", res.ExitCode)
	if res.ExitCode == -1 {
		msg = "the check did not finish: " + lastLine(res.Output)
	}
	r.event("check-failed", msg, true)
	r.fail(msg)
}

// snapshot is a copy of the drill.
func (r *run) snapshot() Drill {
	r.mu.Lock()
	defer r.mu.Unlock()
	return copyDrill(r.d)
}

// objectives fails the drill when a measurement exceeds its objective.
func (r *run) objectives() {
	d := r.snapshot()
	if d.MaxRPOSeconds != nil && d.RPOSeconds != nil && *d.RPOSeconds > *d.MaxRPOSeconds {
		msg := fmt.Sprintf("RPO %.3fs exceeds the objective of %gs", *d.RPOSeconds, *d.MaxRPOSeconds)
		r.event("objective", msg, true)
		r.fail(msg)
	}
	if d.MaxRTOSeconds != nil && d.RTOSeconds != nil && *d.RTOSeconds > *d.MaxRTOSeconds {
		msg := fmt.Sprintf("RTO %.3fs exceeds the objective of %gs", *d.RTOSeconds, *d.MaxRTOSeconds)
		r.event("objective", msg, true)
		r.fail(msg)
	}
}

// cleanup deletes the clone's mount target, then the clone (and any
// clone tagged with this drill that the record does not name), and waits
// until they are gone.
func (r *run) cleanup(ctx context.Context) {
	o := r.s.o
	// Cleanup goes on when the region shuts down, briefly.
	timeout := o.CleanupTimeout
	if ctx.Err() != nil {
		timeout = min(timeout, 10*time.Second)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	r.update(func(d *Drill) { d.State = StateCleaning })
	r.persist()
	t := o.Clock()
	var ids []string
	if c := r.snapshot().Clone; c != nil {
		ids = append(ids, c.FileSystemID)
	}
	if fss, _, err := o.Control.DescribeFileSystems(cctx, control.FileSystemQuery{}); err == nil {
		for _, f := range fss {
			if tagValue(f.Tags, TagDrill) == r.d.DrillID && (len(ids) == 0 || f.ID != ids[0]) {
				ids = append(ids, f.ID)
			}
		}
	}
	var errs []error
	for _, id := range ids {
		if err := deleteClone(cctx, o.Control, id, timeout); err != nil {
			r.log.Error("drill clone not deleted", "clone", id, "err", err)
			errs = append(errs, fmt.Errorf("%s: %s", id, r.public(err)))
		}
	}
	if len(errs) > 0 {
		msg := "clean-up incomplete: " + errors.Join(errs...).Error()
		r.event("cleanup", msg, true)
		r.fail(msg)
		return
	}
	r.update(func(d *Drill) {
		d.CleanedUp = true
		if d.Clone != nil {
			d.Clone.Deleted = true
		}
	})
	if len(ids) > 0 {
		r.event("cleanup", fmt.Sprintf("clone %s and its mount target deleted in %s", ids[0], r.since(t).Round(time.Millisecond)), false)
	}
}

// deleteClone deletes a clone's mount targets and then the clone, and
// waits until they are gone.
func deleteClone(ctx context.Context, c Control, fsID string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	mts, _, err := c.DescribeMountTargets(ctx, control.MountTargetQuery{FileSystemID: fsID})
	if errors.Is(err, control.ErrFileSystemNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, m := range mts {
		if err := c.DeleteMountTarget(ctx, m.ID); err != nil && !errors.Is(err, control.ErrMountTargetNotFound) {
			return err
		}
	}
	if err := poll(ctx, func() (bool, error) {
		mts, _, err := c.DescribeMountTargets(ctx, control.MountTargetQuery{FileSystemID: fsID})
		return len(mts) == 0, err
	}); err != nil {
		return fmt.Errorf("mount targets of %s not gone: %w", fsID, err)
	}
	if err := c.DeleteFileSystem(ctx, fsID); err != nil && !errors.Is(err, control.ErrFileSystemNotFound) {
		return err
	}
	return poll(ctx, func() (bool, error) {
		_, err := c.DescribeFileSystem(ctx, fsID)
		if errors.Is(err, control.ErrFileSystemNotFound) {
			return true, nil
		}
		return false, err
	})
}

// poll calls cond every 20 ms until it is true, fails, or ctx ends.
func poll(ctx context.Context, cond func() (bool, error)) error {
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// finish ends the drill: its state, the record, metrics, publication.
func (r *run) finish(ctx context.Context) {
	o := r.s.o
	now := o.Clock()
	r.update(func(d *Drill) {
		d.EndTime = Time{now}
		if d.Failure != "" {
			d.State = StateFailed
		} else {
			d.State = StateSucceeded
		}
	})
	// Whoever sees the drill ended may start the next one of its file
	// system at once, not only after the publication below.
	r.s.ended(r.d.FileSystemID, r.d.DrillID)
	d := r.snapshot()
	r.event("done", summaryLine(d), d.State == StateFailed)
	r.persist()
	d = r.snapshot()
	r.s.metrics.finished(&d, true)
	r.log.Info("drill finished", "state", d.State, "rpo_seconds", ptrValue(d.RPOSeconds), "rto_seconds", ptrValue(d.RTOSeconds),
		"source_reachable", d.SourceReachable, "failure", d.Failure)
	if o.Publisher == nil {
		return
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := o.Publisher.PutMetrics(pctx, cloudWatchData(d)); err != nil {
		r.log.Warn("drill metrics not published", "err", err)
	}
	if d.NotificationTopicARN != "" {
		if err := o.Publisher.Notify(pctx, d.NotificationTopicARN, notificationSubject(d), Text(d)); err != nil {
			r.log.Warn("drill notification not published", "topic", d.NotificationTopicARN, "err", err)
		}
	}
}

func ptrValue(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// public is the client-safe text of err: the message of a domain error,
// or a generic one (the cause goes to the log).
func (r *run) public(err error) string {
	var p interface{ PublicMessage() string }
	if errors.As(err, &p) && p.PublicMessage() != "" {
		return p.PublicMessage()
	}
	switch {
	case errors.Is(err, context.Canceled):
		return "stopped (the region is shutting down)"
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	}
	r.log.Warn("drill step failed", "err", err)
	return "an internal error (see the region's log)"
}

// cloudWatchData is what a finished drill publishes in MetricsNamespace.
func cloudWatchData(d Drill) []Datum {
	dims := map[string]string{"FileSystemId": d.FileSystemID}
	failed := 0.0
	if d.State == StateFailed {
		failed = 1
	}
	out := []Datum{{Name: "DrillFailed", Unit: "Count", Value: failed, Dimensions: dims}}
	if d.RPOSeconds != nil {
		out = append(out, Datum{Name: "RPO", Unit: "Seconds", Value: *d.RPOSeconds, Dimensions: dims})
	}
	if d.RTOSeconds != nil {
		out = append(out, Datum{Name: "RTO", Unit: "Seconds", Value: *d.RTOSeconds, Dimensions: dims})
	}
	return out
}
