// Command replication is the replication benchmark harness: in one run it
// measures regionfs's cross-region replication (regionfs dev: us-east-1 →
// us-west-2 on loopback) against what users build by hand — nfs-ganesha
// exporting a directory that lsyncd (delay 0, rsync) mirrors into a second
// exported directory, and rsync to an rsync daemon — and prints numbers,
// ratios and whether each goal of issue 6 is met. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

type options struct {
	base       string
	keep       bool
	seed       uint64
	only       map[string]bool
	lagSeconds float64
	rates      []int
	lagWorkers int
	burstFiles int
	burstReps  int
	tputBytes  int64
	tputReps   int
	failReps   int
	outageReps int
	syncReps   int
	rsyncReps  int
	bFiles     int
	writeConns int
	settle     time.Duration
	profDir    string
	bin        string
}

var phases = []string{"lag", "burst", "throughput", "failover", "sync-a", "sync-b"}

func main() {
	var c options
	var only, rates string
	var seed uint64
	flag.StringVar(&c.base, "dir", os.TempDir(), "directory for all data (servers, datasets, copies); one disk for everything")
	flag.BoolVar(&c.keep, "keep", false, "keep the data directory")
	flag.Uint64Var(&seed, "seed", 0, "seed of every dataset (0: from the clock; printed)")
	flag.StringVar(&only, "only", strings.Join(phases, ","), "phases to run: "+strings.Join(phases, ","))
	flag.Float64Var(&c.lagSeconds, "lag-seconds", 25, "seconds of steady creates per rate")
	flag.StringVar(&rates, "rates", "200,500", "steady create rates (files/s)")
	flag.IntVar(&c.lagWorkers, "lag-conns", 8, "writer connections of the steady-rate runs")
	flag.IntVar(&c.burstFiles, "burst-files", 5000, "files per burst")
	flag.IntVar(&c.burstReps, "burst-reps", 3, "bursts per system")
	flag.Int64Var(&c.tputBytes, "tput-bytes", 1<<30, "bytes of each sequential write")
	flag.IntVar(&c.tputReps, "tput-reps", 3, "sequential writes per mode (replication on, off)")
	flag.IntVar(&c.failReps, "failover-reps", 5, "failovers with the source region up")
	flag.IntVar(&c.outageReps, "outage-reps", 2, "failovers with the source region down")
	flag.IntVar(&c.syncReps, "sync-reps", 1, "regionfs initial syncs per dataset (each with a fresh, newly written source)")
	flag.IntVar(&c.rsyncReps, "rsync-reps", 3, "rsync initial copies per dataset (fresh destinations)")
	flag.IntVar(&c.bFiles, "b-files", 100000, "files of dataset B (4 KiB each)")
	flag.IntVar(&c.writeConns, "write-conns", 8, "connections that write the datasets into regionfs")
	flag.DurationVar(&c.settle, "settle", 3*time.Second, "pause between measurements")
	flag.StringVar(&c.profDir, "cpuprofile", "", "directory for CPU profiles of each regionfs serve process (REGIONFS_CPUPROFILE; read with go tool pprof)")
	flag.StringVar(&c.bin, "bin", "", "a regionfs binary to run instead of building ./cmd/regionfs (to alternate two builds under one harness)")
	flag.Parse()
	c.seed = seed
	if c.seed == 0 {
		c.seed = uint64(time.Now().UnixNano())
	}
	c.only = map[string]bool{}
	for _, p := range strings.Split(only, ",") {
		if !slices.Contains(phases, p) {
			fmt.Fprintf(os.Stderr, "bench/replication: unknown phase %q (want %s)\n", p, strings.Join(phases, ","))
			os.Exit(2)
		}
		c.only[p] = true
	}
	for _, r := range strings.Split(rates, ",") {
		var v int
		if _, err := fmt.Sscan(r, &v); err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "bench/replication: bad rate %q\n", r)
			os.Exit(2)
		}
		c.rates = append(c.rates, v)
	}
	if c.only["sync-b"] && c.bFiles < 10 {
		// The failback after B overwrites 10 of its files.
		fmt.Fprintf(os.Stderr, "bench/replication: -b-files %d: at least 10 (the failback overwrites 10 of them)\n", c.bFiles)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/replication:", err)
		os.Exit(1)
	}
}

// row is one line of the summary table.
type row struct {
	metric, value, baseline, ratio, goal, verdict string
}

type bench struct {
	c       options
	tmp     string
	p       *procs
	bin     string
	cl      *cloud
	cluster *cluster
	g       *ganesha
	ls      *proc
	rd      *rsyncd
	rows    []row
	notes   []string
}

func (b *bench) add(r row)               { b.rows = append(b.rows, r) }
func (b *bench) note(f string, a ...any) { b.notes = append(b.notes, fmt.Sprintf(f, a...)) }
func logf(f string, a ...any)            { fmt.Printf(f+"\n", a...) }
func verdict(ok bool) string             { return map[bool]string{true: "met", false: "MISSED"}[ok] }
func ms(d time.Duration) float64         { return float64(d) / float64(time.Millisecond) }
func (b *bench) want(p string) bool      { return b.c.only[p] }
func (b *bench) settle()                 { time.Sleep(b.c.settle) }

func run(ctx context.Context, c options) (err error) {
	for _, tool := range []string{"go", "ganesha.nfsd", "rpcbind", "lsyncd", "rsync"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: apt-get install lsyncd rsync nfs-ganesha nfs-ganesha-vfs rpcbind (and run as root)", tool)
		}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root (nfs-ganesha and the rsync daemon need it)")
	}
	tmp, err := os.MkdirTemp(c.base, "replbench-")
	if err != nil {
		return err
	}
	b := &bench{c: c, tmp: tmp, p: &procs{}}
	defer func() {
		if serr := b.p.stopAll(); serr != nil {
			err = errors.Join(err, serr)
		}
		if !c.keep {
			logf("removing %s", tmp)
			os.RemoveAll(tmp)
		} else {
			logf("kept %s", tmp)
		}
	}()
	host, _ := os.Hostname()
	logf("bench/replication: %s, %d CPUs, %s; data in %s; seed %d", host, runtime.NumCPU(), time.Now().Format(time.RFC3339), tmp, c.seed)
	logf("phases: %s", strings.Join(slices.DeleteFunc(slices.Clone(phases), func(p string) bool { return !c.only[p] }), ", "))
	if c.bin != "" {
		if b.bin, err = filepath.Abs(c.bin); err != nil {
			return err
		}
	} else {
		b.bin = filepath.Join(tmp, "regionfs-bin")
		build := exec.Command("go", "build", "-o", b.bin, "./cmd/regionfs")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/regionfs (run from the module root): %w", err)
		}
	}
	cdir := filepath.Join(tmp, "regionfs")
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return err
	}
	if b.cluster, err = startCluster(b.p, b.bin, cdir, c.profDir); err != nil {
		return err
	}
	if b.cl, err = newCloud(ctx, benchAccess, b.cluster.secret); err != nil {
		return err
	}
	logf("regionfs %s: us-east-1 (regionfs serve, API %s:7070, subnet %s) and us-west-2 (regionfs serve, API %s:7070, subnet %s), edge http://%s",
		version(b.bin), benchRegions[0].ip, benchRegions[0].cidr, benchRegions[1].ip, benchRegions[1].cidr, benchEdge)

	if b.want("lag") || b.want("burst") {
		if err := startRpcbind(b.p, tmp); err != nil {
			return err
		}
		gdir := filepath.Join(tmp, "ganesha")
		if err := os.MkdirAll(gdir, 0o755); err != nil {
			return err
		}
		if b.g, err = startGanesha(ctx, b.p, gdir); err != nil {
			return err
		}
		ldir := filepath.Join(tmp, "lsyncd")
		if err := os.MkdirAll(ldir, 0o755); err != nil {
			return err
		}
		if b.ls, err = startLsyncd(b.p, ldir, b.g.src, b.g.dst); err != nil {
			return err
		}
		logf("baseline up: nfs-ganesha (VFS) exporting %s (source) and %s (replica) on 127.0.0.1:%d, lsyncd delay 0 (rsync, archive) source → replica",
			b.g.src, b.g.dst, b.g.NFSPort)
		if err := b.lagAndBurst(ctx); err != nil {
			return b.fail(err)
		}
		// The baseline's servers are not needed any more: stop them so
		// they do not weigh on what follows.
		if err := b.ls.stop(30 * time.Second); err != nil {
			return err
		}
	}
	if b.want("throughput") {
		if err := b.throughput(ctx); err != nil {
			return b.fail(err)
		}
	}
	if b.want("failover") {
		if err := b.failover(ctx); err != nil {
			return b.fail(err)
		}
	}
	if b.want("sync-a") || b.want("sync-b") {
		rdir := filepath.Join(tmp, "rsyncd")
		if err := os.MkdirAll(rdir, 0o755); err != nil {
			return err
		}
		if b.rd, err = startRsyncd(b.p, rdir); err != nil {
			return err
		}
		logf("rsync daemon on 127.0.0.1:%d (module dst = %s)", b.rd.port, b.rd.path)
	}
	if b.want("sync-a") {
		if _, err := b.initialSync(ctx, datasetA(c.seed), false); err != nil {
			return b.fail(err)
		}
	}
	if b.want("sync-b") {
		if _, err := b.initialSync(ctx, datasetB(c.seed, c.bFiles), true); err != nil {
			return b.fail(err)
		}
	}
	b.summary()
	return nil
}

// fail adds to a phase's error whether a regionfs process died.
func (b *bench) fail(err error) error {
	if a := b.cluster.alive(); a != nil {
		return fmt.Errorf("%w\n%v", err, a)
	}
	return err
}

func (b *bench) summary() {
	logf("\n== summary (seed %d) ==", b.c.seed)
	header := row{"metric", "regionfs", "baseline", "ratio", "goal", "verdict"}
	w := make([]int, 6)
	for _, r := range append([]row{header}, b.rows...) {
		for i, s := range []string{r.metric, r.value, r.baseline, r.ratio, r.goal, r.verdict} {
			w[i] = max(w[i], len([]rune(s)))
		}
	}
	line := func(cells ...string) {
		var sb strings.Builder
		for i, s := range cells {
			sb.WriteString(s)
			if i < len(cells)-1 {
				sb.WriteString(strings.Repeat(" ", w[i]-len([]rune(s))+2))
			}
		}
		fmt.Println(strings.TrimRight(sb.String(), " "))
	}
	line(header.metric, header.value, header.baseline, header.ratio, header.goal, header.verdict)
	for _, r := range b.rows {
		line(r.metric, r.value, r.baseline, r.ratio, r.goal, r.verdict)
	}
	for _, n := range b.notes {
		fmt.Println("note:", n)
	}
}

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// median is the middle value, or the mean of the two middle values of an
// even count (pct(v, 50) would take the lower one: with -tput-reps 2 it
// reported the slower of two runs as the median).
func median(v []float64) float64 {
	if len(v) == 0 || len(v)%2 == 1 {
		return pct(v, 50)
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// version is what `regionfs version` prints (its first line).
func version(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "(version unknown)"
	}
	return strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
}
