package loglimit

import (
	"sync"
	"time"
)

// Limiter lets each kind of line through once per interval, counting the
// repeats it held back. It is safe for concurrent use.
type Limiter struct {
	every time.Duration
	mu    sync.Mutex // guards last
	last  map[string]*repeat
}

type repeat struct {
	at      time.Time
	skipped int
}

// maxKinds bounds the kinds a Limiter remembers (kinds built from what a
// client sends must not grow it without end): past it, it forgets them
// all and lets the next of each through.
const maxKinds = 256

// New returns a Limiter that lets a kind through once per every.
func New(every time.Duration) *Limiter {
	return &Limiter{every: every, last: map[string]*repeat{}}
}

// Every is the interval between two lines of one kind.
func (l *Limiter) Every() time.Duration { return l.every }

// Allow reports whether a line of kind may be logged at now, and, when it
// may, how many lines of that kind it held back since the last one.
func (l *Limiter) Allow(kind string, now time.Time) (ok bool, skipped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, seen := l.last[kind]
	if !seen {
		if len(l.last) >= maxKinds {
			clear(l.last)
		}
		l.last[kind] = &repeat{at: now}
		return true, 0
	}
	if now.Sub(r.at) < l.every {
		r.skipped++
		return false, 0
	}
	n := r.skipped
	r.at, r.skipped = now, 0
	return true, n
}
