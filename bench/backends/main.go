// Command backends compares regionfs's scale-out backends (metadata in
// PostgreSQL, blocks in an S3-compatible object store, both started by
// scripts/backends.sh) with the embedded ones (Pebble, block files) in one
// run: small-file creates, a 1 GiB sequential write and read over NFS,
// the initial sync of what was written, and replication lag of single
// small files. Each backend runs under `regionfs dev` (fixed loopback
// addresses: run it under the ports lock). See README.md.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
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

type options struct {
	dir, bin       string
	modes          []string
	files, conns   int
	bytes          int64
	probes         int
	keep           bool
	backendsScript string
}

type result struct {
	mode                   string
	createsPerSec          float64
	writeMBs, readMBs      float64
	syncSeconds            float64
	lagP50, lagP90, lagMax time.Duration
}

func main() {
	var o options
	var modes string
	flag.StringVar(&o.dir, "dir", os.TempDir(), "scratch directory (backends, data directories)")
	flag.StringVar(&o.bin, "bin", "", "regionfs binary (default: go build ./cmd/regionfs)")
	flag.StringVar(&modes, "modes", "embedded,postgres+s3", "backends to measure, in order")
	flag.IntVar(&o.files, "files", 4000, "small files (4 KiB) created")
	flag.IntVar(&o.conns, "conns", 8, "NFS connections creating files")
	flag.Int64Var(&o.bytes, "bytes", 1<<30, "bytes of the sequential write and read")
	flag.IntVar(&o.probes, "probes", 40, "replication lag probes (one small file each)")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory and leave the backends running")
	flag.StringVar(&o.backendsScript, "backends", "scripts/backends.sh", "the backends script")
	flag.Parse()
	o.modes = strings.Split(modes, ",")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/backends:", err)
		os.Exit(1)
	}
}

func logf(f string, a ...any) { fmt.Printf(f+"\n", a...) }

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp(o.dir, "rfs-bench-backends-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	if o.bin == "" {
		o.bin = filepath.Join(dir, "regionfs")
		if out, err := exec.Command("go", "build", "-o", o.bin, "./cmd/regionfs").CombinedOutput(); err != nil {
			return fmt.Errorf("build: %v\n%s", err, out)
		}
	}
	var results []result
	var beEnv map[string]string
	for _, m := range o.modes {
		var flags []string
		switch m {
		case "embedded":
		case "postgres+s3":
			if beEnv == nil {
				t0 := time.Now()
				out, err := exec.Command(o.backendsScript, "up", filepath.Join(dir, "backends")).Output()
				if err != nil {
					return fmt.Errorf("backends up: %w", err)
				}
				beEnv = parseAssignments(string(out))
				logf("backends (PostgreSQL, S3) up in %v", time.Since(t0).Round(time.Millisecond))
				if !o.keep {
					defer exec.Command(o.backendsScript, "down", filepath.Join(dir, "backends")).Run()
				}
			}
			flags = []string{"--metadata-url", beEnv["REGIONFS_DEV_METADATA_URL"], "--blocks-url", beEnv["REGIONFS_DEV_BLOCKS_URL"]}
		default:
			return fmt.Errorf("unknown mode %q (embedded, postgres+s3)", m)
		}
		r, err := measure(ctx, o, m, filepath.Join(dir, strings.ReplaceAll(m, "+", "-")), flags)
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		results = append(results, r)
	}
	summary(o, results)
	return nil
}

func parseAssignments(s string) map[string]string {
	env := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimPrefix(strings.TrimSpace(l), "export ")
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		env[k] = strings.Trim(v, `'"`)
	}
	return env
}

// dev is a running `regionfs dev` and the aws CLI environment for it.
type dev struct {
	cmd *exec.Cmd
	env []string
	log *os.File
}

func startDev(ctx context.Context, bin, dataDir string, flags []string) (*dev, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, err
	}
	lf, err := os.Create(filepath.Join(dataDir, "..", filepath.Base(dataDir)+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"dev", "--data-dir", dataDir, "--log-level", "warn"}, flags...)...)
	benchkit.DieWithHarness(cmd)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &dev{cmd: cmd, log: lf}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(120 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(dataDir, "env.sh")); err == nil {
			d.env = os.Environ()
			for k, v := range parseAssignments(string(b)) {
				d.env = append(d.env, k+"="+v)
			}
			d.env = append(d.env, "AWS_PAGER=")
			go func() { <-exited }()
			return d, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("regionfs dev exited: %v (log %s)", err, lf.Name())
		case <-ctx.Done():
			d.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, errors.New("regionfs dev did not start in 120 s")
		}
	}
}

func (d *dev) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for d.cmd.ProcessState == nil {
			time.Sleep(50 * time.Millisecond)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
	}
	d.log.Close()
}

// aws runs the aws CLI against the dev edge and decodes its JSON output.
func (d *dev) aws(ctx context.Context, out any, args ...string) error {
	cmd := exec.CommandContext(ctx, "aws", append(args, "--output", "json")...)
	cmd.Env = d.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("aws %s: %v: %s", strings.Join(args[:2], " "), err, strings.TrimSpace(stderr.String()))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (d *dev) poll(ctx context.Context, what string, timeout time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// mountTarget creates a mount target for fs in region and returns its
// address once available.
func (d *dev) mountTarget(ctx context.Context, region, fs string) (string, error) {
	var subnets struct{ Subnets []struct{ SubnetId string } }
	var sgs struct{ SecurityGroups []struct{ GroupId string } }
	if err := d.aws(ctx, &subnets, "ec2", "describe-subnets", "--region", region); err != nil {
		return "", err
	}
	if err := d.aws(ctx, &sgs, "ec2", "describe-security-groups", "--region", region); err != nil {
		return "", err
	}
	var mt struct{ MountTargetId, IpAddress string }
	if err := d.aws(ctx, &mt, "efs", "create-mount-target", "--region", region, "--file-system-id", fs,
		"--subnet-id", subnets.Subnets[0].SubnetId, "--security-groups", sgs.SecurityGroups[0].GroupId); err != nil {
		return "", err
	}
	err := d.poll(ctx, "mount target", 60*time.Second, func() (bool, error) {
		var o struct {
			MountTargets []struct{ LifeCycleState string }
		}
		if err := d.aws(ctx, &o, "efs", "describe-mount-targets", "--region", region, "--mount-target-id", mt.MountTargetId); err != nil {
			return false, err
		}
		return len(o.MountTargets) == 1 && o.MountTargets[0].LifeCycleState == "available", nil
	})
	return mt.IpAddress, err
}

var auth = client.Unix("bench", 0, 0)

type session struct {
	conn *client.Conn
	c    *client.Client
	root proto.FH
}

func dial(ctx context.Context, ip string) (*session, error) {
	addr := ip + ":12049"
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := client.Dial(ctx, addr)
		if err == nil {
			c := conn.WithAuth(auth)
			root, _, err := c.Mount(ctx, "/")
			if err == nil {
				return &session{conn: conn, c: c, root: root}, nil
			}
			conn.Close()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *session) create(ctx context.Context, dir proto.FH, name string, data []byte) (proto.FH, error) {
	r, err := s.c.Create(ctx, dir, name, proto.Unchecked, proto.Sattr{})
	if err != nil {
		return proto.FH{}, fmt.Errorf("create %s: %w", name, err)
	}
	if len(data) > 0 {
		if _, err := s.c.Write(ctx, r.FH, 0, data, proto.FileSync); err != nil {
			return proto.FH{}, fmt.Errorf("write %s: %w", name, err)
		}
	}
	return r.FH, nil
}

func measure(ctx context.Context, o options, mode, dir string, flags []string) (result, error) {
	res := result{mode: mode}
	logf("== %s", mode)
	d, err := startDev(ctx, o.bin, filepath.Join(dir, "data"), flags)
	if err != nil {
		return res, err
	}
	defer d.stop()
	var fs struct{ FileSystemId string }
	if err := d.aws(ctx, &fs, "efs", "create-file-system", "--creation-token", "bench-"+mode); err != nil {
		return res, err
	}
	if err := d.poll(ctx, "file system", 60*time.Second, func() (bool, error) {
		var o struct {
			FileSystems []struct{ LifeCycleState string }
		}
		err := d.aws(ctx, &o, "efs", "describe-file-systems", "--file-system-id", fs.FileSystemId)
		return err == nil && len(o.FileSystems) == 1 && o.FileSystems[0].LifeCycleState == "available", err
	}); err != nil {
		return res, err
	}
	ip, err := d.mountTarget(ctx, "us-east-1", fs.FileSystemId)
	if err != nil {
		return res, err
	}

	// Creates: o.conns connections, each in its own directory.
	sessions := make([]*session, o.conns)
	dirs := make([]proto.FH, o.conns)
	for i := range sessions {
		if sessions[i], err = dial(ctx, ip); err != nil {
			return res, err
		}
		defer sessions[i].conn.Close()
		r, err := sessions[i].c.Mkdir(ctx, sessions[i].root, fmt.Sprintf("d%d", i), proto.Sattr{})
		if err != nil {
			return res, err
		}
		dirs[i] = r.FH
	}
	small := bytes.Repeat([]byte("regionfs"), 512)
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, o.conns)
	for i := range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < o.files; j += o.conns {
				if _, err := sessions[i].create(ctx, dirs[i], fmt.Sprintf("f%06d", j), small); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return res, err
	}
	res.createsPerSec = float64(o.files) / time.Since(t0).Seconds()
	logf("creates: %d files of 4 KiB over %d connections: %.0f files/s", o.files, o.conns, res.createsPerSec)

	// 1 GiB: written in 1 MiB UNSTABLE WRITEs, 8 in flight, then COMMIT;
	// read back in 1 MiB READs, 4 in flight, and checked.
	s := sessions[0]
	fh, err := s.create(ctx, s.root, "big", nil)
	if err != nil {
		return res, err
	}
	const chunk = 1 << 20
	fill := func(off int64, b []byte) {
		r := rand.New(rand.NewPCG(uint64(off), 42))
		for i := 0; i+8 <= len(b); i += 8 {
			v := r.Uint64()
			for k := range 8 {
				b[i+k] = byte(v >> (8 * k))
			}
		}
	}
	want := sha256.New()
	t0 = time.Now()
	if err := parallel(ctx, o.bytes, chunk, 8, func(off int64) error {
		b := make([]byte, min(chunk, o.bytes-off))
		fill(off, b)
		_, err := s.c.Write(ctx, fh, uint64(off), b, proto.Unstable)
		return err
	}); err != nil {
		return res, fmt.Errorf("write: %w", err)
	}
	if _, err := s.c.Commit(ctx, fh, 0, 0); err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	res.writeMBs = float64(o.bytes) / (1 << 20) / time.Since(t0).Seconds()
	logf("write: %d MiB in 1 MiB WRITEs (8 in flight) + COMMIT: %.0f MiB/s", o.bytes>>20, res.writeMBs)
	for off := int64(0); off < o.bytes; off += chunk {
		b := make([]byte, min(chunk, o.bytes-off))
		fill(off, b)
		want.Write(b)
	}
	got := make([][]byte, (o.bytes+chunk-1)/chunk)
	t0 = time.Now()
	if err := parallel(ctx, o.bytes, chunk, 4, func(off int64) error {
		r, err := s.c.Read(ctx, fh, uint64(off), uint32(min(chunk, o.bytes-off)))
		if err == nil {
			got[off/chunk] = r.Data
		}
		return err
	}); err != nil {
		return res, fmt.Errorf("read: %w", err)
	}
	res.readMBs = float64(o.bytes) / (1 << 20) / time.Since(t0).Seconds()
	h := sha256.New()
	for _, b := range got {
		h.Write(b)
	}
	if !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
		return res, errors.New("read back differs from what was written")
	}
	logf("read: %d MiB in 1 MiB READs (4 in flight), checked: %.0f MiB/s", o.bytes>>20, res.readMBs)

	// Replication: initial sync of all of the above, then lag probes.
	t0 = time.Now()
	if err := d.aws(ctx, nil, "efs", "create-replication-configuration", "--source-file-system-id", fs.FileSystemId,
		"--destinations", `[{"Region":"us-west-2"}]`); err != nil {
		return res, err
	}
	var dst string
	if err := d.poll(ctx, "replication ENABLED", 30*time.Minute, func() (bool, error) {
		var o struct {
			Replications []struct {
				Destinations []struct{ Status, FileSystemId string }
			}
		}
		if err := d.aws(ctx, &o, "efs", "describe-replication-configurations", "--file-system-id", fs.FileSystemId); err != nil {
			return false, err
		}
		if len(o.Replications) == 1 && len(o.Replications[0].Destinations) == 1 && o.Replications[0].Destinations[0].Status == "ENABLED" {
			dst = o.Replications[0].Destinations[0].FileSystemId
			return true, nil
		}
		return false, nil
	}); err != nil {
		return res, err
	}
	res.syncSeconds = time.Since(t0).Seconds()
	logf("initial sync (%d files + %d MiB) until ENABLED: %.1f s", o.files, o.bytes>>20, res.syncSeconds)
	dip, err := d.mountTarget(ctx, "us-west-2", dst)
	if err != nil {
		return res, err
	}
	rs, err := dial(ctx, dip)
	if err != nil {
		return res, err
	}
	defer rs.conn.Close()
	var lags []time.Duration
	for i := range o.probes {
		name := fmt.Sprintf("probe%03d", i)
		if _, err := s.create(ctx, s.root, name, small); err != nil {
			return res, err
		}
		t0 := time.Now()
		for {
			if _, err := rs.c.Lookup(ctx, rs.root, name); err == nil {
				break
			}
			if time.Since(t0) > time.Minute {
				return res, fmt.Errorf("probe %s not replicated after a minute", name)
			}
			time.Sleep(2 * time.Millisecond)
		}
		lags = append(lags, time.Since(t0))
		time.Sleep(100 * time.Millisecond)
	}
	slices.Sort(lags)
	res.lagP50, res.lagP90, res.lagMax = lags[len(lags)/2], lags[len(lags)*9/10], lags[len(lags)-1]
	logf("replication lag of a 4 KiB file (%d probes): p50 %v, p90 %v, max %v", o.probes,
		res.lagP50.Round(time.Millisecond), res.lagP90.Round(time.Millisecond), res.lagMax.Round(time.Millisecond))
	return res, nil
}

// parallel calls f for every chunk offset of [0, size), inflight at a time.
func parallel(ctx context.Context, size, chunk int64, inflight int, f func(off int64) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	offs := make(chan int64)
	errs := make(chan error, inflight)
	for range inflight {
		go func() {
			var first error
			for off := range offs {
				if first == nil {
					if first = f(off); first != nil {
						cancel()
					}
				}
			}
			errs <- first
		}()
	}
feed:
	for off := int64(0); off < size; off += chunk {
		select {
		case offs <- off:
		case <-ctx.Done():
			break feed
		}
	}
	close(offs)
	var first error
	for range inflight {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func summary(o options, rs []result) {
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "\n%-34s", "metric")
	for _, r := range rs {
		fmt.Fprintf(w, " %14s", r.mode)
	}
	if len(rs) == 2 {
		fmt.Fprintf(w, " %8s", "ratio")
	}
	fmt.Fprintln(w)
	row := func(name string, f func(result) float64, format string) {
		fmt.Fprintf(w, "%-34s", name)
		for _, r := range rs {
			fmt.Fprintf(w, " %14s", fmt.Sprintf(format, f(r)))
		}
		if len(rs) == 2 && f(rs[0]) != 0 {
			fmt.Fprintf(w, " %7.2fx", f(rs[1])/f(rs[0]))
		}
		fmt.Fprintln(w)
	}
	row(fmt.Sprintf("creates (files/s, %d conns)", o.conns), func(r result) float64 { return r.createsPerSec }, "%.0f")
	row(fmt.Sprintf("write %d MiB (MiB/s)", o.bytes>>20), func(r result) float64 { return r.writeMBs }, "%.0f")
	row(fmt.Sprintf("read %d MiB (MiB/s)", o.bytes>>20), func(r result) float64 { return r.readMBs }, "%.0f")
	row("initial sync until ENABLED (s)", func(r result) float64 { return r.syncSeconds }, "%.1f")
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	row("replication lag p50 (ms)", func(r result) float64 { return ms(r.lagP50) }, "%.1f")
	row("replication lag p90 (ms)", func(r result) float64 { return ms(r.lagP90) }, "%.1f")
	row("replication lag max (ms)", func(r result) float64 { return ms(r.lagMax) }, "%.1f")
}
