package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/regionfs/regionfs/bench/internal/benchkit"
)

// procs owns every process the harness starts and stops them, newest
// first, by their own pid.
type procs struct {
	mu   sync.Mutex
	list []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string
}

// start runs name with args, output to logPath.
func (p *procs) start(name, logPath string, argv ...string) (*proc, error) {
	return p.startEnv(name, logPath, nil, argv...)
}

// startEnv is start with env added to the harness's environment.
func (p *procs) startEnv(name, logPath string, env []string, argv ...string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	benchkit.DieWithHarness(cmd)
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	pr := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		pr.err = cmd.Wait()
		lf.Close()
		close(pr.done)
	}()
	p.mu.Lock()
	p.list = append(p.list, pr)
	p.mu.Unlock()
	return pr, nil
}

func (pr *proc) exited() bool {
	select {
	case <-pr.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process (and its process group, which holds
// only what it started itself), then SIGKILL after d.
func (pr *proc) stop(d time.Duration) error {
	if pr.exited() {
		return nil
	}
	pid := pr.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-pr.done:
		return nil
	case <-time.After(d):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-pr.done
		return fmt.Errorf("%s (pid %d) did not stop within %s of SIGTERM", pr.name, pid, d)
	}
}

// stopAll stops every process still running, newest first.
func (p *procs) stopAll() error {
	p.mu.Lock()
	list := p.list
	p.list = nil
	p.mu.Unlock()
	var errs []error
	for i := len(list) - 1; i >= 0; i-- {
		if err := list[i].stop(30 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// tail returns the last lines of a process's log.
func (pr *proc) tail(n int) string {
	b, _ := os.ReadFile(pr.log)
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// waitPort waits until something accepts on addr.
func waitPort(addr string, pr *proc, d time.Duration) error {
	return benchkit.WaitPort(addr, pr.exitErr, d)
}

// exitErr says why the process ended, nil while it runs (or for nil).
func (pr *proc) exitErr() error {
	if pr != nil && pr.exited() {
		return fmt.Errorf("%s exited: %v\n%s", pr.name, pr.err, pr.tail(20))
	}
	return nil
}

// startRpcbind starts the portmapper nfs-ganesha registers with, unless
// one answers already.
func startRpcbind(p *procs, tmp string) error {
	if benchkit.Listening("127.0.0.1:111") {
		return nil
	}
	pr, err := p.start("rpcbind", filepath.Join(tmp, "rpcbind.log"), "rpcbind", "-f", "-w")
	if err != nil {
		return err
	}
	return waitPort("127.0.0.1:111", pr, 10*time.Second)
}

// ganesha is nfs-ganesha (VFS FSAL) exporting two directories, the
// baseline's source and replica, over NFSv3/TCP on loopback.
type ganesha struct {
	benchkit.Ganesha
	src, dst string
}

// ganeshaNoCache: the replica directory changes behind ganesha's back
// (rsync writes it): without these, ganesha's metadata cache answers
// LOOKUP from a stale directory for up to a minute.
const ganeshaNoCache = `MDCACHE { Dir_Chunk = 0; }
EXPORT_DEFAULTS { Attr_Expiration_Time = 0; }
`

func startGanesha(ctx context.Context, p *procs, dir string) (*ganesha, error) {
	g := &ganesha{src: filepath.Join(dir, "source"), dst: filepath.Join(dir, "replica")}
	g.Exports = []benchkit.Export{{Pseudo: "/source", Path: g.src}, {Pseudo: "/replica", Path: g.dst}}
	g.Extra = ganeshaNoCache
	argv, err := g.Prepare(dir)
	if err != nil {
		return nil, err
	}
	pr, err := p.start("ganesha.nfsd", filepath.Join(dir, "ganesha.out"), argv...)
	if err != nil {
		return nil, err
	}
	if err := g.Ready(ctx, pr.exitErr); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *ganesha) source() target {
	return target{name: "ganesha source", nfsAddr: g.NFSAddr(), mountAddr: g.MountAddr(), export: g.src}
}

func (g *ganesha) replica() target {
	return target{name: "ganesha replica", nfsAddr: g.NFSAddr(), mountAddr: g.MountAddr(), export: g.dst}
}

// startLsyncd mirrors src into dst with lsyncd (default.rsync, archive,
// delay 0) and waits for its startup sync.
func startLsyncd(p *procs, dir, src, dst string) (*proc, error) {
	conf := filepath.Join(dir, "lsyncd.lua")
	logf := filepath.Join(dir, "lsyncd.log")
	lua := fmt.Sprintf(`settings {
    logfile        = %q,
    statusFile     = %q,
    statusInterval = 5,
    nodaemon       = true,
}
sync {
    default.rsync,
    source = %q,
    target = %q,
    delay  = 0,
    rsync  = { archive = true },
}
`, logf, filepath.Join(dir, "lsyncd.status"), src+"/", dst+"/")
	if err := os.WriteFile(conf, []byte(lua), 0o644); err != nil {
		return nil, err
	}
	pr, err := p.start("lsyncd", filepath.Join(dir, "lsyncd.out"), "lsyncd", conf)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(logf)
		if strings.Contains(string(b), "finished") && strings.Contains(string(b), "Startup") {
			return pr, nil
		}
		if pr.exited() {
			return nil, fmt.Errorf("lsyncd exited: %v\n%s\n%s", pr.err, pr.tail(20), b)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lsyncd startup not finished after 60 s:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rsyncd is an rsync daemon on loopback with one module, "dst".
type rsyncd struct {
	port int
	path string
}

func startRsyncd(p *procs, dir string) (*rsyncd, error) {
	r := &rsyncd{path: filepath.Join(dir, "dst")}
	var err error
	if r.port, err = benchkit.FreePort(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(r.path, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "rsyncd.conf")
	c := fmt.Sprintf(`pid file = %s
address = 127.0.0.1
port = %d
use chroot = no
log file = %s
[dst]
    path = %s
    read only = no
    uid = root
    gid = root
`, filepath.Join(dir, "rsyncd.pid"), r.port, filepath.Join(dir, "rsyncd.log"), r.path)
	if err := os.WriteFile(conf, []byte(c), 0o644); err != nil {
		return nil, err
	}
	pr, err := p.start("rsync --daemon", filepath.Join(dir, "rsyncd.out"), "rsync", "--daemon", "--no-detach", "--config="+conf)
	if err != nil {
		return nil, err
	}
	return r, waitPort(fmt.Sprintf("127.0.0.1:%d", r.port), pr, 10*time.Second)
}

// url is the daemon URL of a directory under the module.
func (r *rsyncd) url(sub string) string {
	return fmt.Sprintf("rsync://127.0.0.1:%d/dst/%s/", r.port, sub)
}
