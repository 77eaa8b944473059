// Command bench/mount compares file operations through `regionfs mount`
// (FUSE over regionfs's NFS client), with and without TLS, against
// baselines in the same run: nfs-ganesha mounted through the same FUSE
// client, go-fuse's passthrough (loopback) FUSE file system over a local
// directory, and the local directory itself. Each configuration gets a fresh
// data directory and mount; runs alternate the order. Benchmarks print
// numbers; they never pass or fail. See README.md.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/regionfs/regionfs/bench/internal/benchkit"
)

type config struct {
	dir   string
	bytes int64
	files int
	runs  int
	keep  bool
	only  string
}

func main() {
	// Re-executed as the passthrough FUSE baseline.
	if len(os.Args) == 4 && os.Args[1] == "-loopback" {
		if err := loopback(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "loopback:", err)
			os.Exit(1)
		}
		return
	}
	var c config
	flag.StringVar(&c.dir, "dir", os.TempDir(), "where data directories and mount points go")
	flag.Int64Var(&c.bytes, "bytes", 1<<30, "size of the sequential write/read file")
	flag.IntVar(&c.files, "files", 10000, "files in the cp -a tree")
	flag.IntVar(&c.runs, "runs", 2, "runs (the best of each figure is compared)")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary directory")
	flag.StringVar(&c.only, "only", "", "comma-separated configurations to run (default all)")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "bench/mount:", err)
		os.Exit(1)
	}
}

// target is one configuration: something mounted on a directory.
type target interface {
	name() string
	setup(ctx context.Context, dir string) (mnt string, err error)
	teardown() error
	// pids are the processes serving the mount (the NFS server and the
	// FUSE client; none for the local directory), whose CPU time is
	// counted around each workload.
	pids() []int
}

// result is one run of the workloads on a target: the figures, and the
// CPU seconds its processes spent in each (on a shared machine the wall
// clock follows the other load; the CPU a workload costs varies less,
// and is what TLS adds to).
type result struct {
	cpSec, writeMBs, readMBs float64
	cpCPU, writeCPU, readCPU float64
	// cpSwitches is the context switches of the processes per copied
	// file: what a small file's round trips cost in hand-offs between
	// threads, which on a virtual machine cost more than the work.
	cpSwitches float64
}

func run(c config) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Geteuid() != 0 {
		return errors.New("run as root (FUSE mounts, nfs-ganesha, dropping the page cache)")
	}
	tmp, err := os.MkdirTemp(c.dir, "bench-mount-")
	if err != nil {
		return err
	}
	if !c.keep {
		defer os.RemoveAll(tmp)
	}
	bin := filepath.Join(tmp, "regionfs")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/regionfs").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v %s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// Sources live in /dev/shm so that reading them costs nothing.
	srcDir, err := os.MkdirTemp("/dev/shm", "bench-mount-src-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(srcDir)
	if err := makeTree(filepath.Join(srcDir, "tree"), c.files); err != nil {
		return err
	}
	big := filepath.Join(srcDir, "big.bin")
	if err := randomFile(big, c.bytes); err != nil {
		return err
	}
	targets := []target{
		&regionfsTarget{bin: bin},
		&regionfsTarget{bin: bin, tls: true},
	}
	if _, err := exec.LookPath("ganesha.nfsd"); err == nil {
		targets = append(targets, &ganeshaTarget{bin: bin})
	} else {
		fmt.Println("nfs-ganesha not installed (apt-get install nfs-ganesha nfs-ganesha-vfs rpcbind): its row is left out")
	}
	targets = append(targets, &loopbackTarget{self: self}, &localTarget{})
	if c.only != "" {
		keep := strings.Split(c.only, ",")
		targets = slices.DeleteFunc(targets, func(t target) bool { return !slices.Contains(keep, t.name()) })
	}
	rb := &benchkit.Rpcbind{}
	defer rb.Stop()
	for _, t := range targets {
		if _, ok := t.(*ganeshaTarget); ok {
			if err := rb.Start(tmp); err != nil {
				return err
			}
		}
	}
	fmt.Printf("bench/mount: cp -a of %d files, %d MiB sequential write (dd bs=1M conv=fsync) and read (cold cache), %d runs\n",
		c.files, c.bytes>>20, c.runs)
	best := map[string]result{}
	for r := range c.runs {
		order := slices.Clone(targets)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, t := range order {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			dir := filepath.Join(tmp, fmt.Sprintf("%s-%d", t.name(), r))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			mnt, err := t.setup(ctx, dir)
			if err != nil {
				t.teardown()
				return fmt.Errorf("%s: %w", t.name(), err)
			}
			res, err := workloads(mnt, srcDir, big, c.bytes, c.files, t.pids())
			terr := t.teardown()
			if err != nil {
				return fmt.Errorf("%s: %w", t.name(), err)
			}
			if terr != nil {
				return fmt.Errorf("%s teardown: %w", t.name(), terr)
			}
			fmt.Printf("  run %d %-14s cp -a %7.2f s   write %7.1f MB/s   read %7.1f MB/s   CPU s cp -a %6.2f  write %5.2f  read %5.2f   switches/file %5.1f\n",
				r+1, t.name(), res.cpSec, res.writeMBs, res.readMBs, res.cpCPU, res.writeCPU, res.readCPU, res.cpSwitches)
			b, ok := best[t.name()]
			if !ok {
				b = res
			}
			b.cpSec = min(b.cpSec, res.cpSec)
			b.writeMBs = max(b.writeMBs, res.writeMBs)
			b.readMBs = max(b.readMBs, res.readMBs)
			b.cpCPU = min(b.cpCPU, res.cpCPU)
			b.writeCPU = min(b.writeCPU, res.writeCPU)
			b.readCPU = min(b.readCPU, res.readCPU)
			b.cpSwitches = min(b.cpSwitches, res.cpSwitches)
			best[t.name()] = b
		}
	}
	fmt.Printf("\nbest of %d runs                cp -a (s)   write MB/s   read MB/s   CPU s: cp -a   write    read   switches/file\n", c.runs)
	for _, t := range targets {
		b := best[t.name()]
		fmt.Printf("  %-26s %9.2f   %10.1f   %9.1f   %13.2f  %6.2f  %6.2f   %13.1f\n", t.name(), b.cpSec, b.writeMBs, b.readMBs, b.cpCPU, b.writeCPU, b.readCPU, b.cpSwitches)
	}
	plain, okP := best["regionfs"]
	if tlsR, ok := best["regionfs-tls"]; ok && okP {
		fmt.Printf("\nTLS cost (regionfs-tls vs regionfs; goal <= 15%%): cp -a %+.0f%%, write %+.0f%%, read %+.0f%%\n",
			100*(tlsR.cpSec/plain.cpSec-1), 100*(1-tlsR.writeMBs/plain.writeMBs), 100*(1-tlsR.readMBs/plain.readMBs))
		fmt.Printf("TLS CPU (server and mount CPU seconds, regionfs-tls vs regionfs): cp -a %+.0f%%, write %+.0f%%, read %+.0f%%\n",
			100*(tlsR.cpCPU/plain.cpCPU-1), 100*(tlsR.writeCPU/plain.writeCPU-1), 100*(tlsR.readCPU/plain.readCPU-1))
	}
	if g, ok := best["ganesha-fuse"]; ok && okP {
		fmt.Printf("regionfs / ganesha through the same FUSE client (goal >= 1.0x): cp -a %.2fx (time ratio inverted), write %.2fx, read %.2fx\n",
			g.cpSec/plain.cpSec, plain.writeMBs/g.writeMBs, plain.readMBs/g.readMBs)
	}
	return nil
}

// workloads runs cp -a (of a tree of files files), the sequential write
// and the cold read on mnt, counting the CPU time of pids in each and
// their context switches in cp -a.
func workloads(mnt, srcDir, big string, size int64, files int, pids []int) (result, error) {
	var r result
	cpu := func() float64 {
		s, _ := cpuSeconds(pids) // a process gone shows as a failed workload
		return s
	}
	sh := func(name string, args ...string) error {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %v: %v %s", name, args, err, out)
		}
		return nil
	}
	dropCaches := func() error {
		if err := sh("sync"); err != nil {
			return err
		}
		return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o644)
	}
	if err := dropCaches(); err != nil {
		return r, err
	}
	s0, c0, t0 := switches(pids), cpu(), time.Now()
	if err := sh("cp", "-a", filepath.Join(srcDir, "tree"), filepath.Join(mnt, "tree")); err != nil {
		return r, err
	}
	if err := sh("sync", "-f", filepath.Join(mnt, "tree")); err != nil {
		return r, err
	}
	r.cpSec, r.cpCPU = time.Since(t0).Seconds(), cpu()-c0
	r.cpSwitches = float64(switches(pids)-s0) / float64(max(files, 1))
	if err := dropCaches(); err != nil {
		return r, err
	}
	dst := filepath.Join(mnt, "big.bin")
	c0, t0 = cpu(), time.Now()
	if err := sh("dd", "if="+big, "of="+dst, "bs=1M", "conv=fsync", "status=none"); err != nil {
		return r, err
	}
	r.writeMBs, r.writeCPU = float64(size)/time.Since(t0).Seconds()/1e6, cpu()-c0
	if err := dropCaches(); err != nil {
		return r, err
	}
	c0, t0 = cpu(), time.Now()
	if err := sh("dd", "if="+dst, "of=/dev/null", "bs=1M", "status=none"); err != nil {
		return r, err
	}
	r.readMBs, r.readCPU = float64(size)/time.Since(t0).Seconds()/1e6, cpu()-c0
	if err := sh("cmp", big, dst); err != nil {
		return r, fmt.Errorf("read back differs: %w", err)
	}
	return r, nil
}

// clockTicks is the unit of the times in /proc/PID/stat (USER_HZ, 100 on
// Linux).
const clockTicks = 100

// cpuSeconds is the user and system CPU time the processes have used.
func cpuSeconds(pids []int) (float64, error) {
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		// Fields after the command (which may hold spaces) in parentheses;
		// utime and stime are fields 14 and 15 of the line.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 13 {
			return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
		}
		for _, x := range f[11:13] {
			n, err := strconv.ParseInt(x, 10, 64)
			if err != nil {
				return 0, err
			}
			ticks += n
		}
	}
	return float64(ticks) / clockTicks, nil
}

// switches is the context switches (voluntary and not) of the processes'
// threads so far, from /proc/PID/task/TID/status. A thread that ended is
// no longer counted; Go's threads and nfs-ganesha's are kept while they
// serve, so between two reads of a workload the difference is the
// workload's (an unreadable process counts nothing, as in cpuSeconds).
func switches(pids []int) int64 {
	var n int64
	for _, pid := range pids {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue // the thread ended meanwhile
			}
			for line := range strings.Lines(string(b)) {
				k, v, ok := strings.Cut(line, ":")
				if ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
					x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					n += x
				}
			}
		}
	}
	return n
}

// makeTree writes n small files (100 B to 8 KiB) in 100 directories.
func makeTree(root string, n int) error {
	buf := make([]byte, 8192)
	for i := range n {
		d := filepath.Join(root, fmt.Sprintf("d%02d", i%100))
		if i < 100 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		size := 100 + (i*7919)%8092
		rand.Read(buf[:size])
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%05d", i)), buf[:size], 0o644); err != nil {
			return err
		}
	}
	return nil
}

func randomFile(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyN(f, rand.Reader, n)
	return err
}

// regionfsTarget is `regionfs nfs serve` mounted with `regionfs mount`.
type regionfsTarget struct {
	bin    string
	tls    bool
	srv    *exec.Cmd
	mnt    string
	client int // the FUSE client's pid
}

func (t *regionfsTarget) name() string {
	if t.tls {
		return "regionfs-tls"
	}
	return "regionfs"
}

func (t *regionfsTarget) setup(ctx context.Context, dir string) (string, error) {
	port, err := benchkit.FreePort()
	if err != nil {
		return "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"nfs", "serve", "--data-dir", filepath.Join(dir, "data"), "--listen", addr, "--log-level", "warn"}
	if t.tls {
		args = append(args, "--tls-dir", filepath.Join(dir, "tls"))
	}
	t.srv = exec.Command(t.bin, args...)
	benchkit.DieWithHarness(t.srv)
	log, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return "", err
	}
	t.srv.Stdout, t.srv.Stderr = log, log
	if err := t.srv.Start(); err != nil {
		return "", err
	}
	if err := benchkit.WaitPort(addr, benchkit.CmdExited(t.srv), 30*time.Second); err != nil {
		return "", err
	}
	t.mnt = filepath.Join(dir, "mnt")
	margs := []string{"mount", "--nfs-addr", addr, "--log-file", filepath.Join(dir, "client.log")}
	if t.tls {
		margs = append(margs, "--tls", "--ca-file", filepath.Join(dir, "tls", "ca.pem"))
	}
	t.client, err = fuseMount(t.bin, t.mnt, append(margs, "/", t.mnt))
	return t.mnt, err
}

func (t *regionfsTarget) teardown() error {
	return errors.Join(fuseUnmount(t.mnt), benchkit.StopProcess(t.srv))
}

func (t *regionfsTarget) pids() []int { return []int{t.srv.Process.Pid, t.client} }

// fuseMount runs `regionfs mount` and returns the pid of the client it
// left serving the mount (from what it prints: "(client pid N, …").
func fuseMount(bin, mnt string, args []string) (int, error) {
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return 0, err
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("regionfs mount: %v %s", err, out)
	}
	_, rest, ok := strings.Cut(string(out), "client pid ")
	pid, perr := strconv.Atoi(strings.TrimRight(strings.Fields(rest + " x")[0], ",)"))
	if !ok || perr != nil {
		return 0, fmt.Errorf("regionfs mount: no client pid in %q", out)
	}
	return pid, nil
}

func fuseUnmount(mnt string) error {
	if mnt == "" {
		return nil
	}
	for range 50 {
		err := syscall.Unmount(mnt, 0)
		if err == nil || errors.Is(err, syscall.EINVAL) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return syscall.Unmount(mnt, syscall.MNT_DETACH)
}

// ganeshaTarget is nfs-ganesha (VFS FSAL) mounted with `regionfs mount`.
type ganeshaTarget struct {
	bin    string
	g      benchkit.GaneshaServer
	mnt    string
	client int
}

func (t *ganeshaTarget) name() string { return "ganesha-fuse" }

func (t *ganeshaTarget) setup(ctx context.Context, dir string) (string, error) {
	if err := t.g.Start(ctx, dir); err != nil {
		return "", err
	}
	t.mnt = filepath.Join(dir, "mnt")
	var err error
	t.client, err = fuseMount(t.bin, t.mnt, []string{"mount", "--nfs-addr", t.g.NFSAddr(), "--mount-port", strconv.Itoa(t.g.MntPort),
		"--log-file", filepath.Join(dir, "client.log"), t.g.Export(), t.mnt})
	return t.mnt, err
}

func (t *ganeshaTarget) pids() []int { return []int{t.g.PID(), t.client} }

func (t *ganeshaTarget) teardown() error {
	return errors.Join(fuseUnmount(t.mnt), t.g.Stop())
}

// loopbackTarget is go-fuse's passthrough file system over a local
// directory, in a child process (this one runs cp and dd against it).
type loopbackTarget struct {
	self string
	cmd  *exec.Cmd
	mnt  string
}

func (t *loopbackTarget) name() string { return "passthrough-fuse" }

func (t *loopbackTarget) setup(ctx context.Context, dir string) (string, error) {
	src, mnt := filepath.Join(dir, "backing"), filepath.Join(dir, "mnt")
	for _, d := range []string{src, mnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	t.cmd = exec.Command(t.self, "-loopback", src, mnt)
	t.cmd.Stderr = os.Stderr
	if err := t.cmd.Start(); err != nil {
		return "", err
	}
	t.mnt = mnt
	deadline := time.Now().Add(20 * time.Second)
	for !mounted(mnt) {
		if time.Now().After(deadline) {
			return "", errors.New("passthrough mount did not appear")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return mnt, nil
}

func (t *loopbackTarget) pids() []int { return []int{t.cmd.Process.Pid} }

func (t *loopbackTarget) teardown() error {
	err := fuseUnmount(t.mnt)
	if t.cmd != nil {
		t.cmd.Wait()
	}
	return err
}

func mounted(dir string) bool {
	b, _ := os.ReadFile("/proc/self/mounts")
	return strings.Contains(string(b), " "+dir+" ")
}

// loopback serves go-fuse's passthrough file system until unmounted.
func loopback(src, mnt string) error {
	root, err := fs.NewLoopbackRoot(src)
	if err != nil {
		return err
	}
	srv, err := fs.Mount(mnt, root, &fs.Options{MountOptions: gofuse.MountOptions{
		AllowOther: true, Name: "passthrough", MaxWrite: 1 << 20, DirectMount: true,
	}})
	if err != nil {
		return err
	}
	srv.Wait()
	return nil
}

// localTarget is the local directory, for scale.
type localTarget struct{}

func (localTarget) name() string { return "local-dir" }
func (localTarget) setup(_ context.Context, dir string) (string, error) {
	d := filepath.Join(dir, "local")
	return d, os.MkdirAll(d, 0o755)
}
func (localTarget) teardown() error { return nil }
func (localTarget) pids() []int     { return nil }
