package drill

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/regionfs/regionfs/internal/cron"
)

// Schedule is a drill the region runs by itself, when its Cron says.
type Schedule struct {
	// Name identifies the schedule (the drills' trigger is
	// "schedule:<name>").
	Name string
	// Cron is when: five fields (minute hour day-of-month month
	// day-of-week, with *, lists, ranges, steps and names), or @hourly,
	// @daily, @weekly, @monthly, @yearly, or "@every <duration>".
	Cron string
	// Location is the time zone of Cron (nil: the server's).
	Location *time.Location
	// Input is the drill (FileSystemID, subnet, objectives, check
	// command, notification topic).
	Input Input

	when cron.Schedule
}

func (sc *Schedule) check() error {
	if sc.Name == "" {
		return fmt.Errorf("drill schedule: a name is required")
	}
	c, err := cron.Parse(sc.Cron)
	if err != nil {
		return fmt.Errorf("drill schedule %s: %w", sc.Name, err)
	}
	sc.when = c
	if sc.Input.FileSystemID == "" {
		return fmt.Errorf("drill schedule %s: file_system_id is required", sc.Name)
	}
	if err := checkInput(sc.Input); err != nil {
		return fmt.Errorf("drill schedule %s: %w", sc.Name, err)
	}
	return nil
}

// schedule starts the drills of sc when they are due, until ctx ends. A
// drill that cannot start is recorded as a failed drill (so that the
// failure shows in the history, the metrics and the notification).
func (s *Service) schedule(ctx context.Context, sc Schedule) {
	loc := sc.Location
	if loc == nil {
		loc = time.Local
	}
	c := sc.when
	if c.String() == "" {
		var err error
		if c, err = cron.Parse(sc.Cron); err != nil {
			s.log.Error("drill schedule not started", "schedule", sc.Name, "err", err)
			return
		}
	}
	log := s.log.With("schedule", sc.Name)
	next := c.Next(s.o.Clock().In(loc))
	log.Info("drill scheduled", "cron", sc.Cron, "next", next)
	for {
		if next.IsZero() {
			log.Warn("drill schedule never fires again", "cron", sc.Cron)
			return
		}
		// Wake at least every minute, so that a clock that jumps is
		// noticed.
		wait := min(max(0, next.Sub(s.o.Clock())), time.Minute)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		now := s.o.Clock()
		if now.Before(next) {
			continue
		}
		in := sc.Input
		in.Trigger = "schedule:" + sc.Name
		d, err := s.Start(ctx, in)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("scheduled drill did not start", "err", err)
			s.refused(ctx, in, err)
		} else {
			log.Info("scheduled drill started", "drill", d.DrillID)
		}
		next = c.Next(now.In(loc))
	}
}

// refused records a drill that could not start as a failed drill.
func (s *Service) refused(ctx context.Context, in Input, cause error) {
	var p interface{ PublicMessage() string }
	msg := "the drill could not start"
	if errors.As(cause, &p) {
		msg += ": " + p.PublicMessage()
	}
	now := s.o.Clock()
	d := &Drill{DrillID: newDrillID(), FileSystemID: in.FileSystemID, Region: s.o.Region, Trigger: in.Trigger, State: StateRunning,
		StartTime: Time{now}, SubnetID: in.SubnetID, Keep: in.Keep, NotificationTopicARN: in.NotificationTopicARN}
	if d.NotificationTopicARN == "" {
		d.NotificationTopicARN = s.o.NotificationTopicARN
	}
	if rep, err := s.o.Replicas.Destination(ctx, in.FileSystemID); err == nil {
		d.FileSystemID, d.SourceFileSystemID, d.SourceRegion, d.ReplicationID = rep.FileSystemID, rep.SourceFileSystemID, rep.SourceRegion, rep.ID
	}
	r := &run{s: s, d: d, in: in, log: s.log.With("drill", d.DrillID, "fs_id", d.FileSystemID)}
	r.event("start", "scheduled drill ("+in.Trigger+")", false)
	r.event("refused", msg, true)
	r.fail(msg)
	r.finish(ctx)
}
