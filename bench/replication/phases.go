package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// pair is a replicated regionfs file system: source in us-east-1, replica
// in us-west-2, a mount target on each.
type pair struct {
	src, dst  string
	smt, dmt  target
	enabledIn time.Duration
}

// newPair creates a file system in us-east-1 with a mount target, calls
// write (if not nil) to put data on it, replicates it to us-west-2, waits
// for ENABLED and makes a mount target on the replica.
func (b *bench) newPair(ctx context.Context, token string) (*pair, error) {
	p := &pair{}
	var err error
	if p.src, err = b.cl.createFS(ctx, east, token); err != nil {
		return nil, err
	}
	if p.smt, err = b.cl.createMountTarget(ctx, east, p.src); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if p.dst, err = b.cl.replicate(ctx, east, p.src, west, ""); err != nil {
		return nil, err
	}
	en, err := b.cl.waitEnabled(ctx, east, p.src, 20*time.Millisecond, 120*time.Second)
	if err != nil {
		return nil, err
	}
	p.enabledIn = en.Sub(t0)
	if p.dmt, err = b.cl.createMountTarget(ctx, west, p.dst); err != nil {
		return nil, err
	}
	return p, nil
}

type system struct {
	name     string
	src, dst target
}

func (b *bench) lagAndBurst(ctx context.Context) error {
	p, err := b.newPair(ctx, "lag")
	if err != nil {
		return err
	}
	logf("regionfs: %s (us-east-1, mount target %s) → %s (us-west-2, mount target %s), ENABLED after %s",
		p.src, p.smt.nfsAddr, p.dst, p.dmt.nfsAddr, p.enabledIn.Round(time.Millisecond))
	systems := []system{
		{"regionfs", p.smt, p.dmt},
		{"lsyncd", b.g.source(), b.g.replica()},
	}
	d := time.Duration(b.c.lagSeconds * float64(time.Second))
	if b.want("lag") {
		for ri, rate := range b.c.rates {
			seed := b.c.seed + uint64(rate)
			logf("\n-- lag at %d creates/s for %s (4 KiB files with random names; CREATE GUARDED + UNSTABLE WRITE + COMMIT; %d writer connections; seed %d) --",
				rate, d, b.c.lagWorkers, seed)
			order := slices.Clone(systems)
			if ri%2 == 1 {
				slices.Reverse(order)
			}
			res := map[string]*lagResult{}
			var server *hist // the replica's apply lag over the regionfs run
			for _, s := range order {
				b.settle()
				var before serverLag
				if s.name == "regionfs" {
					if before, err = scrapeServerLag(ctx, benchRegions[0].ip+":7070", benchRegions[1].ip+":7070"); err != nil {
						return fmt.Errorf("server-side lag before the run: %w", err)
					}
				}
				r, err := lagRun(ctx, s.src, s.dst, fmt.Sprintf("lag%d", rate), rate, int(d.Seconds()*float64(rate)), seed, b.c.lagWorkers)
				if err != nil {
					return fmt.Errorf("%s lag at %d/s: %w", s.name, rate, err)
				}
				logf("  %-8s %s", s.name, r)
				if s.name == "regionfs" {
					after, err := scrapeServerLag(ctx, benchRegions[0].ip+":7070", benchRegions[1].ip+":7070")
					if err != nil {
						return fmt.Errorf("server-side lag after the run: %w", err)
					}
					al, cs := after.apply.minus(before.apply), after.commit.minus(before.commit)
					server = &al
					if al.count() == 0 {
						logf("  %-8s server side: the replica exports no %s (a regionfs build without it)", "", applyLagMetric)
					}
					logf("  %-8s server side: apply lag of %.0f records (replica's %s: durable at the source → readable on the replica, one clock; %.0f records without a durable time): %s",
						"", al.count(), applyLagMetric, after.unknown-before.unknown, al.pctString(50, 90, 99, 99.9))
					logf("  %-8s source group commits (%s, %.0f, before the source's reply; not in the apply lag): %s",
						"", commitSecMetric, cs.count(), cs.pctString(50, 99))
					logf("  %-8s LOOKUP-visible lag above: an upper bound with the re-poll interval as resolution (p50 %.2f, p99 %.2f ms)",
						"", r.sweepP50, r.sweepP99)
				}
				res[s.name] = r
				if r.achieved < 0.95*float64(rate) {
					b.note("%s at %d/s: the writers achieved only %.0f creates/s", s.name, rate, r.achieved)
				}
				if r.seen < r.files {
					b.note("%s at %d/s: %d of %d files never became visible within 60 s", s.name, rate, r.files-r.seen, r.files)
				}
			}
			rr, lr := res["regionfs"], res["lsyncd"]
			lagRow := func(what string, v, base float64, goal float64) {
				g, vd := "-", ""
				if goal > 0 {
					g, vd = fmt.Sprintf("≤ %.0f ms", goal), verdict(v <= goal)
				}
				b.add(row{fmt.Sprintf("lag %s at %d/s", what, rate), fmt.Sprintf("%.1f ms", v), fmt.Sprintf("%.1f ms", base), ratio(v, base), g, vd})
			}
			goal50, goal99 := 0.0, 0.0
			switch rate {
			case 200:
				goal50, goal99 = 10, 40
			case 500:
				goal99 = 100
			}
			lagRow("p50", rr.p50, lr.p50, goal50)
			lagRow("p90", rr.p90, lr.p90, 0)
			lagRow("p99", rr.p99, lr.p99, goal99)
			if server != nil && server.count() > 0 {
				v, lo, hi := server.pct(99)
				g, vd := "-", ""
				if rate == 500 {
					g, vd = "≤ 10 ms", verdict(hi <= 10)
				}
				b.add(row{fmt.Sprintf("server-side apply lag p99 at %d/s", rate), fmt.Sprintf("%.1f ms (%s–%s]", v, fmtMs(lo), fmtMs(hi)), "-", "-", g, vd})
			}
			lagRow("max", rr.max, lr.max, 0)
			b.add(row{fmt.Sprintf("ordering violations at %d/s", rate), fmt.Sprint(rr.violations), fmt.Sprint(lr.violations), "-", "0", verdict(rr.violations == 0)})
		}
	}
	if b.want("burst") {
		seed := b.c.seed + 5000
		logf("\n-- burst of %d files (4 KiB, random names, as fast as 8 writer connections go; seed %d), %d per system, alternating; acknowledged files polled with LOOKUP as in the lag runs --", b.c.burstFiles, seed, b.c.burstReps)
		catch := map[string][]float64{}
		for rep := range b.c.burstReps {
			order := slices.Clone(systems)
			if rep%2 == 1 {
				slices.Reverse(order)
			}
			for _, s := range order {
				b.settle()
				r, err := lagRun(ctx, s.src, s.dst, fmt.Sprintf("burst%d", rep+1), 0, b.c.burstFiles, seed+uint64(rep), 8)
				if err != nil {
					return fmt.Errorf("%s burst %d: %w", s.name, rep+1, err)
				}
				logf("  rep %d %-8s %s", rep+1, s.name, r.burstString())
				cu := r.lastSeen.Sub(r.lastAck).Seconds()
				if r.seen < r.files {
					// Not all arrived within 60 s of the last ack: count
					// the burst as caught up at that deadline (a lower
					// bound) and say so.
					cu = 60
					b.note("%s burst %d: %d of %d files never became visible within 60 s of the last ack (%s); counted as 60 s",
						s.name, rep+1, r.files-r.seen, r.files, strings.Join(r.missing, " "))
				}
				catch[s.name] = append(catch[s.name], cu)
			}
		}
		rv, lv := median(catch["regionfs"]), median(catch["lsyncd"])
		b.add(row{fmt.Sprintf("catch-up of a %d-file burst (median)", b.c.burstFiles), fmt.Sprintf("%.3f s", rv), fmt.Sprintf("%.3f s", lv),
			fmt.Sprintf("%.1f× faster", lv/rv), "≥ 6× faster", verdict(lv/rv >= 6)})
	}
	return nil
}

func ratio(v, base float64) string {
	if base == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", v/base)
}

// throughput writes tput-bytes sequentially (1 MiB UNSTABLE WRITEs, 4 in
// flight, then COMMIT) into a replicated and an unreplicated file system,
// alternating, and compares MB/s.
func (b *bench) throughput(ctx context.Context) error {
	on, err := b.newPair(ctx, "tput-on")
	if err != nil {
		return err
	}
	offFS, err := b.cl.createFS(ctx, east, "tput-off")
	if err != nil {
		return err
	}
	offMT, err := b.cl.createMountTarget(ctx, east, offFS)
	if err != nil {
		return err
	}
	logf("\n-- sequential write of %d MiB (1 MiB UNSTABLE WRITEs, 4 in flight, COMMIT): %s replicated to %s vs %s not replicated, %d each, alternating --",
		b.c.tputBytes>>20, on.src, on.dst, offFS, b.c.tputReps)
	mbs := map[string][]float64{}
	var catchUps []float64
	for rep := range b.c.tputReps {
		order := []string{"on", "off"}
		if rep%2 == 1 {
			slices.Reverse(order)
		}
		for _, mode := range order {
			t := offMT
			if mode == "on" {
				t = on.smt
			}
			seed := b.c.seed + 7000 + uint64(rep)*2
			if mode == "off" {
				seed++
			}
			syscall.Sync()
			b.settle()
			s, err := t.dial(ctx)
			if err != nil {
				return err
			}
			name := fmt.Sprintf("big%d.bin", rep+1)
			cr, err := s.c.Create(ctx, s.root, name, proto.Guarded, proto.Sattr{Mode: &fileMode})
			if err != nil {
				s.close()
				return err
			}
			r := rand.NewChaCha8(seedKey(seed, 0))
			t0 := time.Now()
			err = s.writeLarge(ctx, cr.FH, b.c.tputBytes, 1<<20, 4, func(_ int64, p []byte) { r.Read(p) })
			el := time.Since(t0)
			ack := time.Now()
			s.close()
			if err != nil {
				return fmt.Errorf("write %s (%s): %w", name, mode, err)
			}
			v := float64(b.c.tputBytes) / 1e6 / el.Seconds()
			mbs[mode] = append(mbs[mode], v)
			extra := ""
			if mode == "on" {
				caught, err := b.cl.waitReplicatedAfter(ctx, east, on.src, ack, 300*time.Second)
				if err != nil {
					return err
				}
				catchUps = append(catchUps, caught.Sub(ack).Seconds())
				extra = fmt.Sprintf("; replica caught up (LastReplicatedTimestamp ≥ COMMIT ack) %.2f s after the COMMIT", caught.Sub(ack).Seconds())
			}
			logf("  rep %d replication %-3s %7.1f MB/s (%.2f s, seed %d)%s", rep+1, mode, v, el.Seconds(), seed, extra)
		}
	}
	vOn, vOff := median(mbs["on"]), median(mbs["off"])
	b.add(row{fmt.Sprintf("sequential write %d MiB, replication on vs off (median)", b.c.tputBytes>>20),
		fmt.Sprintf("%.0f MB/s", vOn), fmt.Sprintf("%.0f MB/s", vOff), fmt.Sprintf("%.2f×", vOn/vOff), "≥ 0.9×", verdict(vOn/vOff >= 0.9)})
	b.note("after each replicated %d MiB write the replica was caught up %.2f s (median) after the COMMIT ack", b.c.tputBytes>>20, median(catchUps))
	return nil
}

// failover measures, on fresh pairs with writes going on at the source,
// the time from the DeleteReplicationConfiguration call in us-west-2 to
// the first acknowledged NFS write (CREATE + FILE_SYNC WRITE) on the
// promoted file system through its mount target (connection already
// open, as a client that was reading the replica).
func (b *bench) failover(ctx context.Context) error {
	logf("\n-- failover: delete-replication-configuration in us-west-2 (SDK) → first acknowledged NFS write on the promoted file system; fresh pairs; %d times with us-east-1 up and a writer at ~100 creates/s on the source, %d times with us-east-1 down (its regionfs serve stopped) --",
		b.c.failReps, b.c.outageReps)
	totals := map[bool][]float64{}
	var calls []float64
	for rep := range b.c.failReps + b.c.outageReps {
		outage := rep >= b.c.failReps
		p, err := b.newPair(ctx, fmt.Sprintf("failover%d", rep+1))
		if err != nil {
			return err
		}
		// Some data, then a steady writer on the source.
		if err := b.writeSome(ctx, p.smt, "before", 50, b.c.seed+9000+uint64(rep)); err != nil {
			return err
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var written int
		var werr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			written, werr = steadyWriter(ctx, p.smt, "live", 100, stop)
		}()
		time.Sleep(2 * time.Second)
		stopWriter := func() {
			if stop != nil {
				close(stop)
				wg.Wait()
				stop = nil
			}
		}
		ds, err := p.dmt.dial(ctx)
		if err != nil {
			stopWriter()
			return err
		}
		if outage {
			stopWriter()
			if err := b.cluster.stopRegion(east); err != nil {
				ds.close()
				return err
			}
		}
		data := []byte("written after the failover\n")
		t0 := time.Now()
		call, err := b.cl.deleteReplication(ctx, west, p.src)
		if err != nil {
			stopWriter()
			ds.close()
			return err
		}
		attempts := 0
		var total time.Duration
		for {
			attempts++
			cr, err := ds.c.Create(ctx, ds.root, "after-failover.txt", proto.Unchecked, proto.Sattr{Mode: &fileMode})
			if err == nil {
				_, err = ds.c.Write(ctx, cr.FH, 0, data, proto.FileSync)
			}
			if err == nil {
				total = time.Since(t0)
				break
			}
			if time.Since(t0) > 60*time.Second {
				stopWriter()
				ds.close()
				return fmt.Errorf("no write accepted by the promoted %s 60 s after the delete: %w", p.dst, err)
			}
			time.Sleep(time.Millisecond)
		}
		ds.close()
		stopWriter()
		if werr != nil && !errors.Is(werr, proto.ErrROFS) {
			b.note("failover %d: the source's writer stopped with %v", rep+1, werr)
		}
		how := "us-east-1 up"
		if outage {
			how = "us-east-1 down"
			if err := b.cluster.restartRegion(east); err != nil {
				return err
			}
		}
		logf("  rep %d (%s) %s → %s: delete call %.0f ms, first write acknowledged %.0f ms after the call started (%d attempts; %d files written at the source before)",
			rep+1, how, p.src, p.dst, ms(call), ms(total), attempts, written)
		totals[outage] = append(totals[outage], ms(total))
		calls = append(calls, ms(call))
	}
	for _, outage := range []bool{false, true} {
		v := totals[outage]
		if len(v) == 0 {
			continue
		}
		how := "us-east-1 up"
		if outage {
			how = "us-east-1 down"
		}
		b.add(row{fmt.Sprintf("failover, %s: delete → first NFS write (median of %d)", how, len(v)), fmt.Sprintf("%.0f ms", median(v)), "-", "-", "≤ 1 s", verdict(median(v) <= 1000)})
		b.add(row{fmt.Sprintf("failover, %s: delete → first NFS write (max)", how), fmt.Sprintf("%.0f ms", pct(v, 100)), "-", "-", "≤ 1 s", verdict(pct(v, 100) <= 1000)})
	}
	b.note("failover: the delete call alone took median %.0f ms, max %.0f ms", median(calls), pct(calls, 100))
	return nil
}

// writeSome writes n small files into a new directory.
func (b *bench) writeSome(ctx context.Context, t target, dir string, n int, seed uint64) error {
	s, err := t.dial(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	fh, err := s.mkdir(ctx, s.root, dir)
	if err != nil {
		return err
	}
	for i := range n {
		nm := fmt.Sprintf("w%04d", i)
		if _, err := s.createFile(ctx, fh, nm, smallFile(seed, i, nm, "-")); err != nil {
			return err
		}
	}
	return nil
}

// steadyWriter creates small files at about rate/s until stop or an error.
func steadyWriter(ctx context.Context, t target, dir string, rate int, stop <-chan struct{}) (int, error) {
	s, err := t.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer s.close()
	fh, err := s.mkdir(ctx, s.root, dir)
	if err != nil {
		return 0, err
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return i, nil
		case <-tick.C:
		}
		nm := fmt.Sprintf("s%06d", i)
		if _, err := s.createFile(ctx, fh, nm, smallFile(1, i, nm, "-")); err != nil {
			return i, err
		}
	}
}

// initialSync times rsync -a to the rsync daemon (fresh destinations)
// and regionfs's initial sync (create-replication-configuration → ENABLED,
// then every file checked on the replica) of the same dataset; for B it
// goes on with the failback benchmark.
func (b *bench) initialSync(ctx context.Context, ds *dataset, withFailback bool) (*pair, error) {
	logf("\n-- initial sync of dataset %s: %d files, %.1f MiB, seed %d --", ds.name, len(ds.files), float64(ds.bytes())/(1<<20), ds.seed)
	local := filepath.Join(b.tmp, "data", ds.name)
	t0 := time.Now()
	if err := ds.writeLocal(local); err != nil {
		return nil, err
	}
	syscall.Sync()
	logf("  local copy for rsync written in %.1f s: %s", time.Since(t0).Seconds(), local)
	var rsyncT []float64
	for rep := range b.c.rsyncReps {
		b.settle()
		syscall.Sync()
		dst := fmt.Sprintf("%s.r%d", ds.name, rep+1)
		t0 := time.Now()
		out, err := exec.CommandContext(ctx, "rsync", "-a", local+"/", b.rd.url(dst)).CombinedOutput()
		el := time.Since(t0)
		if err != nil {
			return nil, fmt.Errorf("rsync: %v: %s", err, out)
		}
		t1 := time.Now()
		syscall.Sync()
		logf("  rsync -a → daemon, fresh %s: %.2f s (then sync %.2f s)", dst, el.Seconds(), time.Since(t1).Seconds())
		rsyncT = append(rsyncT, el.Seconds())
	}
	var rfsT []float64
	var last *pair
	var lastDS *dataset
	for rep := range b.c.syncReps {
		// Fresh content for every replica: us-west-2 must not already
		// hold the blocks from an earlier run.
		d := *ds
		d.seed = ds.seed + 1 + uint64(rep)
		p := &pair{}
		var err error
		token := fmt.Sprintf("sync-%s-%d", ds.name, rep+1)
		if p.src, err = b.cl.createFS(ctx, east, token); err != nil {
			return nil, err
		}
		if p.smt, err = b.cl.createMountTarget(ctx, east, p.src); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := d.writeNFS(ctx, p.smt, b.c.writeConns); err != nil {
			return nil, fmt.Errorf("writing dataset %s into %s: %w", ds.name, p.src, err)
		}
		wt := time.Since(t0)
		logf("  regionfs rep %d: dataset %s (seed %d) written into %s over NFS in %.1f s (%.0f files/s, %.0f MB/s, %d connections)",
			rep+1, ds.name, d.seed, p.src, wt.Seconds(), float64(len(d.files))/wt.Seconds(), float64(d.bytes())/1e6/wt.Seconds(), b.c.writeConns)
		syscall.Sync()
		b.settle()
		cpu0 := b.cluster.cpuTimes()
		t0 = time.Now()
		if p.dst, err = b.cl.replicate(ctx, east, p.src, west, ""); err != nil {
			return nil, err
		}
		tl := syncTimeline{start: t0, created: time.Now()}
		var progress []string
		var tEn time.Time
		for {
			st, _, err := b.cl.replicationState(ctx, east, p.src)
			if err == nil && st == "ENABLED" {
				tEn = time.Now()
				break
			}
			if time.Since(t0) > 30*time.Minute {
				return nil, fmt.Errorf("initial sync of %s not done after 30 min (%s, %v)", p.src, st, err)
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("initial sync of %s: %w", p.src, ctx.Err())
			}
			for _, pr := range b.cluster.regions {
				if err := pr.exitErr(); err != nil {
					return nil, fmt.Errorf("initial sync of %s: %w", p.src, err)
				}
			}
			if rs, err := b.cl.status(ctx, east, p.src); err == nil && len(rs) > 0 {
				s := rs[0].InitialSync
				tl.saw(time.Now(), s.FilesDone, s.FilesTotal)
				if len(progress) < 30 && time.Since(t0) > time.Duration(len(progress))*2*time.Second {
					progress = append(progress, fmt.Sprintf("%.0fs %d/%d files %.0f/%.0f MiB", time.Since(t0).Seconds(),
						s.FilesDone, s.FilesTotal, float64(s.BytesDone)/(1<<20), float64(s.BytesTotal)/(1<<20)))
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		el := tEn.Sub(t0)
		tl.cpu = b.cluster.cpuTimes().since(cpu0)
		rs, err := b.cl.status(ctx, east, p.src)
		if err != nil {
			return nil, err
		}
		info := ""
		if len(rs) > 0 {
			info = fmt.Sprintf("; shipped %d records, %.1f MiB, %d blocks", rs[0].ShippedRecords, float64(rs[0].ShippedBytes)/(1<<20), rs[0].ShippedBlocks)
		}
		logf("  regionfs rep %d: create-replication-configuration → ENABLED in %.2f s%s (progress every 2 s: %s)", rep+1, el.Seconds(), info, strings.Join(progress, ", "))
		logf("  regionfs rep %d: timeline %s", rep+1, tl.String(tEn))
		if p.dmt, err = b.cl.createMountTarget(ctx, west, p.dst); err != nil {
			return nil, err
		}
		tv := time.Now()
		sample := 50
		if err := d.verifyNFS(ctx, p.dmt, sample); err != nil {
			return nil, fmt.Errorf("replica %s after ENABLED: %w", p.dst, err)
		}
		logf("  regionfs rep %d: all %d files on the replica %s at their size, content of every %dth (and every large) file identical (checked in %.1f s)",
			rep+1, len(d.files), p.dst, sample, time.Since(tv).Seconds())
		rfsT = append(rfsT, el.Seconds())
		last, lastDS = p, &d
	}
	rv, bv := median(rfsT), median(rsyncT)
	goal := 1.0
	label := "initial sync 1 GiB / 8 files"
	if ds.name == "B" {
		goal = 0.5
		label = fmt.Sprintf("initial sync %d × 4 KiB files", len(ds.files))
	}
	b.add(row{label + " (vs rsync -a to daemon, medians)", fmt.Sprintf("%.2f s", rv), fmt.Sprintf("%.2f s", bv), fmt.Sprintf("%.2f×", rv/bv),
		fmt.Sprintf("≤ %.1f×", goal), verdict(rv/bv <= goal)})
	if withFailback && last != nil {
		return last, b.failback(ctx, lastDS, last, local, fmt.Sprintf("%s.r1", ds.name))
	}
	return last, nil
}

var (
	reSent  = regexp.MustCompile(`Total bytes sent: ([\d,]+)`)
	reLit   = regexp.MustCompile(`Literal data: ([\d,]+)`)
	reFiles = regexp.MustCompile(`Number of regular files transferred: ([\d,]+)`)
)

func statNum(re *regexp.Regexp, out string) int64 {
	m := re.FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
	return v
}

// failback fails the pair over to us-west-2, changes 20 files on the
// promoted side, and fails back into the original (protection DISABLED,
// then create-replication-configuration from the promoted file system
// with the original as destination), reading ShippedBytes; rsync --stats
// of the same 20 changes into the rsync copy is the baseline.
func (b *bench) failback(ctx context.Context, ds *dataset, p *pair, local, rsyncDst string) error {
	cs := ds.mutations(b.c.seed + 11)
	var changed int64
	for _, c := range cs {
		changed += int64(len(c.content))
	}
	logf("\n-- failback after %d changed files (10 overwritten, 10 new, %d bytes; seed %d) in the %d-file tree --", len(cs), changed, b.c.seed+11, len(ds.files))
	b.settle()
	call, err := b.cl.deleteReplication(ctx, west, p.src)
	if err != nil {
		return err
	}
	t0 := time.Now()
	for {
		err := applyNFS(ctx, p.dmt, cs[:1])
		if err == nil {
			break
		}
		if !errors.Is(err, proto.ErrROFS) || time.Since(t0) > 60*time.Second {
			return fmt.Errorf("first change on the promoted %s: %w", p.dst, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := applyNFS(ctx, p.dmt, cs[1:]); err != nil {
		return err
	}
	logf("  failed over to %s (delete call %.0f ms); %d changes written there", p.dst, ms(call), len(cs))
	syscall.Sync()
	b.settle()
	t0 = time.Now()
	if err := b.cl.setProtectionDisabled(ctx, east, p.src); err != nil {
		return err
	}
	back, err := b.cl.replicate(ctx, west, p.dst, east, p.src)
	if err != nil {
		return err
	}
	if back != p.src {
		return fmt.Errorf("failback replicated into %s, want the original %s", back, p.src)
	}
	tEn, err := b.cl.waitEnabled(ctx, west, p.dst, 20*time.Millisecond, 30*time.Minute)
	if err != nil {
		return err
	}
	fbTime := tEn.Sub(t0)
	rs, err := b.cl.status(ctx, west, p.dst)
	if err != nil {
		return err
	}
	var st *replStatus
	for i := range rs {
		if rs[i].Role == "source" {
			st = &rs[i]
		}
	}
	if st == nil {
		return fmt.Errorf("replication-status of %s in us-west-2: no source-side replication (%+v)", p.dst, rs)
	}
	if err := verifyChanges(ctx, p.smt, cs, 30*time.Second); err != nil {
		return fmt.Errorf("original after the failback: %w", err)
	}
	method := st.InitialSync.Method
	if method == "" {
		method = "full copy"
	}
	logf("  regionfs failback %s → %s: ENABLED %.2f s after update-file-system-protection; resync by %s; shipped %d bytes (%d blocks, %d records); all %d changes read back from the original",
		p.dst, p.src, fbTime.Seconds(), method, st.ShippedBytes, st.ShippedBlocks, st.ShippedRecords, len(cs))

	if err := applyLocal(local, cs); err != nil {
		return err
	}
	syscall.Sync()
	b.settle()
	t1 := time.Now()
	out, err := exec.CommandContext(ctx, "rsync", "-a", "--stats", local+"/", b.rd.url(rsyncDst)).CombinedOutput()
	rt := time.Since(t1)
	if err != nil {
		return fmt.Errorf("rsync --stats: %v: %s", err, out)
	}
	sent, lit, nf := statNum(reSent, string(out)), statNum(reLit, string(out)), statNum(reFiles, string(out))
	logf("  rsync -a --stats of the same changes into %s: %.2f s, total bytes sent %d (literal data %d), %d files transferred", rsyncDst, rt.Seconds(), sent, lit, nf)
	if nf != int64(len(cs)) {
		b.note("rsync transferred %d files for %d changes", nf, len(cs))
	}
	b.add(row{fmt.Sprintf("failback: bytes sent for %d changed files (%d B)", len(cs), changed), fmt.Sprintf("%d B", st.ShippedBytes),
		fmt.Sprintf("%d B", sent), fmt.Sprintf("%.2f× changed", float64(st.ShippedBytes)/float64(changed)), "≤ 1.1× changed",
		verdict(float64(st.ShippedBytes) <= 1.1*float64(changed))})
	b.add(row{"failback: time (vs rsync's full scan)", fmt.Sprintf("%.2f s", fbTime.Seconds()), fmt.Sprintf("%.2f s", rt.Seconds()),
		fmt.Sprintf("%.2f×", fbTime.Seconds()/rt.Seconds()), "reported", ""})
	return nil
}

// syncTimeline is when the harness saw each phase of an initial sync, by
// polling the source's replication-status (every ~20 ms plus the calls'
// own time): the create call's return, the first file sent, the last
// file sent (FilesDone reaches FilesTotal: the source has read and sent
// every chunk), and ENABLED (the destination ingested everything and
// acknowledged). Which of these gaps is long says which side bounds it.
type syncTimeline struct {
	start, created      time.Time
	firstSent, lastSent time.Time
	polls               int
	cpu                 cpuTimes // until ENABLED
}

func (t *syncTimeline) saw(now time.Time, done, total uint64) {
	t.polls++
	if done > 0 && t.firstSent.IsZero() {
		t.firstSent = now
	}
	if total > 0 && done >= total && t.lastSent.IsZero() {
		t.lastSent = now
	}
}

func (t *syncTimeline) String(enabled time.Time) string {
	at := func(x time.Time) string {
		if x.IsZero() {
			return "not seen"
		}
		return fmt.Sprintf("%.2f s", x.Sub(t.start).Seconds())
	}
	return fmt.Sprintf("create call returned %s, first file sent by %s, all files sent by %s, ENABLED %s (%d status polls; each time is when a poll first saw it); CPU-s until ENABLED: %s",
		at(t.created), at(t.firstSent), at(t.lastSent), at(enabled), t.polls, t.cpu)
}

// cpuTimes are CPU seconds (user+system) of each region's process and of
// the whole machine (busy, idle: /proc/stat, every process of every
// session), read at one moment.
type cpuTimes struct {
	region     map[string]float64
	busy, idle float64
}

// cpuTimes reads them now (a region whose /proc entry cannot be read is
// left out).
func (c *cluster) cpuTimes() cpuTimes {
	t := cpuTimes{region: map[string]float64{}}
	tick := 100.0 // USER_HZ on Linux
	for name, pr := range c.regions {
		if pr.cmd.Process == nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pr.cmd.Process.Pid))
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis: utime, stime
		// are the 12th and 13th.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 12 {
			u, _ := strconv.ParseFloat(f[11], 64)
			s, _ := strconv.ParseFloat(f[12], 64)
			t.region[name] = (u + s) / tick
		}
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal
		for i := 1; i < len(f) && i <= 8; i++ {
			v, _ := strconv.ParseFloat(f[i], 64)
			if i == 4 || i == 5 {
				t.idle += v / tick
			} else {
				t.busy += v / tick
			}
		}
	}
	return t
}

// since is t − o.
func (t cpuTimes) since(o cpuTimes) cpuTimes {
	d := cpuTimes{region: map[string]float64{}, busy: t.busy - o.busy, idle: t.idle - o.idle}
	for k, v := range t.region {
		if v0, ok := o.region[k]; ok {
			d.region[k] = v - v0
		}
	}
	return d
}

func (t cpuTimes) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(t.region)) {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, t.region[k]))
	}
	return fmt.Sprintf("%s; machine busy %.2f, idle+iowait %.2f", strings.Join(parts, ", "), t.busy, t.idle)
}
