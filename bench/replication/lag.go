package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// lagResult is one steady-rate run.
type lagResult struct {
	rate               int
	files, seen        int
	achieved           float64 // acknowledged creates per second
	p50, p90, p99, max float64 // ms, acknowledgement → visible on the replica
	ackP50, ackP99     float64 // ms, CREATE+WRITE+COMMIT latency at the source
	behind             float64 // ms, worst lateness of a create against its schedule
	violations         int
	violationExamples  []string
	missing            []string // some files never seen
	sweeps             int
	start, lastAck     time.Time // first CREATE sent, last COMMIT answered
	lastSeen           time.Time // last file found on the replica
	sweepP50, sweepP99 float64   // ms, between two LOOKUPs of one file not yet seen (the resolution)
}

const smallFileSize = 4096

// smallFile is file i's content: its name, its predecessor's name (the
// file most recently acknowledged when it was created), then seeded
// random bytes.
func smallFile(seed uint64, i int, name, pred string) []byte {
	b := make([]byte, smallFileSize)
	r := rand.NewChaCha8(seedKey(seed, uint64(i)))
	r.Read(b)
	copy(b, fmt.Sprintf("%s follows %s\n", name, pred))
	return b
}

func seedKey(seed, n uint64) [32]byte {
	var k [32]byte
	for i := range 8 {
		k[i] = byte(seed >> (8 * i))
		k[8+i] = byte(n >> (8 * i))
	}
	return k
}

// lagRun creates files in a new directory of src at rate files/s for d
// (CREATE GUARDED + UNSTABLE WRITE + COMMIT each; file i names the file
// most recently acknowledged before its CREATE was sent), and polls dst
// with LOOKUP until every acknowledged file is there at full size. Lag is
// the time from COMMIT's reply to the reply of the first LOOKUP that finds
// the file whole. A file found while its predecessor is not (checked with
// a LOOKUP right after) is an ordering violation: the replica showed a
// state the source never had.
func lagRun(ctx context.Context, src, dst target, dirName string, rate, n int, seed uint64, workers int) (*lagResult, error) {
	ws, err := src.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer ws.close()
	dirFH, err := ws.mkdir(ctx, ws.root, dirName)
	if err != nil {
		return nil, err
	}
	ps, err := dst.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer ps.close()
	// The directory itself must reach the replica first.
	var rdir proto.FH
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, err := ps.c.Lookup(ctx, ps.root, dirName)
		if err == nil {
			rdir = r.FH
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("directory %s not on %s after 60 s: %w", dirName, dst.name, err)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Names do not sort in creation order (as in real trees), so that
	// a replicator copying in name order gets no ordering for free.
	names := make([]string, n)
	nr := rand.New(rand.NewPCG(seed, 0x6e616d6573))
	for i := range names {
		names[i] = fmt.Sprintf("%08x-%06d", nr.Uint32(), i)
	}
	name := func(i int) string { return names[i] }
	type fileState struct {
		pred    int
		planned time.Time
		acked   time.Time
		seen    time.Time
	}
	st := make([]fileState, n)
	var mu sync.Mutex
	lastAcked, lastAckedAt := -1, time.Time{}
	ackedCh := make(chan int, n)
	var writeErr atomic.Value

	// Writers: an open-loop schedule over a few connections, so a slow
	// call does not delay the files after it.
	sched := make(chan int, n)
	t0 := time.Now().Add(50 * time.Millisecond)
	go func() {
		defer close(sched)
		for i := range n {
			at := time.Now()
			if rate > 0 {
				at = t0.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))
				select {
				case <-time.After(time.Until(at)):
				case <-ctx.Done():
					return
				}
			}
			mu.Lock()
			st[i].planned = at
			mu.Unlock()
			sched <- i
		}
	}()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := ws
			if w > 0 {
				var err error
				if s, err = src.dial(ctx); err != nil {
					writeErr.Store(err)
					return
				}
				defer s.close()
			}
			for i := range sched {
				mu.Lock()
				pred := lastAcked
				st[i].pred = pred
				mu.Unlock()
				pn := "-"
				if pred >= 0 {
					pn = name(pred)
				}
				if _, err := s.createFile(ctx, dirFH, name(i), smallFile(seed, i, name(i), pn)); err != nil {
					writeErr.Store(err)
					return
				}
				now := time.Now()
				mu.Lock()
				st[i].acked = now
				if now.After(lastAckedAt) {
					lastAcked, lastAckedAt = i, now
				}
				mu.Unlock()
				ackedCh <- i
			}
		}()
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()

	// Poller: every acknowledged file not yet seen is looked up on its
	// own, again as soon as its last LOOKUP has answered "not there" and
	// at least minRepoll after that one was sent; 32 LOOKUPs in flight at
	// most, on one connection. (It swept over all of them and slept 1 ms
	// after each sweep: a file became due only when the slowest LOOKUP of
	// the sweep had answered, and then after the sleep.)
	res := &lagResult{rate: rate, files: n}
	var repollMs []float64 // between two LOOKUPs of one file (the resolution)
	visible := func(i int) (bool, time.Time, error) {
		r, err := ps.c.Lookup(ctx, rdir, name(i))
		at := time.Now()
		if errors.Is(err, proto.ErrNoEnt) {
			return false, at, nil
		}
		if err != nil {
			return false, at, err
		}
		return r.Attr != nil && r.Attr.Size == smallFileSize, at, nil
	}
	// 1 ms at a steady rate; 5 ms in a burst, where the writers need the
	// CPU more.
	minRepoll := time.Millisecond
	if rate == 0 {
		minRepoll = 5 * time.Millisecond
	}
	const maxInflight = 32
	type answer struct {
		i     int
		found bool
		sent  time.Time
		at    time.Time
		err   error
	}
	type due struct {
		i  int
		at time.Time
	}
	answers := make(chan answer, maxInflight)
	var (
		ready    []int // to look up now
		waiting  []due // to look up at or after at (in order of at, nearly)
		lastSent = make(map[int]time.Time)
		inflight int
		pollErr  error
	)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	finalDeadline := time.Time{}
	var finalC <-chan time.Time
	done := false
	for {
		// Move what is due to ready.
		now := time.Now()
		k := 0
		for _, w := range waiting {
			if !w.at.After(now) {
				ready = append(ready, w.i)
			} else {
				waiting[k] = w
				k++
			}
		}
		waiting = waiting[:k]
		for inflight < maxInflight && len(ready) > 0 {
			i := ready[0]
			ready = ready[1:]
			sent := time.Now()
			if l, ok := lastSent[i]; ok {
				repollMs = append(repollMs, ms(sent.Sub(l)))
			}
			lastSent[i] = sent
			inflight++
			go func() {
				ok, at, err := visible(i)
				answers <- answer{i, ok, sent, at, err}
			}()
		}
		if done && inflight == 0 && len(ready) == 0 && len(waiting) == 0 && len(ackedCh) == 0 {
			break
		}
		if pollErr != nil && inflight == 0 {
			break
		}
		if !finalDeadline.IsZero() && time.Now().After(finalDeadline) && inflight == 0 {
			break
		}
		var wake <-chan time.Time
		if len(waiting) > 0 {
			next := waiting[0].at
			for _, w := range waiting[1:] {
				if w.at.Before(next) {
					next = w.at
				}
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(time.Until(next))
			wake = timer.C
		}
		var acked <-chan int
		if pollErr == nil {
			acked = ackedCh
		}
		var wdone <-chan struct{}
		if !done {
			wdone = writersDone
		}
		select {
		case i := <-acked:
			ready = append(ready, i)
		case a := <-answers:
			inflight--
			if a.err != nil {
				if pollErr == nil {
					pollErr = a.err
				}
				continue
			}
			if pollErr != nil {
				continue
			}
			if !a.found {
				waiting = append(waiting, due{a.i, a.sent.Add(minRepoll)})
				continue
			}
			mu.Lock()
			if !st[a.i].seen.IsZero() {
				mu.Unlock() // seen already, through a predecessor check
				continue
			}
			st[a.i].seen = a.at
			p := st[a.i].pred
			predSeen := p >= 0 && !st[p].seen.IsZero()
			mu.Unlock()
			if p >= 0 && !predSeen {
				// The predecessor must be there too (it may be in flight
				// or waiting: it counts as seen now, and leaves the poll).
				ok, t, err := visible(p)
				if err != nil {
					pollErr = err
					continue
				}
				if !ok {
					res.violations++
					if len(res.violationExamples) < 3 {
						res.violationExamples = append(res.violationExamples, fmt.Sprintf("%s visible before %s", name(a.i), name(p)))
					}
				} else {
					mu.Lock()
					st[p].seen = t
					mu.Unlock()
				}
			}
		case <-wake:
		case <-wdone:
			done = true
			finalDeadline = time.Now().Add(60 * time.Second)
			finalC = time.After(60 * time.Second)
		case <-finalC:
		}
		// Files seen through a predecessor check leave the poll.
		mu.Lock()
		ready = slices.DeleteFunc(ready, func(i int) bool { return !st[i].seen.IsZero() })
		waiting = slices.DeleteFunc(waiting, func(w due) bool { return !st[w.i].seen.IsZero() })
		mu.Unlock()
	}
	<-writersDone
	if e, _ := writeErr.Load().(error); e != nil {
		return nil, fmt.Errorf("writing to %s: %w", src.name, e)
	}
	if pollErr != nil {
		return nil, fmt.Errorf("polling %s: %w", dst.name, pollErr)
	}
	mu.Lock()
	defer mu.Unlock()
	var lags, acks []float64
	first, last := time.Time{}, time.Time{}
	for i := range st {
		f := st[i]
		if f.acked.IsZero() {
			continue
		}
		if first.IsZero() || f.planned.Before(first) {
			first = f.planned
		}
		if f.acked.After(last) {
			last = f.acked
		}
		if f.seen.After(res.lastSeen) {
			res.lastSeen = f.seen
		}
		acks = append(acks, ms(f.acked.Sub(f.planned)))
		if !f.seen.IsZero() {
			lags = append(lags, ms(f.seen.Sub(f.acked)))
		}
	}
	res.seen = len(lags)
	for i := range st {
		if !st[i].acked.IsZero() && st[i].seen.IsZero() && len(res.missing) < 5 {
			res.missing = append(res.missing, name(i))
		}
	}
	res.sweeps = len(repollMs)
	if len(lags) > 0 {
		res.p50, res.p90, res.p99, res.max = pct(lags, 50), pct(lags, 90), pct(lags, 99), pct(lags, 100)
	}
	if len(acks) > 0 {
		res.ackP50, res.ackP99, res.behind = pct(acks, 50), pct(acks, 99), pct(acks, 100)
		res.achieved = float64(len(acks)) / last.Sub(first).Seconds()
		res.start, res.lastAck = first, last
	}
	if len(repollMs) > 0 {
		res.sweepP50, res.sweepP99 = pct(repollMs, 50), pct(repollMs, 99)
	}
	return res, nil
}

func (r *lagResult) String() string {
	s := fmt.Sprintf("%d/%d files visible; lag p50 %.1f p90 %.1f p99 %.1f max %.1f ms; ordering violations %d; "+
		"achieved %.0f creates/s (create+write+commit p50 %.1f p99 %.1f ms, worst start-to-ack %.0f ms); re-poll interval p50 %.2f p99 %.2f ms",
		r.seen, r.files, r.p50, r.p90, r.p99, r.max, r.violations, r.achieved, r.ackP50, r.ackP99, r.behind, r.sweepP50, r.sweepP99)
	if len(r.violationExamples) > 0 {
		s += " (e.g. " + strings.Join(r.violationExamples, "; ") + ")"
	}
	return s
}

// burstString describes a run with no pacing (a burst).
func (r *lagResult) burstString() string {
	w := r.lastAck.Sub(r.start)
	return fmt.Sprintf("%d/%d files visible; written in %.2f s (%.0f files/s); the last file visible %.3f s after the last ack; lag p50 %.0f p99 %.0f max %.0f ms; ordering violations %d; re-poll interval p50 %.2f p99 %.2f ms",
		r.seen, r.files, w.Seconds(), float64(r.files)/w.Seconds(), r.lastSeen.Sub(r.lastAck).Seconds(), r.p50, r.p99, r.max, r.violations, r.sweepP50, r.sweepP99)
}
