// Command nfs is the NFS benchmark harness: it runs the same workloads
// against regionfs (`regionfs nfs serve`) and against Debian nfs-ganesha
// with the VFS FSAL exporting a directory on the same disk, in the same
// run, and prints MB/s, files/s and the ratio regionfs/ganesha. See
// README.md.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/regionfs/regionfs/bench/internal/benchkit"
	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

type config struct {
	base     string
	bytes    int64
	files    int
	conns    int
	runs     int
	fileSize int
	keep     bool
	// stable is the WRITE mode of the create workloads; createsOnly skips
	// the sequential and latency workloads.
	stable      proto.StableHow
	createsOnly bool
	// streams is the number of concurrent nfs-cp readers of the parallel
	// read workload; readsOnly skips the create and latency workloads.
	streams   int
	readsOnly bool
	// cacheWrites runs regionfs with --cache-writes and a 1.5 GiB block
	// cache.
	cacheWrites bool
}

func main() {
	var c config
	flag.StringVar(&c.base, "dir", os.TempDir(), "directory for the servers' data (the same disk for both)")
	flag.Int64Var(&c.bytes, "bytes", 1<<30, "size of the sequential nfs-cp file")
	flag.IntVar(&c.files, "files", 10000, "number of small files to create")
	flag.IntVar(&c.fileSize, "file-size", 1024, "bytes written to each small file")
	flag.IntVar(&c.conns, "conns", 8, "connections of the parallel create workload")
	flag.IntVar(&c.runs, "runs", 3, "runs of every workload (the median is compared)")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary directory")
	stable := flag.String("stable", "unstable", "WRITE mode of the create workloads: unstable or file_sync (the issue 16 probe)")
	flag.BoolVar(&c.createsOnly, "creates-only", false, "run only the create workloads")
	flag.IntVar(&c.streams, "streams", 4, "concurrent nfs-cp readers of the parallel read workload (each its own file of -bytes/streams)")
	flag.BoolVar(&c.readsOnly, "reads-only", false, "run only the sequential write and read workloads")
	flag.BoolVar(&c.cacheWrites, "cache-writes", false, "run regionfs with --cache-writes and a 1.5 GiB block cache")
	flag.Parse()
	switch *stable {
	case "unstable":
		c.stable = proto.Unstable
	case "file_sync":
		c.stable = proto.FileSync
	default:
		fmt.Fprintln(os.Stderr, "bench/nfs: -stable is unstable or file_sync")
		os.Exit(2)
	}
	if c.streams < 1 || c.createsOnly && c.readsOnly {
		fmt.Fprintln(os.Stderr, "bench/nfs: -streams is at least 1; -creates-only and -reads-only exclude each other")
		os.Exit(2)
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "bench/nfs:", err)
		os.Exit(1)
	}
}

// server is one NFS server under test.
type server interface {
	name() string
	// start serves a fresh, empty export.
	start(ctx context.Context, dir string) error
	stop() error
	// url is the libnfs URL of a file at the export's root.
	url(file string) string
	// nfsAddr and mountAddr are where NFS and MOUNT listen; exportPath
	// is the MOUNT path.
	nfsAddr() string
	mountAddr() string
	exportPath() string
	// pid is the server's process id (its /proc/PID/io).
	pid() int
}

type result struct {
	writeMBs, readMBs, createSerial, createParallel float64
	// readStreamsMBs: c.streams nfs-cp readers at once, MB/s in all.
	readStreamsMBs float64
	// readFileMiB: what the server read with read(2) and pread(2) (its
	// /proc/PID/io rchar, mostly files: the requests are small) during
	// the sequential read; regionfs reads no block file for blocks it
	// serves from its cache.
	readFileMiB float64
	// readCPU and streamsCPU: the server process's CPU time (user +
	// system, all its threads, /proc/PID/stat) per MiB of the sequential
	// read and of the parallel read, in µs; steadier than MB/s on a
	// shared machine, and what the server pays for the bytes it sends.
	readCPU, streamsCPU float64
	// readWhere and streamsWhere: where the machine's CPU went during
	// each read besides the server (see cpuSplit).
	readWhere, streamsWhere cpuSplit
	// lat is the median latency of single procedures, in µs.
	lat map[string]float64
}

// latencyProcs are the procedures whose single-call latency is printed.
var latencyProcs = []string{"NULL", "GETATTR", "LOOKUP", "CREATE", "WRITE", "COMMIT"}

func run(c config) error {
	for _, tool := range []string{"nfs-cp", "ganesha.nfsd", "rpcbind", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: apt-get install libnfs-utils nfs-ganesha nfs-ganesha-vfs rpcbind (run as root)", tool)
		}
	}
	tmp, err := os.MkdirTemp(c.base, "nfsbench-")
	if err != nil {
		return err
	}
	if !c.keep {
		defer os.RemoveAll(tmp)
	}
	seq := fmt.Sprintf("%d MiB sequential, ", c.bytes>>20)
	if c.createsOnly {
		seq = ""
	}
	if c.readsOnly {
		fmt.Printf("bench/nfs: data in %s; %s1 and %d read streams, %d runs\n", tmp, seq, c.streams, c.runs)
	} else {
		fmt.Printf("bench/nfs: data in %s; %s%d read streams; %d files of %d bytes written %s (serial, and %d connections), %d runs\n",
			tmp, seq, c.streams, c.files, c.fileSize, c.stable, c.conns, c.runs)
	}
	bin := filepath.Join(tmp, "regionfs")
	build := exec.Command("go", "build", "-o", bin, "./cmd/regionfs")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/regionfs (run from the module root): %w", err)
	}
	src := filepath.Join(tmp, "src.bin")
	var srcSum [32]byte
	if !c.createsOnly {
		if err := randomFile(src, c.bytes); err != nil {
			return err
		}
		var err error
		if srcSum, err = fileSum(src); err != nil {
			return err
		}
	}
	rb := &benchkit.Rpcbind{}
	if err := rb.Start(tmp); err != nil {
		return err
	}
	defer rb.Stop()
	servers := []server{&regionfsServer{bin: bin, cacheWrites: c.cacheWrites}, &ganeshaServer{}}
	results := map[string][]result{}
	ctx := context.Background()
	for r := range c.runs {
		// Alternate which server goes first, so that disk state left by
		// the previous step weighs on both alike.
		order := slices.Clone(servers)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, s := range order {
			dir := filepath.Join(tmp, fmt.Sprintf("%s-%d", s.name(), r))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			if err := s.start(ctx, dir); err != nil {
				return fmt.Errorf("%s: %w", s.name(), err)
			}
			res, err := workloads(ctx, c, s, src, srcSum)
			if serr := s.stop(); err == nil {
				err = serr
			}
			if err != nil {
				return fmt.Errorf("%s run %d: %w", s.name(), r+1, err)
			}
			seq := fmt.Sprintf("write %7.1f MB/s  read %7.1f MB/s (%5.0f MiB read(2) by the server, %4.0f cpu-µs/MiB; %s)  read×%d %7.1f MB/s (%4.0f cpu-µs/MiB; %s)  ",
				res.writeMBs, res.readMBs, res.readFileMiB, res.readCPU, res.readWhere, c.streams, res.readStreamsMBs, res.streamsCPU, res.streamsWhere)
			if c.createsOnly {
				seq = ""
			}
			cr := fmt.Sprintf("creates %7.0f files/s serial, %7.0f files/s on %d conns", res.createSerial, res.createParallel, c.conns)
			if c.readsOnly {
				cr = ""
			}
			fmt.Printf("  run %d %-9s %s%s\n", r+1, s.name(), seq, cr)
			results[s.name()] = append(results[s.name()], res)
		}
	}
	med := func(name string, pick func(result) float64) float64 {
		var v []float64
		for _, r := range results[name] {
			v = append(v, pick(r))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	fmt.Printf("\nmedian of %d runs          regionfs     ganesha   ratio  goal\n", c.runs)
	type figure struct {
		label, unit string
		goal        float64
		pick        func(result) float64
	}
	var figures []figure
	if !c.createsOnly {
		figures = append(figures,
			figure{fmt.Sprintf("sequential write %d MiB", c.bytes>>20), "MB/s", 1.0, func(r result) float64 { return r.writeMBs }},
			figure{fmt.Sprintf("sequential read %d MiB", c.bytes>>20), "MB/s", 1.0, func(r result) float64 { return r.readMBs }},
			figure{fmt.Sprintf("read %d streams %d MiB", c.streams, c.bytes>>20), "MB/s", 1.0, func(r result) float64 { return r.readStreamsMBs }})
	}
	if !c.readsOnly {
		figures = append(figures,
			figure{fmt.Sprintf("%d creates, 1 conn", c.files), "files/s", 1.5, func(r result) float64 { return r.createSerial }},
			figure{fmt.Sprintf("%d creates, %d conns", c.files, c.conns), "files/s", 1.5, func(r result) float64 { return r.createParallel }})
	}
	for _, m := range figures {
		a, b := med("regionfs", m.pick), med("ganesha", m.pick)
		verdict := "met"
		if a/b < m.goal {
			verdict = "MISSED"
		}
		fmt.Printf("%-26s %8.1f %11.1f   %5.2fx  >=%.1fx %s (%s)\n", m.label, a, b, a/b, m.goal, verdict, m.unit)
	}
	if !c.createsOnly {
		// What the server pays per MiB it sends (no goal: the figures
		// above are the goals).
		fmt.Printf("\nmedian server CPU per MiB read (µs)  regionfs     ganesha   ratio\n")
		for _, m := range []struct {
			label string
			pick  func(result) float64
		}{
			{"sequential read", func(r result) float64 { return r.readCPU }},
			{fmt.Sprintf("read %d streams", c.streams), func(r result) float64 { return r.streamsCPU }},
		} {
			a, b := med("regionfs", m.pick), med("ganesha", m.pick)
			fmt.Printf("  %-33s %8.0f %11.0f   %5.2fx\n", m.label, a, b, a/b)
		}
		fmt.Printf("\nmedian CPU per MiB read besides the server (µs)  clients  others  idle  steal\n")
		for _, m := range []struct {
			label string
			pick  func(result) cpuSplit
		}{
			{"sequential read", func(r result) cpuSplit { return r.readWhere }},
			{fmt.Sprintf("read %d streams", c.streams), func(r result) cpuSplit { return r.streamsWhere }},
		} {
			for _, name := range []string{"regionfs", "ganesha"} {
				fmt.Printf("  %-20s %-25s %7.0f %7.0f %5.0f %6.0f\n", m.label, name,
					med(name, func(r result) float64 { return m.pick(r).clients }),
					med(name, func(r result) float64 { return m.pick(r).others }),
					med(name, func(r result) float64 { return m.pick(r).idle }),
					med(name, func(r result) float64 { return m.pick(r).steal }))
			}
		}
	}
	if c.createsOnly || c.readsOnly {
		return nil
	}
	fmt.Printf("\nmedian latency, 1 conn (µs)  regionfs     ganesha\n")
	for _, p := range latencyProcs {
		fmt.Printf("  %-26s %8.0f %11.0f\n", p, med("regionfs", func(r result) float64 { return r.lat[p] }), med("ganesha", func(r result) float64 { return r.lat[p] }))
	}
	return nil
}

// workloads runs every workload against a started server. Dirty pages
// are written out before each timed step (sync), and the file read back
// goes to /dev/shm, so the local disk work of earlier steps and of the
// copy itself does not count against whichever server runs then.
func workloads(ctx context.Context, c config, s server, src string, srcSum [32]byte) (result, error) {
	var res result
	if c.createsOnly {
		syscall.Sync()
		var err error
		if res.createSerial, err = creates(ctx, c, s, "serial", 1); err != nil {
			return res, err
		}
		if res.createParallel, err = creates(ctx, c, s, "parallel", c.conns); err != nil {
			return res, err
		}
		return res, nil
	}
	syscall.Sync()
	t0 := time.Now()
	if out, err := exec.CommandContext(ctx, "nfs-cp", src, s.url("big.bin")).CombinedOutput(); err != nil {
		return res, fmt.Errorf("nfs-cp in: %v: %s", err, out)
	}
	res.writeMBs = float64(c.bytes) / 1e6 / time.Since(t0).Seconds()
	back := fmt.Sprintf("/dev/shm/nfsbench-%d.bin", os.Getpid())
	os.Remove(back)
	defer os.Remove(back)
	syscall.Sync()
	rchar, cpu := procRchar(s.pid()), procCPU(s.pid())
	m0 := takeMachine(s.pid())
	t0 = time.Now()
	cp := exec.CommandContext(ctx, "nfs-cp", s.url("big.bin"), back)
	if out, err := cp.CombinedOutput(); err != nil {
		return res, fmt.Errorf("nfs-cp out: %v: %s", err, out)
	}
	res.readMBs = float64(c.bytes) / 1e6 / time.Since(t0).Seconds()
	res.readFileMiB = float64(procRchar(s.pid())-rchar) / (1 << 20)
	res.readCPU = perMiB(procCPU(s.pid())-cpu, c.bytes)
	res.readWhere = m0.split(takeMachine(s.pid()), childCPU(cp), c.bytes)
	sum, err := fileSum(back)
	os.Remove(back)
	if err != nil {
		return res, err
	}
	if sum != srcSum {
		return res, errors.New("the file read back differs from the one written")
	}
	if res.readStreamsMBs, res.streamsCPU, res.streamsWhere, err = readStreams(ctx, c, s, src); err != nil {
		return res, err
	}
	if c.readsOnly {
		return res, nil
	}
	syscall.Sync()
	if res.createSerial, err = creates(ctx, c, s, "serial", 1); err != nil {
		return res, err
	}
	if res.createParallel, err = creates(ctx, c, s, "parallel", c.conns); err != nil {
		return res, err
	}
	if res.lat, err = latencies(ctx, s); err != nil {
		return res, err
	}
	return res, nil
}

// readStreams writes c.streams files of c.bytes/c.streams bytes (each its
// own slice of src, so that no two share a block: regionfs stores equal
// blocks once, which would make its streams read less from disk than
// ganesha's) with nfs-cp, one after the other (not timed), then reads
// them back with c.streams nfs-cp at once into /dev/shm and checks each;
// it returns MB/s of all streams together, the server's CPU time per
// MiB read (µs) and where the machine's other CPU went.
func readStreams(ctx context.Context, c config, s server, src string) (mbs, cpuMiB float64, where cpuSplit, err error) {
	part := c.bytes / int64(c.streams)
	tmp, err := os.MkdirTemp("/dev/shm", "nfsbench-streams-")
	if err != nil {
		return 0, 0, where, err
	}
	defer os.RemoveAll(tmp)
	in := filepath.Join(tmp, "part.bin")
	want := make([][32]byte, c.streams)
	for i := range c.streams {
		if err := copyRange(src, in, int64(i)*part, part); err != nil {
			return 0, 0, where, err
		}
		if want[i], err = fileSum(in); err != nil {
			return 0, 0, where, err
		}
		if out, err := exec.CommandContext(ctx, "nfs-cp", in, s.url(fmt.Sprintf("stream%d.bin", i))).CombinedOutput(); err != nil {
			return 0, 0, where, fmt.Errorf("nfs-cp in stream %d: %v: %s", i, err, out)
		}
	}
	os.Remove(in)
	syscall.Sync()
	errs := make(chan error, c.streams)
	var wg sync.WaitGroup
	cpu := procCPU(s.pid())
	m0 := takeMachine(s.pid())
	clients := make([]time.Duration, c.streams)
	t0 := time.Now()
	for i := range c.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := filepath.Join(tmp, fmt.Sprintf("out%d.bin", i))
			cp := exec.CommandContext(ctx, "nfs-cp", s.url(fmt.Sprintf("stream%d.bin", i)), out)
			if msg, err := cp.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("nfs-cp out stream %d: %v: %s", i, err, msg)
			}
			clients[i] = childCPU(cp)
		}()
	}
	wg.Wait()
	mbs = float64(part*int64(c.streams)) / 1e6 / time.Since(t0).Seconds()
	cpuMiB = perMiB(procCPU(s.pid())-cpu, part*int64(c.streams))
	var all time.Duration
	for _, d := range clients {
		all += d
	}
	where = m0.split(takeMachine(s.pid()), all, part*int64(c.streams))
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, where, err
	}
	for i := range c.streams {
		out := filepath.Join(tmp, fmt.Sprintf("out%d.bin", i))
		sum, err := fileSum(out)
		os.Remove(out)
		if err != nil {
			return 0, 0, where, err
		}
		if sum != want[i] {
			return 0, 0, where, fmt.Errorf("stream %d: the file read back differs from the one written", i)
		}
	}
	return mbs, cpuMiB, where, nil
}

// procCPU is a process's CPU time (user and system, all threads) from
// /proc/PID/stat, -1 when unknown.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces: fields count from the
	// closing parenthesis; utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	// USER_HZ is 100 on Linux.
	return time.Duration(ut+st) * (time.Second / 100)
}

// cpuSplit says where the machine's CPU went during a read, per MiB read
// (µs), besides the server's own (readCPU, streamsCPU): its nfs-cp
// clients, every other process (the other sessions of a shared machine),
// the CPU time nobody used, and the time the hypervisor took (steal). A
// read that is slower than another without costing its server more CPU
// per MiB waited: on idle CPUs, or for CPU that went to others.
type cpuSplit struct {
	clients, others, idle, steal float64
}

func (w cpuSplit) String() string {
	return fmt.Sprintf("clients %.0f, others %.0f, idle %.0f, steal %.0f", w.clients, w.others, w.idle, w.steal)
}

// machine is a sample of the machine's CPU counters and the server's.
type machine struct {
	busy, idle, steal time.Duration // all CPUs, /proc/stat
	server            time.Duration
}

func takeMachine(pid int) machine {
	m := machine{server: procCPU(pid)}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return m
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return m
	}
	// user nice system idle iowait irq softirq steal, in USER_HZ (100).
	for i, v := range f[1:9] {
		var n int64
		fmt.Sscan(v, &n)
		d := time.Duration(n) * (time.Second / 100)
		switch i {
		case 3, 4:
			m.idle += d
		case 7: // the hypervisor's: neither this machine's work nor idle
			m.steal += d
		default:
			m.busy += d
		}
	}
	return m
}

// split is where the CPU went from m to end, the clients having used
// clients, per MiB of n bytes.
func (m machine) split(end machine, clients time.Duration, n int64) cpuSplit {
	others := end.busy - m.busy - (end.server - m.server) - clients
	return cpuSplit{clients: perMiB(clients, n), others: perMiB(max(others, 0), n), idle: perMiB(end.idle-m.idle, n), steal: perMiB(end.steal-m.steal, n)}
}

// childCPU is the CPU time (user + system) of a command that has run.
func childCPU(cmd *exec.Cmd) time.Duration {
	if cmd.ProcessState == nil {
		return 0
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// perMiB is d per MiB of n bytes, in µs.
func perMiB(d time.Duration, n int64) float64 {
	return float64(d.Microseconds()) / (float64(n) / (1 << 20))
}

// procRchar is a process's rchar (bytes read with read(2), pread(2)
// and the like), -1 when unknown.
func procRchar(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			var n int64
			fmt.Sscan(v, &n)
			return n
		}
	}
	return -1
}

// copyRange copies n bytes of src from off into a new file dst.
func copyRange(src, dst string, off, n int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, io.NewSectionReader(in, off, n)); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// creates makes c.files files in a new directory over conns connections,
// each file with CREATE (GUARDED), WRITE (c.stable) and COMMIT, one file
// at a time per connection; it returns files per second.
func creates(ctx context.Context, c config, s server, dirName string, conns int) (float64, error) {
	type session struct {
		cl  *client.Client
		dir proto.FH
	}
	var sess []session
	for i := range conns {
		mc, err := client.Dial(ctx, s.mountAddr())
		if err != nil {
			return 0, err
		}
		m := mc.WithAuth(client.Unix("bench", 0, 0))
		root, _, err := m.Mount(ctx, s.exportPath())
		mc.Close()
		if err != nil {
			return 0, fmt.Errorf("mount %s: %w", s.exportPath(), err)
		}
		nc, err := client.Dial(ctx, s.nfsAddr())
		if err != nil {
			return 0, err
		}
		defer nc.Close()
		cl := nc.WithAuth(client.Unix("bench", 0, 0))
		if i == 0 {
			if _, err := cl.Mkdir(ctx, root, dirName, proto.Sattr{}); err != nil {
				return 0, fmt.Errorf("mkdir: %w", err)
			}
		}
		lk, err := cl.Lookup(ctx, root, dirName)
		if err != nil {
			return 0, err
		}
		sess = append(sess, session{cl, lk.FH})
	}
	data := bytes.Repeat([]byte("s"), c.fileSize)
	mode := uint32(0o644)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	t0 := time.Now()
	for i, se := range sess {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := i; n < c.files; n += conns {
				cr, err := se.cl.Create(ctx, se.dir, fmt.Sprintf("f%06d", n), proto.Guarded, proto.Sattr{Mode: &mode})
				if err == nil {
					_, err = se.cl.Write(ctx, cr.FH, 0, data, c.stable)
				}
				if err == nil {
					_, err = se.cl.Commit(ctx, cr.FH, 0, 0)
				}
				if err != nil {
					errs <- fmt.Errorf("file %d: %w", n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(c.files) / el.Seconds(), nil
}

// latencies measures single calls on one connection: NULL, GETATTR and
// LOOKUP of the export root, and the CREATE, WRITE (1 KiB, UNSTABLE) and
// COMMIT of new files; it returns each one's median in µs.
func latencies(ctx context.Context, s server) (map[string]float64, error) {
	mc, err := client.Dial(ctx, s.mountAddr())
	if err != nil {
		return nil, err
	}
	root, _, err := mc.WithAuth(client.Unix("bench", 0, 0)).Mount(ctx, s.exportPath())
	mc.Close()
	if err != nil {
		return nil, err
	}
	nc, err := client.Dial(ctx, s.nfsAddr())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	cl := nc.WithAuth(client.Unix("bench", 0, 0))
	if _, err := cl.Mkdir(ctx, root, "latency", proto.Sattr{}); err != nil {
		return nil, err
	}
	dir, err := cl.Lookup(ctx, root, "latency")
	if err != nil {
		return nil, err
	}
	const n = 1000
	samples := map[string][]float64{}
	timed := func(name string, f func() error) error {
		t0 := time.Now()
		err := f()
		samples[name] = append(samples[name], float64(time.Since(t0).Microseconds()))
		return err
	}
	data := make([]byte, 1024)
	for i := range n {
		var fh proto.FH
		steps := []struct {
			name string
			f    func() error
		}{
			{"NULL", func() error { return cl.Null(ctx, proto.ProgNFS, proto.VersNFS) }},
			{"GETATTR", func() error { _, err := cl.GetAttr(ctx, root); return err }},
			{"LOOKUP", func() error { _, err := cl.Lookup(ctx, root, "latency"); return err }},
			{"CREATE", func() error {
				r, err := cl.Create(ctx, dir.FH, fmt.Sprintf("l%06d", i), proto.Guarded, proto.Sattr{})
				fh = r.FH
				return err
			}},
			{"WRITE", func() error { _, err := cl.Write(ctx, fh, 0, data, proto.Unstable); return err }},
			{"COMMIT", func() error { _, err := cl.Commit(ctx, fh, 0, 0); return err }},
		}
		for _, st := range steps {
			if err := timed(st.name, st.f); err != nil {
				return nil, fmt.Errorf("%s: %w", st.name, err)
			}
		}
	}
	out := map[string]float64{}
	for name, v := range samples {
		slices.Sort(v)
		out[name] = v[len(v)/2]
	}
	return out, nil
}

func randomFile(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	r := rand.NewChaCha8([32]byte{1, 2, 3})
	if _, err := io.CopyN(f, r, n); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func fileSum(path string) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}

// regionfsServer runs `regionfs nfs serve` on a fresh data directory.
type regionfsServer struct {
	bin         string
	cacheWrites bool
	cmd         *exec.Cmd
	addr        string
	log         *os.File
}

func (r *regionfsServer) name() string { return "regionfs" }

func (r *regionfsServer) start(ctx context.Context, dir string) error {
	port, err := benchkit.FreePort()
	if err != nil {
		return err
	}
	r.addr = fmt.Sprintf("127.0.0.1:%d", port)
	if r.log, err = os.Create(filepath.Join(dir, "server.log")); err != nil {
		return err
	}
	args := []string{"nfs", "serve", "--data-dir", filepath.Join(dir, "data"), "--listen", r.addr, "--log-level", "warn"}
	if r.cacheWrites {
		args = append(args, "--cache-writes", "--block-cache-bytes", fmt.Sprint(3<<29))
	}
	r.cmd = exec.Command(r.bin, args...)
	benchkit.DieWithHarness(r.cmd)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		return err
	}
	return benchkit.WaitPort(r.addr, benchkit.CmdExited(r.cmd), 30*time.Second)
}

func (r *regionfsServer) stop() error {
	err := benchkit.StopProcess(r.cmd)
	r.log.Close()
	return err
}

// Files at the export root: libnfs sends MOUNT "/" for "//name" (an
// empty export path is refused by its auto-traverse logic).
func (r *regionfsServer) url(file string) string {
	return fmt.Sprintf("nfs://127.0.0.1//%s?nfsport=%s&mountport=%s", file, r.port(), r.port())
}
func (r *regionfsServer) port() string       { return r.addr[strings.LastIndex(r.addr, ":")+1:] }
func (r *regionfsServer) nfsAddr() string    { return r.addr }
func (r *regionfsServer) mountAddr() string  { return r.addr }
func (r *regionfsServer) exportPath() string { return "/" }
func (r *regionfsServer) pid() int           { return r.cmd.Process.Pid }

// ganeshaServer is nfs-ganesha exporting a fresh directory.
type ganeshaServer struct {
	benchkit.GaneshaServer
}

func (g *ganeshaServer) name() string                                { return "ganesha" }
func (g *ganeshaServer) start(ctx context.Context, dir string) error { return g.Start(ctx, dir) }
func (g *ganeshaServer) stop() error                                 { return g.Stop() }

func (g *ganeshaServer) url(file string) string {
	return fmt.Sprintf("nfs://127.0.0.1%s/%s?nfsport=%d&mountport=%d", g.Export(), file, g.NFSPort, g.MntPort)
}
func (g *ganeshaServer) nfsAddr() string    { return g.NFSAddr() }
func (g *ganeshaServer) mountAddr() string  { return g.MountAddr() }
func (g *ganeshaServer) exportPath() string { return g.Export() }
func (g *ganeshaServer) pid() int           { return g.PID() }
