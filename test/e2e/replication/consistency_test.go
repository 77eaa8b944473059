package replicatione2e

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/replication/faultproxy"
	"github.com/regionfs/regionfs/internal/testkit"
	"github.com/regionfs/regionfs/test/e2e/e2ekit"
)

const (
	accessKey = "AKIAREPLE2ETESTKEY01"
	secretKey = "replication-e2e-secret-key-0123456789"
	pairKey   = "replication-e2e-pair-secret-0123456789"
)

// region is one `regionfs serve` process.
type region struct {
	testkit.Process
	t    *testing.T
	name string
	net  string
	dir  string
	efs  *efs.Client
}

func newRegion(t *testing.T, bin, name, netPrefix, id, peer, peerAddr string) *region {
	t.Helper()
	dir := t.TempDir()
	r := &region{t: t, name: name, net: netPrefix, dir: dir}
	if err := os.WriteFile(filepath.Join(dir, "kms.key"), []byte(strings.Repeat("3c", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "region.yaml")
	r.Process = testkit.Process{Args: []string{bin, "serve", "--config", cfgFile}, Log: filepath.Join(dir, "serve.log")}
	cfg := testkit.PairedRegion{Name: name, Dir: dir, Net: netPrefix, ID: id, Peer: peer, PeerReplication: peerAddr,
		AccessKey: accessKey, SecretKey: secretKey, PairKey: pairKey}.Config()
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r.efs = efs.NewFromConfig(testkit.AWSConfig("http://"+netPrefix+".0.1:7070", name, accessKey, secretKey))
	r.start()
	t.Cleanup(r.Stop)
	return r
}

func (r *region) start() {
	r.t.Helper()
	r.Start(r.t, "http://"+r.net+".0.1:7070/metrics")
}

// replication describes the replication of fs as r sees it (for failure
// messages).
func (r *region) replication(ctx context.Context, fs string) string {
	out, err := r.efs.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(fs)})
	if err != nil {
		return fmt.Sprintf("%s: replication of %s: %v", r.name, fs, err)
	}
	var b strings.Builder
	for _, c := range out.Replications {
		for _, d := range c.Destinations {
			fmt.Fprintf(&b, "%s: %s → %s in %s: %s (last sync %v) %s\n", r.name, aws.ToString(c.SourceFileSystemId),
				aws.ToString(d.FileSystemId), aws.ToString(d.Region), d.Status, aws.ToTime(d.LastReplicatedTimestamp), aws.ToString(d.StatusMessage))
		}
	}
	return b.String()
}

// nfsDir is a connection to the root of a mount target.
type nfsDir = e2ekit.Dir

// listing returns the root directory as "name:size" lines, sorted, from one
// READDIRPLUS reply (one consistent state of the file system).
func listing(ctx context.Context, d *nfsDir) (string, error) {
	var verf [proto.CookieVerfSize]byte
	res, err := d.C.ReadDirPlus(ctx, d.Root, 0, verf, 1<<20, 1<<20)
	if err != nil {
		return "", err
	}
	if !res.EOF {
		return "", errors.New("the directory did not fit in one READDIRPLUS reply")
	}
	var lines []string
	for _, e := range res.Entries {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		if e.Attr == nil {
			return "", fmt.Errorf("no attributes for %s", e.Name)
		}
		lines = append(lines, fmt.Sprintf("%s:%d", e.Name, e.Attr.Size))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n"), nil
}

// model is the writer's view of the source: every state the source went
// through (or may have gone through: a change whose reply was lost).
type model struct {
	mu     sync.Mutex
	files  map[string]uint64 // current state
	order  []string          // live files, oldest first
	states map[[32]byte]int  // fingerprint → newest step with it
	steps  int
	acked  int // newest step whose change the source acknowledged
}

func fingerprintOf(files map[string]uint64) [32]byte {
	var lines []string
	for n, s := range files {
		lines = append(lines, fmt.Sprintf("%s:%d", n, s))
	}
	slices.Sort(lines)
	return sha256.Sum256([]byte(strings.Join(lines, "\n")))
}

func (m *model) record() {
	m.steps++
	m.states[fingerprintOf(m.files)] = m.steps
}

func (m *model) knows(listing string) (int, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	step, ok := m.states[sha256.Sum256([]byte(listing))]
	return step, ok
}

// TestReplicaIsAlwaysAPrefix: a writer makes dependent changes (each new
// file names its predecessor; overwrites, renames, removes) through NFS on
// us-east-1 while a fault proxy between the regions resets, delays and
// partitions the link and either region is killed with SIGKILL at random
// moments; a checker reads the replica in us-west-2 at random moments. Every
// state it sees must be one the source went through. At the end the replica
// converges to the source, byte for byte.
func TestReplicaIsAlwaysAPrefix(t *testing.T) {
	testkit.NeedTool(t, "go")
	ctx := context.Background()
	bin := testkit.BuildRegionfs(t)
	// us-east-1 reaches us-west-2's replication endpoint through the proxy.
	px, err := faultproxy.New("127.51.0.9:0", "127.52.0.1:7443")
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	a := newRegion(t, bin, "us-east-1", "127.51", "a", "us-west-2", px.Addr())
	b := newRegion(t, bin, "us-west-2", "127.52", "b", "us-east-1", "127.51.0.1:7443")

	src := createFS(t, a, "e2e-src")
	sip := mountTarget(t, a, src)
	w := &writer{t: t, ip: sip, m: &model{files: map[string]uint64{}, states: map[[32]byte]int{}}, rng: rand.New(rand.NewPCG(7, 7))}
	w.m.record()
	w.connect(ctx)
	for range 150 {
		w.step(ctx)
	}
	rc, err := a.efs.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{
		SourceFileSystemId: aws.String(src), Destinations: []types.DestinationToCreate{{Region: aws.String("us-west-2")}}})
	if err != nil {
		t.Fatal(err)
	}
	dst := aws.ToString(rc.Destinations[0].FileSystemId)
	dip := mountTarget(t, b, dst)

	// The writer runs throughout; the checker reads the replica.
	var pause sync.RWMutex // held exclusively while a region restarts
	stopWriter := testkit.Repeat(func() error {
		pause.RLock()
		w.step(ctx)
		pause.RUnlock()
		return nil
	})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	checks, unknown := 0, 0
	var checkErr error
	var cmu sync.Mutex
	// The replica only moves forward while it runs: a state older than one
	// it already showed means it lost applied changes. A destination killed
	// with -9 may come back at an older prefix (what it showed had been
	// applied but not yet made durable), so the high-water mark starts over
	// at each restart.
	best, restarts := 0, 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		var d *nfsDir
		rng := rand.New(rand.NewPCG(8, 8))
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(rng.IntN(40)) * time.Millisecond):
			}
			if d == nil {
				if d, _ = e2ekit.Dial(ctx, dip); d == nil {
					continue
				}
			}
			l, err := listing(ctx, d)
			if err != nil {
				d.Conn.Close()
				d = nil
				continue // replica restarting, or not yet consistent (JUKEBOX)
			}
			step, ok := w.m.knows(l)
			if !ok {
				// The writer may not have recorded a change whose reply is
				// on its way: give it 300 ms to.
				if !testkit.Until(300*time.Millisecond, func() bool { _, ok := w.m.knows(l); return ok }) {
					cmu.Lock()
					unknown++
					checkErr = fmt.Errorf("the replica shows a state the source never had:\n%s", l)
					cmu.Unlock()
					return
				}
			}
			if ok {
				cmu.Lock()
				if step < best && restarts == 0 {
					checkErr = fmt.Errorf("the replica went back from step %d to step %d:\n%s", best, step, l)
					cmu.Unlock()
					return
				}
				if restarts > 0 {
					best, restarts = step, 0
				}
				best = max(best, step)
				cmu.Unlock()
			}
			cmu.Lock()
			checks++
			cmu.Unlock()
		}
	}()

	rng := rand.New(rand.NewPCG(9, 9))
	faults := map[string]int{}
	for cycle := range 10 {
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond) // between two faults
		switch f := rng.IntN(6); f {
		case 0:
			px.Reset()
			faults["reset"]++
		case 1:
			px.SetDelay(time.Duration(1+rng.IntN(30)) * time.Millisecond)
			faults["delay"]++
		case 2:
			px.Partition()
			time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond) // the partition's length
			px.Heal()
			faults["partition"]++
		case 3:
			b.Kill9()
			cmu.Lock()
			restarts++
			cmu.Unlock()
			b.start()
			faults["kill -9 destination"]++
		case 4:
			// Killed in the middle of whatever the writer is doing.
			a.Kill9()
			pause.Lock()
			a.start()
			w.recover(ctx)
			pause.Unlock()
			faults["kill -9 source"]++
		default:
			px.SetDelay(0)
		}
		cmu.Lock()
		bad := checkErr
		cmu.Unlock()
		if bad != nil {
			break
		}
		cmu.Lock()
		n := checks
		cmu.Unlock()
		w.m.mu.Lock()
		steps := w.m.steps
		w.m.mu.Unlock()
		t.Logf("cycle %d: %d checks so far, writer at step %d", cycle, n, steps)
	}
	px.SetDelay(0)
	px.Heal()
	stopWriter()
	close(stop)
	wg.Wait()
	if checkErr != nil {
		t.Fatal(checkErr)
	}
	t.Logf("faults %v; %d consistent replica reads, writer made %d changes", faults, checks, w.m.steps) // both goroutines have ended
	if checks < 20 {
		t.Fatalf("only %d replica reads matched a source state", checks)
	}
	// Convergence, byte for byte.
	testkit.Eventually(t, 60*time.Second, func() error {
		sl, err1 := listingOf(ctx, sip)
		dl, err2 := listingOf(ctx, dip)
		if err1 == nil && err2 == nil && sl == dl {
			return nil
		}
		return fmt.Errorf("replica did not converge: %v %v\nsource:\n%s\nreplica:\n%s\n%s\n%s\n--- us-east-1 ---\n%s\n--- us-west-2 ---\n%s",
			err1, err2, sl, dl, a.replication(ctx, src), b.replication(ctx, dst), a.Tail(40), b.Tail(40))
	})
	t.Logf("%d files identical on the replica", len(e2ekit.CompareContents(t, ctx, sip, dip)))
}

// writer makes the changes and keeps the model.
type writer struct {
	t   *testing.T
	ip  string
	d   *nfsDir
	m   *model
	rng *rand.Rand
	n   int
}

func (w *writer) connect(ctx context.Context) {
	w.t.Helper()
	testkit.Eventually(w.t, 30*time.Second, func() error {
		d, err := e2ekit.Dial(ctx, w.ip)
		if err != nil {
			return fmt.Errorf("cannot reach the source's mount target: %w", err)
		}
		w.d = d
		return nil
	})
}

// recover reconnects after the source was killed and learns which of the
// possible states it is in (a change in flight may or may not have been
// made durable; an acknowledged one always is).
func (w *writer) recover(ctx context.Context) {
	w.t.Helper()
	if w.d != nil {
		w.d.Conn.Close()
	}
	w.connect(ctx)
	l, err := listing(ctx, w.d)
	if err != nil {
		w.t.Fatalf("source listing after restart: %v", err)
	}
	step, ok := w.m.knows(l)
	if !ok {
		w.t.Fatalf("after kill -9 the source is in a state the writer never made:\n%s", l)
	}
	if w.m.acked > step {
		w.t.Fatalf("after kill -9 the source is at step %d but step %d was acknowledged: an acknowledged change was lost", step, w.m.acked)
	}
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	files := map[string]uint64{}
	for _, line := range strings.Split(l, "\n") {
		if line == "" {
			continue
		}
		name, size, _ := strings.Cut(line, ":")
		var s uint64
		fmt.Sscan(size, &s)
		files[name] = s
	}
	w.m.files = files
	w.m.order = w.m.order[:0]
	for n := range files {
		w.m.order = append(w.m.order, n)
	}
	slices.Sort(w.m.order)
	w.t.Logf("source recovered at step %d of %d", step, w.m.steps)
}

// step makes one change. The model records the state a call leads to
// before the call is made, so a replica that applied it before the reply
// arrived is recognised.
func (w *writer) step(ctx context.Context) {
	m := w.m
	w.n++
	name := fmt.Sprintf("f%06d", w.n)
	m.mu.Lock()
	live := len(m.order)
	m.mu.Unlock()
	var err error
	switch op := w.rng.IntN(10); {
	case op < 5 || live < 3:
		if live > 120 {
			err = w.remove(ctx, 0)
			break
		}
		err = w.create(ctx, name)
	case op < 7:
		err = w.overwrite(ctx, w.rng.IntN(live))
	case op < 9:
		err = w.rename(ctx, w.rng.IntN(live), name)
	default:
		err = w.remove(ctx, w.rng.IntN(live-1))
	}
	if err != nil {
		// The source went away mid-change; the restart path re-reads it.
		time.Sleep(50 * time.Millisecond) // a pause before the next change
	}
}

// apply records the state the next call leads to; done marks it
// acknowledged once the call succeeded.
func (w *writer) apply(f func()) (done func(error) error) {
	w.m.mu.Lock()
	f()
	w.m.record()
	step := w.m.steps
	w.m.mu.Unlock()
	return func(err error) error {
		if err == nil {
			w.m.mu.Lock()
			w.m.acked = max(w.m.acked, step)
			w.m.mu.Unlock()
		}
		return err
	}
}

func (w *writer) create(ctx context.Context, name string) error {
	m := w.m
	m.mu.Lock()
	prev := "none"
	if len(m.order) > 0 {
		prev = m.order[len(m.order)-1]
	}
	m.mu.Unlock()
	data := []byte("prev=" + prev + "\n" + strings.Repeat("x", w.rng.IntN(3000)))
	if w.rng.IntN(8) == 0 {
		data = append(data, make([]byte, 70_000+w.rng.IntN(200_000))...)
	}
	done := w.apply(func() { m.files[name] = 0; m.order = append(m.order, name) })
	res, err := w.d.C.Create(ctx, w.d.Root, name, proto.Guarded, proto.Sattr{})
	if done(err) != nil {
		return err
	}
	done = w.apply(func() { m.files[name] = uint64(len(data)) })
	_, err = w.d.C.Write(ctx, res.FH, 0, data, proto.FileSync)
	return done(err)
}

func (w *writer) overwrite(ctx context.Context, i int) error {
	m := w.m
	m.mu.Lock()
	name := m.order[i]
	m.mu.Unlock()
	lr, err := w.d.C.Lookup(ctx, w.d.Root, name)
	if err != nil {
		return err
	}
	size := uint64(100 + w.rng.IntN(9000))
	done := w.apply(func() { m.files[name] = size })
	_, err = w.d.C.SetAttr(ctx, lr.FH, proto.Sattr{Size: &size}, nil)
	return done(err)
}

func (w *writer) rename(ctx context.Context, i int, to string) error {
	m := w.m
	m.mu.Lock()
	from := m.order[i]
	m.mu.Unlock()
	done := w.apply(func() {
		m.files[to] = m.files[from]
		delete(m.files, from)
		m.order = append(slices.Delete(m.order, i, i+1), to)
	})
	_, err := w.d.C.Rename(ctx, w.d.Root, from, w.d.Root, to)
	return done(err)
}

func (w *writer) remove(ctx context.Context, i int) error {
	m := w.m
	m.mu.Lock()
	name := m.order[i]
	m.mu.Unlock()
	done := w.apply(func() {
		delete(m.files, name)
		m.order = slices.Delete(m.order, i, i+1)
	})
	_, err := w.d.C.Remove(ctx, w.d.Root, name)
	return done(err)
}

func listingOf(ctx context.Context, ip string) (string, error) {
	d, err := e2ekit.Dial(ctx, ip)
	if err != nil {
		return "", err
	}
	defer d.Conn.Close()
	return listing(ctx, d)
}

func createFS(t *testing.T, r *region, token string) string {
	t.Helper()
	ctx := context.Background()
	out, err := r.efs.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(token)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.FileSystemId)
}

func mountTarget(t *testing.T, r *region, fs string) string {
	t.Helper()
	suffix := "a"
	if r.name == "us-west-2" {
		suffix = "b"
	}
	return e2ekit.MountTarget(t, r.efs, fs, "subnet-0e2e0000000000"+suffix+"1", "sg-0e2e0000000000000"+suffix+"1")
}
