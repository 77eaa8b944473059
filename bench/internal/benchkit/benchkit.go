// Package benchkit holds what the benchmark harnesses under bench/ share:
// loopback ports, waiting for and stopping the processes they start, and
// the nfs-ganesha baseline (with the rpcbind it registers with) that
// bench/nfs, bench/mount and bench/replication compare regionfs against.
package benchkit

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// FreePort returns a loopback TCP port nobody listens on now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// WaitPort waits until something accepts on addr. exited reports a
// non-nil error once the process that should listen has ended; WaitPort
// then returns that error.
func WaitPort(addr string, exited func() error, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if err := exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %v", addr, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CmdExited is WaitPort's exited for a process started with exec.
func CmdExited(cmd *exec.Cmd) func() error {
	return func() error {
		if cmd.ProcessState != nil {
			return errors.New("server exited")
		}
		return nil
	}
}

// DieWithHarness makes cmd (not started yet) get SIGKILL when the
// harness dies (Linux's parent-death signal), keeping what else cmd's
// SysProcAttr sets. A harness that panics or is killed leaves no server
// behind: no daemon keeps its ports, data directories, or the lock files
// a `flock … harness` run hands its children.
func DieWithHarness(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// StopProcess sends SIGTERM, then SIGKILL after 30 s. Ending on the
// SIGTERM is not an error.
func StopProcess(cmd *exec.Cmd) error {
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() {
			return nil
		}
		return err
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return errors.New("did not stop within 30 s of SIGTERM")
	}
}

// RpcbindAddr is where the portmapper nfs-ganesha registers with listens.
const RpcbindAddr = "127.0.0.1:111"

// Listening reports whether something accepts on addr now.
func Listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err == nil {
		c.Close()
		return true
	}
	return false
}

// Rpcbind is the portmapper nfs-ganesha registers with.
type Rpcbind struct {
	cmd *exec.Cmd
}

// Start starts rpcbind, logging to tmp/rpcbind.log, unless one answers
// already.
func (p *Rpcbind) Start(tmp string) error {
	if Listening(RpcbindAddr) {
		return nil
	}
	p.cmd = exec.Command("rpcbind", "-f", "-w")
	DieWithHarness(p.cmd)
	log, err := os.Create(filepath.Join(tmp, "rpcbind.log"))
	if err != nil {
		return err
	}
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("rpcbind: %w", err)
	}
	return WaitPort(RpcbindAddr, CmdExited(p.cmd), 10*time.Second)
}

// Stop stops the rpcbind Start started, if any.
func (p *Rpcbind) Stop() {
	if p.cmd != nil {
		_ = StopProcess(p.cmd)
	}
}
