package replconf_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/replconf"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/replication"
	"github.com/regionfs/regionfs/internal/replication/faultproxy"
	"github.com/regionfs/regionfs/internal/testkit"
)

// fencedPair is two regions with hard fencing and automatic failover
// checks, each reaching the other through a fault proxy.
type fencedPair struct {
	a, b   *region
	pa, pb *faultproxy.Proxy // to a, to b

	mu    sync.Mutex
	fails []replconf.AutoFailover // OnAutoFailover in b
}

func newFencedPair(t *testing.T, lease time.Duration) *fencedPair {
	t.Helper()
	p := &fencedPair{a: newRegion(t, "us-east-1"), b: newRegion(t, "us-west-2")}
	var err error
	if p.pa, err = faultproxy.New("127.0.0.1:0", p.a.addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.pa.Close() })
	if p.pb, err = faultproxy.New("127.0.0.1:0", p.b.addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.pb.Close() })
	p.a.peers = map[string]replication.Peer{
		p.a.name: {URL: "http://" + p.a.addr, Secret: testSecret},
		p.b.name: {URL: "http://" + p.pb.Addr(), Secret: testSecret},
	}
	p.b.peers = map[string]replication.Peer{
		p.a.name: {URL: "http://" + p.pa.Addr(), Secret: testSecret},
		p.b.name: {URL: "http://" + p.b.addr, Secret: testSecret},
	}
	for _, r := range []*region{p.a, p.b} {
		// A stalled stream is given up after 2s (10s by default): the
		// tests heal links and wait for the source to reconnect.
		r.nodeMods = append(r.nodeMods, func(o *replication.Options) { o.Lease, o.StreamIdle = lease, 2*time.Second })
		r.mgrMods = append(r.mgrMods, func(o *replconf.Options) {
			o.Lease, o.AutoFailoverCheck = lease, 50*time.Millisecond
			o.OnAutoFailover = func(_ context.Context, f replconf.AutoFailover) {
				p.mu.Lock()
				p.fails = append(p.fails, f)
				p.mu.Unlock()
			}
		})
	}
	p.a.start()
	p.b.start()
	t.Cleanup(p.heal) // before the regions stop: nothing stays held
	p.a.m.StartAutoFailover()
	p.b.m.StartAutoFailover()
	return p
}

func (p *fencedPair) failovers() []replconf.AutoFailover {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]replconf.AutoFailover(nil), p.fails...)
}

// replicated creates file system "src" in a and replicates it to b.
func (p *fencedPair) replicated(t *testing.T) (srcID string, d replconf.Description) {
	t.Helper()
	srcID = p.a.createFS("src")
	return srcID, replicate(t, p.a, p.b, srcID)
}

// autoFailover sets the automatic failover of d's destination (in b)
// after delay without its source.
func (p *fencedPair) autoFailover(t *testing.T, d replconf.Description, after time.Duration) {
	t.Helper()
	if _, err := p.b.m.SetAutoFailover(context.Background(), d.DestFileSystemID, after); err != nil {
		t.Fatal(err)
	}
}

// waitReadOnly waits until file system fsID of r refuses a write as
// read-only (the lease's stop, a fence).
func waitReadOnly(t *testing.T, r *region, fsID, what string) {
	t.Helper()
	testkit.WaitFor(t, what, 30*time.Second, func() bool {
		_, err := r.fs(fsID).Mkdir(context.Background(), engine.RootCred, engine.RootIno, "probe", engine.SetAttr{})
		return errors.Is(err, engine.ErrReadOnly)
	})
}

// waitWritable waits until file system fsID of r takes a write: a
// directory name in its root.
func waitWritable(t *testing.T, r *region, fsID, name, what string) {
	t.Helper()
	testkit.WaitFor(t, what, 30*time.Second, func() bool {
		_, err := r.fs(fsID).Mkdir(context.Background(), engine.RootCred, engine.RootIno, name, engine.SetAttr{})
		return err == nil
	})
}

func (p *fencedPair) partition() { p.pa.Partition(); p.pb.Partition() }
func (p *fencedPair) heal()      { p.pa.Heal(); p.pb.Heal() }

// writer writes to fs until stopped and remembers when the last write
// was acknowledged and when the first was refused.
type writer struct {
	mu                  sync.Mutex
	lastOK, firstRefuse time.Time
	acked               []string // names of the acknowledged mkdirs
	stop                func() error
}

func startWriter(fs *engine.FS) *writer {
	w := &writer{}
	n := 0
	w.stop = sync.OnceValue(testkit.Repeat(func() error {
		n++
		name := fmt.Sprint("w", n)
		_, err := fs.Mkdir(context.Background(), engine.RootCred, engine.RootIno, name, engine.SetAttr{})
		now := time.Now()
		w.mu.Lock()
		defer w.mu.Unlock()
		switch {
		case err == nil:
			if !w.firstRefuse.IsZero() {
				return fmt.Errorf("the source took a write at %s after refusing one at %s", now, w.firstRefuse)
			}
			w.lastOK = now
			w.acked = append(w.acked, name)
		case errors.Is(err, engine.ErrReadOnly):
			if w.firstRefuse.IsZero() {
				w.firstRefuse = now
			}
		default:
			return err
		}
		time.Sleep(5 * time.Millisecond) // pace, not a wait
		return nil
	}))
	return w
}

func (w *writer) ackedNames() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.acked...)
}

func (w *writer) times() (lastOK, firstRefuse time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastOK, w.firstRefuse
}

// The policy needs hard fencing and the destination region.
func TestAutoFailoverPolicy(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t) // soft fencing
	srcID := a.createFS("src")
	d := replicate(t, a, b, srcID)
	if _, err := b.m.SetAutoFailover(ctx, d.DestFileSystemID, time.Minute); !errors.Is(err, control.ErrValidation) || !strings.Contains(err.Error(), "hard fencing") {
		t.Fatalf("automatic failover without hard fencing: %v", err)
	}
	if _, err := b.m.SetAutoFailover(ctx, d.DestFileSystemID, 0); err != nil {
		t.Fatalf("turning it off: %v", err)
	}
	p := newFencedPair(t, time.Second)
	srcID, d = p.replicated(t)
	if _, err := p.a.m.SetAutoFailover(ctx, srcID, time.Minute); !errors.Is(err, control.ErrReplicationNotFound) {
		t.Fatalf("automatic failover set at the source: %v", err)
	}
	if _, err := p.b.m.SetAutoFailover(ctx, d.DestFileSystemID, -time.Second); !errors.Is(err, control.ErrValidation) {
		t.Fatalf("negative delay: %v", err)
	}
	got, err := p.b.m.SetAutoFailover(ctx, d.DestFileSystemID, 90*time.Second)
	if err != nil || got.AutoFailoverAfter != 90*time.Second {
		t.Fatalf("set: %+v %v", got.AutoFailoverAfter, err)
	}
	p.b.stop()
	p.b.restart()
	if ds, err := p.b.m.Describe(ctx, d.DestFileSystemID); err != nil || ds[0].AutoFailoverAfter != 90*time.Second {
		t.Fatalf("policy after a restart: %+v %v", ds, err)
	}
}

// A partition: both regions up, the link between them cut while the
// source keeps writing. The destination promotes itself only once the
// source can no longer take a write: the source's last acknowledged
// write and its first refusal both come before the promotion.
func TestAutoFailoverPartition(t *testing.T) {
	ctx := context.Background()
	const lease = time.Second
	p := newFencedPair(t, lease)
	srcID, d := p.replicated(t)
	p.autoFailover(t, d, time.Second)
	w := startWriter(p.a.fs(srcID))
	defer w.stop()
	// Cut while writes stream: the replica has some, the loss report
	// lists the rest.
	testkit.WaitFor(t, "the replica to receive writes", 30*time.Second, func() bool {
		_, err := p.b.fs(d.DestFileSystemID).Lookup(ctx, engine.RootCred, engine.RootIno, "w20")
		return err == nil
	})
	cut := time.Now()
	p.partition()
	testkit.WaitFor(t, "the automatic failover", 30*time.Second, func() bool { return len(p.failovers()) > 0 })
	f := p.failovers()[0]
	lastOK, refused := w.times()
	t.Logf("cut at 0; last source write +%s, first refusal +%s, promotion +%s: %s",
		lastOK.Sub(cut).Round(time.Millisecond), refused.Sub(cut).Round(time.Millisecond), f.Time.Sub(cut).Round(time.Millisecond), f.Reason)
	if refused.IsZero() || !refused.Before(f.Time) || !lastOK.Before(f.Time) {
		t.Fatalf("promoted at %s while the source could still write (last write %s, first refusal %s)", f.Time, lastOK, refused)
	}
	if f.Time.Sub(cut) < lease+lease/2 {
		t.Fatalf("promoted %s after the cut, before the source's lease (%s) and its margin ran out", f.Time.Sub(cut), lease)
	}
	if _, err := p.b.fs(d.DestFileSystemID).Mkdir(ctx, engine.RootCred, engine.RootIno, "after", engine.SetAttr{}); err != nil {
		t.Fatalf("the promoted replica refuses writes: %v", err)
	}
	// The link comes back: the source learns of the promotion and stays
	// fenced; nothing is promoted again.
	p.heal()
	testkit.WaitFor(t, "the source to learn of the promotion", 90*time.Second, func() bool {
		return learnedPromotion(p, srcID, d.ID)
	})
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, "late", engine.SetAttr{}); !errors.Is(err, engine.ErrReadOnly) {
		t.Fatalf("the failed-over source took a write after the heal: %v", err)
	}
	if n := len(p.failovers()); n != 1 {
		t.Fatalf("%d automatic failovers", n)
	}
	checkLossReport(t, p, srcID, d, f, w.ackedNames())
}

// learnedPromotion says whether the old source has taken in that its
// destination was promoted: protection DISABLED and its record of the
// failover (the tombstone) written. sourceGone writes the record first
// (TestFencedSourceRecordsFirst; the other way round, a test that waited
// for the protection alone read no record once in CI's -race run of
// TestAutoFailoverPartition): both are checked all the same.
func learnedPromotion(p *fencedPair, srcID, id string) bool {
	_, recorded := p.a.m.Tombstone(replication.RoleSource, id)
	return recorded && p.a.protection(srcID) == control.ProtectionDisabled
}

// checkLossReport checks that the old source's loss report after the
// automatic failover f lists exactly the acknowledged mkdirs (acked) the
// promoted replica lacks, and that the source knows it was failed over
// without taking part.
func checkLossReport(t *testing.T, p *fencedPair, srcID string, d replconf.Description, f replconf.AutoFailover, acked []string) {
	t.Helper()
	ctx := context.Background()
	tomb, ok := p.a.m.Tombstone(replication.RoleSource, d.ID)
	if !ok || !tomb.Promoted || tomb.Coordinated || tomb.Epoch != f.Promotion.NewEpoch || tomb.RecoverySeq != f.Promotion.Seq ||
		!strings.Contains(tomb.Reason, "automatic failover") {
		t.Fatalf("the old source's record of the failover: %+v (failover %+v)", tomb, f.Promotion)
	}
	rep, losses, complete, err := p.a.m.LossReport(ctx, srcID, 100000)
	if err != nil || !complete || rep.RecoverySeq != f.Promotion.Seq {
		t.Fatalf("loss report: %+v complete=%v %v", rep, complete, err)
	}
	want := map[string]bool{}
	dst := p.b.fs(d.DestFileSystemID)
	for _, name := range acked {
		_, err := dst.Lookup(ctx, engine.RootCred, engine.RootIno, name)
		switch {
		case errors.Is(err, engine.ErrNotFound):
			want["/"+name] = true
		case err != nil:
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for _, c := range losses {
		if c.Op != "mkdir" || len(c.Paths) != 1 || got[c.Paths[0]] || c.Seq <= f.Promotion.Seq {
			t.Fatalf("loss report entry %+v (recovery seq %d)", c, f.Promotion.Seq)
		}
		got[c.Paths[0]] = true
	}
	for name := range want {
		if !got[name] {
			t.Errorf("acknowledged %s is neither on the promoted replica nor in the loss report", name)
		}
	}
	for name := range got {
		if !want[name] {
			t.Errorf("the loss report lists %s, which the promoted replica has or the source never acknowledged", name)
		}
	}
	t.Logf("%d acknowledged writes, %d lost (recovery seq %d)", len(acked), len(want), f.Promotion.Seq)
}

// A real outage: the source region stops. The destination promotes
// itself once the policy's delay and the lease have passed, records why,
// counts it and notifies; when the source region returns it is fenced,
// and nothing is promoted twice.
func TestAutoFailoverOutage(t *testing.T) {
	ctx := context.Background()
	const lease = time.Second
	p := newFencedPair(t, lease)
	srcID := p.a.createFS("src")
	fill(t, p.a.fs(srcID), "d", 5)
	d := replicate(t, p.a, p.b, srcID)
	const after = 2 * time.Second
	p.autoFailover(t, d, after)
	// The policy's delay counts from the destination's last contact with
	// the source, which may come up to a heartbeat before the stop: the
	// earlier of the two.
	down := time.Now()
	if st, ok := p.b.n.InboundStatus(d.ID); ok && st.LastContact.Before(down) {
		down = st.LastContact
	}
	p.a.stop()
	testkit.WaitFor(t, "the automatic failover", 30*time.Second, func() bool { return len(p.failovers()) > 0 })
	f := p.failovers()[0]
	t.Logf("promoted %s after the outage: %s", f.Time.Sub(down).Round(time.Millisecond), f.Reason)
	if f.Time.Sub(down) < after {
		t.Fatalf("promoted %s after the outage, before the policy's %s", f.Time.Sub(down), after)
	}
	if f.ReplicationID != d.ID || f.DestFileSystemID != d.DestFileSystemID || f.Promotion.Seq == 0 || !strings.Contains(f.Reason, "automatic failover") {
		t.Fatalf("failover %+v", f)
	}
	tomb, ok := p.b.m.Tombstone(replication.RoleDestination, d.ID)
	if !ok || !strings.Contains(tomb.Reason, "automatic failover: no contact with the source region us-east-1") || !tomb.Promoted {
		t.Fatalf("tombstone %+v", tomb)
	}
	if got := testutil.ToFloat64(p.b.m.Collector()); got != 1 {
		t.Fatalf("regionfs_replication_auto_failovers_total = %v", got)
	}
	if p.b.protection(d.DestFileSystemID) != control.ProtectionEnabled {
		t.Fatal("the replica was not promoted")
	}
	if _, err := p.b.fs(d.DestFileSystemID).Mkdir(ctx, engine.RootCred, engine.RootIno, "after", engine.SetAttr{}); err != nil {
		t.Fatalf("the promoted replica refuses writes: %v", err)
	}
	p.a.restart()
	p.a.m.StartAutoFailover()
	testkit.WaitFor(t, "the returning source to fence itself", 90*time.Second, func() bool {
		return learnedPromotion(p, srcID, d.ID)
	})
	if _, err := p.a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, "late", engine.SetAttr{}); !errors.Is(err, engine.ErrReadOnly) {
		t.Fatalf("the fenced source took a write: %v", err)
	}
	if n := len(p.failovers()); n != 1 || len(p.b.m.AutoFailovers()) != 1 {
		t.Fatalf("%d automatic failovers", n)
	}
	checkLossReport(t, p, srcID, d, f, nil) // everything had been replicated
}

// Flapping links: short cuts, each shorter than the policy's delay, never
// promote, however long they add up to; then one long cut promotes once,
// and the link flapping afterwards promotes nothing more.
func TestAutoFailoverFlappingLink(t *testing.T) {
	ctx := context.Background()
	const lease = time.Second
	p := newFencedPair(t, lease)
	srcID, d := p.replicated(t)
	p.autoFailover(t, d, 3*time.Second)
	src := p.a.fs(srcID)
	var acked []string
	for i := range 5 {
		p.partition()
		time.Sleep(700 * time.Millisecond) // the flap's length, not a wait
		p.heal()
		testkit.WaitFor(t, "the link back", 20*time.Second, func() bool {
			st, ok := p.b.n.InboundStatus(d.ID)
			return ok && time.Since(st.LastContact) < 200*time.Millisecond
		})
		time.Sleep(300 * time.Millisecond) // the link stays up a while between two cuts
		if _, err := src.Mkdir(ctx, engine.RootCred, engine.RootIno, fmt.Sprint("flap", i), engine.SetAttr{}); err != nil {
			t.Fatalf("flap %d: the source refuses writes: %v", i, err)
		}
		acked = append(acked, fmt.Sprint("flap", i))
	}
	if n := len(p.failovers()); n != 0 {
		t.Fatalf("%d automatic failovers on a flapping link", n)
	}
	if p.b.protection(d.DestFileSystemID) != control.ProtectionReplicating {
		t.Fatal("the replica is no longer a replica")
	}
	p.partition()
	testkit.WaitFor(t, "the automatic failover", 30*time.Second, func() bool { return len(p.failovers()) > 0 })
	for range 3 {
		p.heal()
		time.Sleep(300 * time.Millisecond) // up, then down, a flap's lengths
		p.partition()
		time.Sleep(300 * time.Millisecond)
	}
	p.heal()
	testkit.WaitFor(t, "the source to learn of the promotion", 90*time.Second, func() bool {
		return learnedPromotion(p, srcID, d.ID)
	})
	if n := len(p.failovers()); n != 1 {
		t.Fatalf("%d automatic failovers", n)
	}
	if got := testutil.ToFloat64(p.b.m.Collector()); got != 1 {
		t.Fatalf("regionfs_replication_auto_failovers_total = %v", got)
	}
	if _, err := src.Mkdir(ctx, engine.RootCred, engine.RootIno, "late", engine.SetAttr{}); !errors.Is(err, engine.ErrReadOnly) {
		t.Fatalf("the failed-over source took a write after the heal: %v", err)
	}
	checkLossReport(t, p, srcID, d, p.failovers()[0], acked)
}

// A destination restarted while its source is out of reach has not heard
// it in this process (LastContact zero): it promotes itself no sooner
// than the policy's delay (and the lease's wait) from its start, and
// meanwhile reports the lag growing from what the replica holds. Before,
// it reported no LastReplicatedTimestamp and no lag (as during an
// initial sync): TimeSinceLastSync was not published at all, which an
// alarm that treats missing data as fine reads as in sync.
func TestRestartedDestinationCutOff(t *testing.T) {
	const lease, after = time.Second, 3 * time.Second
	p := newFencedPair(t, lease)
	srcID, d := p.replicated(t)
	fill(t, p.a.fs(srcID), "before", 3)
	converged(t, p.a.fs(srcID), p.b.fs(d.DestFileSystemID))
	p.autoFailover(t, d, after)
	cut := time.Now()
	p.partition()
	p.b.stop()
	p.b.restart()
	restarted := time.Now()
	p.b.m.StartAutoFailover()
	got := status(t, p.b.m, d.DestFileSystemID)
	t.Logf("restarted destination: %s %q, last replicated %s before the cut, lag %s", got.Status, got.StatusMessage,
		cut.Sub(got.LastReplicated).Round(time.Millisecond), got.Live.Lag(time.Now()).Round(time.Millisecond))
	if got.LastReplicated.IsZero() || got.LastReplicated.After(cut) {
		t.Fatalf("a restarted destination cut off from its source reports LastReplicated %v (cut at %v)", got.LastReplicated, cut)
	}
	if lag := got.Live.Lag(time.Now()); lag < time.Since(cut) {
		t.Fatalf("a restarted destination cut off from its source reports a lag of %s, %s after the cut", lag, time.Since(cut))
	}
	testkit.WaitFor(t, "the automatic failover", 30*time.Second, func() bool { return len(p.failovers()) > 0 })
	f := p.failovers()[0]
	t.Logf("promoted %s after the restart: %s", f.Time.Sub(restarted).Round(time.Millisecond), f.Reason)
	if f.Time.Sub(restarted) < after {
		t.Fatalf("promoted %s after the restart, before the policy's %s without the source", f.Time.Sub(restarted), after)
	}
}

// A replica opened on this node after the automatic failover checks
// began (a region spread over nodes; here the replication received again,
// Resume) has not heard its source in this process: the policy's delay
// counts from then. Before, it counted from the checks' start, long
// past, and the destination promoted itself as soon as the lease's wait
// allowed (1.5 leases), not after the policy's delay.
func TestAutoFailoverDelayFromReceiving(t *testing.T) {
	// The delay is well past the lease's wait and the source's ping.
	const lease, after = time.Second, 5 * time.Second
	p := newFencedPair(t, lease)
	_, d := p.replicated(t)
	p.autoFailover(t, d, after)
	time.Sleep(after) // the checks began longer ago than the delay (setup, not a check)
	p.partition()
	p.b.n.RemoveInbound(d.ID)
	if n, err := p.b.m.Resume(); err != nil || n != 1 {
		t.Fatalf("resume: %d %v", n, err)
	}
	received := time.Now()
	testkit.WaitFor(t, "the automatic failover", 30*time.Second, func() bool { return len(p.failovers()) > 0 })
	f := p.failovers()[0]
	t.Logf("promoted %s after the replica was received here: %s", f.Time.Sub(received).Round(time.Millisecond), f.Reason)
	if f.Time.Sub(received) < after {
		t.Fatalf("promoted %s after the replica was received here, before the policy's %s without the source", f.Time.Sub(received), after)
	}
}
