package cron

import (
	"strings"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04 Mon", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		spec, from, want string
	}{
		{"*/15 * * * *", "2026-03-04 10:07 Wed", "2026-03-04 10:15 Wed"},
		{"0 3 * * *", "2026-03-04 10:07 Wed", "2026-03-05 03:00 Thu"},
		{"0 3 * * *", "2026-03-04 02:59 Wed", "2026-03-04 03:00 Wed"},
		{"0 3 * * *", "2026-03-04 03:00 Wed", "2026-03-05 03:00 Thu"}, // strictly after
		{"30 2 * * sun", "2026-03-04 10:07 Wed", "2026-03-08 02:30 Sun"},
		{"30 2 * * 7", "2026-03-04 10:07 Wed", "2026-03-08 02:30 Sun"},
		{"0 0 1 * *", "2026-12-31 23:59 Thu", "2027-01-01 00:00 Fri"},
		{"0 9 1-7 * mon", "2026-03-04 10:07 Wed", "2026-03-05 09:00 Thu"}, // day of month OR weekday
		{"0 12 29 feb *", "2026-03-04 10:07 Wed", "2028-02-29 12:00 Tue"},
		{"5,35 8-10/2 * jan-mar mon-fri", "2026-03-06 10:40 Fri", "2026-03-09 08:05 Mon"},
		{"@daily", "2026-03-04 10:07 Wed", "2026-03-05 00:00 Thu"},
		{"@hourly", "2026-03-04 10:07 Wed", "2026-03-04 11:00 Wed"},
		{"@weekly", "2026-03-04 10:07 Wed", "2026-03-08 00:00 Sun"},
		{"@monthly", "2026-03-04 10:07 Wed", "2026-04-01 00:00 Wed"},
		{"@yearly", "2026-03-04 10:07 Wed", "2027-01-01 00:00 Fri"},
		{"@every 90m", "2026-03-04 10:07 Wed", "2026-03-04 11:37 Wed"},
	} {
		s, err := Parse(tc.spec)
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		got := s.Next(at(tc.from))
		if want := at(tc.want); !got.Equal(want) {
			t.Errorf("%q after %s: %s, want %s", tc.spec, tc.from, got.Format("2006-01-02 15:04 Mon"), tc.want)
		}
	}
	never, err := Parse("0 0 30 2 *")
	if err != nil {
		t.Fatal(err)
	}
	if n := never.Next(at("2026-03-04 10:07 Wed")); !n.IsZero() {
		t.Errorf("February 30th fired at %s", n)
	}
}

func TestNextInZone(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	s, _ := Parse("0 3 * * *")
	got := s.Next(time.Date(2026, 3, 4, 10, 0, 0, 0, loc))
	if want := time.Date(2026, 3, 5, 3, 0, 0, 0, loc); !got.Equal(want) {
		t.Fatalf("got %s, want %s", got, want)
	}
	// 02:30 does not exist on the day clocks go forward; the next run is
	// still on a later day, never in the past.
	s, _ = Parse("30 2 * * *")
	from := time.Date(2026, 3, 29, 1, 0, 0, 0, loc)
	if got := s.Next(from); !got.After(from) {
		t.Fatalf("next %s is not after %s", got, from)
	}
}

func TestParseErrors(t *testing.T) {
	for _, spec := range []string{
		"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
		"*/0 * * * *", "5-1 * * * *", "a * * * *", "* * * foo *", "@often", "@every 10ms", "@every x", "1,,2 * * * *",
		"*/61 * * * *", strings.Repeat("1,", 200) + "1 * * * *",
	} {
		if _, err := Parse(spec); err == nil {
			t.Errorf("%q parsed", spec)
		}
	}
}

// Parsing never panics, and a schedule that parses fires strictly later
// (or never).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"*/15 * * * *", "0 3 * * sun", "5,35 8-10/2 * jan-mar mon-fri", "@daily", "@every 1h", "0 0 30 2 *", "1-5/2 */3 1,15 * 0-7"} {
		f.Add(s)
	}
	from := time.Date(2026, 3, 4, 10, 7, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := Parse(spec)
		if err != nil {
			return
		}
		if n := s.Next(from); !n.IsZero() && !n.After(from) {
			t.Fatalf("%q: next %s is not after %s", spec, n, from)
		}
	})
}
