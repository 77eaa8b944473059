// Package cron parses cron-like schedules and computes when they fire next
// (the schedules of drills, in a region's configuration).
package cron

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed schedule.
type Schedule struct {
	spec string
	// every > 0: a fixed interval; else the sets below.
	every                        time.Duration
	minute, hour, dom, month, dw uint64 // bit i set: value i matches
	domStar, dowStar             bool
}

// String returns the schedule as written.
func (c Schedule) String() string { return c.spec }

var macros = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

var (
	monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	dayNames   = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
)

// Parse parses a schedule: five fields (minute 0-59, hour 0-23, day of
// month 1-31, month 1-12 or jan-dec, day of week 0-7 or sun-sat, 0 and 7
// both Sunday), each *, a value, a range a-b, a step (*/n, a-b/n, a/n) or a
// comma-separated list of those; when both day fields are restricted a day
// matching either runs (as cron does). Or a macro (@hourly, @daily,
// @midnight, @weekly, @monthly, @yearly, @annually), or "@every D" with a
// Go duration of at least a second.
func Parse(spec string) (Schedule, error) {
	spec = strings.TrimSpace(spec)
	c := Schedule{spec: spec}
	if len(spec) > 256 {
		return Schedule{}, fmt.Errorf("schedule %q: too long", spec[:32]+"…")
	}
	if rest, ok := strings.CutPrefix(spec, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return Schedule{}, fmt.Errorf("schedule %q: %w", spec, err)
		}
		if d < time.Second {
			return Schedule{}, fmt.Errorf("schedule %q: the interval must be at least 1s", spec)
		}
		c.every = d
		return c, nil
	}
	fields := strings.Fields(spec)
	if m, ok := macros[spec]; ok {
		fields = strings.Fields(m)
	} else if strings.HasPrefix(spec, "@") {
		return Schedule{}, fmt.Errorf("schedule %q: unknown macro (want @hourly, @daily, @weekly, @monthly, @yearly or @every D)", spec)
	}
	if len(fields) != 5 {
		return Schedule{}, fmt.Errorf("schedule %q: want 5 fields (minute hour day-of-month month day-of-week), got %d", spec, len(fields))
	}
	var err error
	parse := func(i int, lo, hi int, names []string, nameBase int) uint64 {
		if err != nil {
			return 0
		}
		var set uint64
		set, err = parseField(fields[i], lo, hi, names, nameBase)
		if err != nil {
			err = fmt.Errorf("schedule %q: field %d (%s): %w", spec, i+1, []string{"minute", "hour", "day of month", "month", "day of week"}[i], err)
		}
		return set
	}
	c.minute = parse(0, 0, 59, nil, 0)
	c.hour = parse(1, 0, 23, nil, 0)
	c.dom = parse(2, 1, 31, nil, 0)
	c.month = parse(3, 1, 12, monthNames, 1)
	c.dw = parse(4, 0, 7, dayNames, 0)
	if err != nil {
		return Schedule{}, err
	}
	if c.dw&(1<<7) != 0 {
		c.dw |= 1 // 7 is Sunday too
	}
	c.domStar = fields[2] == "*" || strings.HasPrefix(fields[2], "*/")
	c.dowStar = fields[4] == "*" || strings.HasPrefix(fields[4], "*/")
	return c, nil
}

func parseField(f string, lo, hi int, names []string, nameBase int) (uint64, error) {
	var set uint64
	for _, part := range strings.Split(f, ",") {
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 || n > hi-lo+1 {
				return 0, fmt.Errorf("bad step %q", stepStr)
			}
			step = n
		}
		a, b := lo, hi
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			x, y, _ := strings.Cut(rng, "-")
			var err error
			if a, err = value(x, lo, hi, names, nameBase); err != nil {
				return 0, err
			}
			if b, err = value(y, lo, hi, names, nameBase); err != nil {
				return 0, err
			}
			if b < a {
				return 0, fmt.Errorf("range %q runs backwards", rng)
			}
		default:
			v, err := value(rng, lo, hi, names, nameBase)
			if err != nil {
				return 0, err
			}
			a = v
			if !hasStep {
				b = v
			}
		}
		for v := a; v <= b; v += step {
			set |= 1 << uint(v)
		}
	}
	return set, nil
}

func value(s string, lo, hi int, names []string, nameBase int) (int, error) {
	for i, n := range names {
		if strings.EqualFold(s, n) {
			return i + nameBase, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("%q is not a value from %d to %d", s, lo, hi)
	}
	return v, nil
}

// Next returns the first time after t that the schedule fires (zero when
// it never does, as for "0 0 30 2 *").
func (c Schedule) Next(t time.Time) time.Time {
	if c.every > 0 {
		return t.Truncate(time.Second).Add(c.every)
	}
	loc := t.Location()
	t = t.Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		if c.month&(1<<uint(t.Month())) == 0 {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
			continue
		}
		if !c.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
			continue
		}
		if c.hour&(1<<uint(t.Hour())) == 0 {
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, loc)
			continue
		}
		if c.minute&(1<<uint(t.Minute())) == 0 {
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}

func (c Schedule) dayMatches(t time.Time) bool {
	dom := c.dom&(1<<uint(t.Day())) != 0
	dow := c.dw&(1<<uint(t.Weekday())) != 0
	switch {
	case c.domStar && c.dowStar:
		return true
	case c.domStar:
		return dow
	case c.dowStar:
		return dom
	}
	return dom || dow
}
