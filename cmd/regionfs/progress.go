package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/regionfs/regionfs/internal/config"
)

// maxWidth is the widest line the operator commands print.
const maxWidth = 100

// display is where the operator commands print: a terminal gets progress
// bars redrawn in place; a pipe or file gets plain lines.
type display struct {
	tty   bool
	width int // columns to fill, at most maxWidth
}

// displayOf inspects w.
func displayOf(w io.Writer) display {
	f, ok := w.(*os.File)
	if !ok {
		return display{width: maxWidth}
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return display{width: maxWidth}
	}
	return display{tty: true, width: min(int(ws.Col), maxWidth)}
}

// progress is a transfer of known or unknown size.
type progress struct {
	done, total uint64  // in unit; total 0 = unknown
	unit        string  // "bytes" or a noun such as "keys"
	rate        float64 // bytes per second (0 = unknown)
	suffix      string  // after the amount (" sent")
	extra       string  // what else to say ("120 of 250 files", "1.2 MiB sent")
	elapsed     time.Duration
}

// fraction is done/total in [0, 1], or -1 when the total is unknown.
func (p progress) fraction() float64 {
	if p.total == 0 {
		return -1
	}
	return min(float64(p.done)/float64(p.total), 1)
}

// eta is the time left at the current rate (0 when unknown).
func (p progress) eta() time.Duration {
	f := p.fraction()
	if f < 0 || f >= 1 || p.done == 0 || p.elapsed <= 0 {
		return 0
	}
	// The rate of the unit: the bytes rate when the unit is bytes, else
	// the average over the elapsed time.
	perSec := float64(p.done) / p.elapsed.Seconds()
	if p.unit == "bytes" && p.rate > 0 {
		perSec = p.rate
	}
	if perSec <= 0 {
		return 0
	}
	return time.Duration(float64(p.total-p.done) / perSec * float64(time.Second))
}

// render is one line of at most width columns: on a terminal a bar, else
// the same facts in words.
func (p progress) render(d display, width int) string {
	var facts []string
	f := p.fraction()
	amount := ""
	switch {
	case p.unit == "bytes" && p.total > 0:
		amount = config.FormatBytes(p.done) + " of " + config.FormatBytes(p.total)
	case p.unit == "bytes":
		amount = config.FormatBytes(p.done)
	case p.total > 0:
		amount = fmt.Sprintf("%d of %d %s", p.done, p.total, p.unit)
	default:
		amount = fmt.Sprintf("%d %s", p.done, p.unit)
	}
	facts = append(facts, amount+p.suffix)
	if p.extra != "" {
		facts = append(facts, p.extra)
	}
	if p.rate > 0 {
		facts = append(facts, config.FormatBytes(uint64(p.rate))+"/s")
	}
	if eta := p.eta(); eta > 0 {
		facts = append(facts, "ETA "+shortDuration(eta))
	} else if f < 0 && p.elapsed > 0 {
		facts = append(facts, "running "+shortDuration(p.elapsed))
	}
	pct := ""
	if f >= 0 {
		pct = fmt.Sprintf("%3.0f%%", f*100)
	}
	if !d.tty {
		s := strings.Join(facts, ", ")
		if pct != "" {
			s = strings.TrimSpace(pct) + " (" + s + ")"
		}
		return clipWidth(s, width)
	}
	tail := strings.Join(facts, "  ")
	if f < 0 {
		return clipWidth(tail, width)
	}
	// [bar] pct  facts: the bar takes what the facts leave, 10 to 30.
	barW := min(30, width-len(pct)-5-utf8.RuneCountInString(tail)) // "[" "] " pct "  "
	if barW < 10 {
		barW = 10
	}
	fill := int(f*float64(barW) + 0.5)
	bar := "[" + strings.Repeat("█", fill) + strings.Repeat("░", barW-fill) + "] " + pct
	return clipWidth(bar+"  "+tail, width)
}

// shortDuration is a duration to the second (or tenth below 10 s).
func shortDuration(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

// clipWidth cuts s to width columns, marking the cut.
func clipWidth(s string, width int) string {
	if width <= 0 || utf8.RuneCountInString(s) <= width {
		return s
	}
	r := []rune(s)
	return string(r[:width-1]) + "…"
}

// wrap breaks s into lines of at most width columns, the first prefixed by
// first and the others by rest.
func wrap(s, first, rest string, width int) []string {
	var lines []string
	line := first
	empty := true
	for _, w := range strings.Fields(s) {
		if !empty && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(w) > width {
			lines = append(lines, line)
			line, empty = rest, true
		}
		if !empty {
			line += " "
		}
		line += w
		empty = false
	}
	if !empty {
		lines = append(lines, line)
	}
	for i := range lines {
		lines[i] = clipWidth(lines[i], width)
	}
	return lines
}

// rateTracker turns successive samples of a counter into a rate, for
// `status --watch` and the progress of failback and planned failovers.
type rateTracker struct {
	last map[string]sample
}

type sample struct {
	at       time.Time
	value    uint64
	rate     float64
	measured bool // rate comes from two samples, not the fallback
}

// rate returns the counter's rate from the previous sample of key, smoothed;
// fallback (an average over a longer time) when there is no earlier sample.
func (r *rateTracker) rate(key string, at time.Time, value uint64, fallback float64) float64 {
	if r.last == nil {
		r.last = map[string]sample{}
	}
	prev, ok := r.last[key]
	s := sample{at: at, value: value, rate: fallback}
	if ok && at.After(prev.at) && value >= prev.value {
		inst := float64(value-prev.value) / at.Sub(prev.at).Seconds()
		s.rate, s.measured = inst, true
		if prev.measured {
			s.rate = 0.5*inst + 0.5*prev.rate
		}
	}
	r.last[key] = s
	return s.rate
}
