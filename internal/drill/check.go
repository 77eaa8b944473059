package drill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultCheckTimeout bounds a check command that names no timeout.
const DefaultCheckTimeout = 5 * time.Minute

// CheckEnv is the environment a check runs with: where the drill's clone
// answers, and what it is a clone of.
func CheckEnv(d Drill) []string {
	env := []string{
		"REGIONFS_DRILL_ID=" + d.DrillID,
		"REGIONFS_DRILL_REGION=" + d.Region,
		"REGIONFS_DRILL_REPLICA_ID=" + d.FileSystemID,
		"REGIONFS_DRILL_SOURCE_FILE_SYSTEM_ID=" + d.SourceFileSystemID,
		"REGIONFS_DRILL_SOURCE_REGION=" + d.SourceRegion,
	}
	if c := d.Clone; c != nil {
		env = append(env,
			"REGIONFS_DRILL_FILE_SYSTEM_ID="+c.FileSystemID,
			"REGIONFS_DRILL_MOUNT_TARGET_ID="+c.MountTargetID,
			"REGIONFS_DRILL_IP="+c.IPAddress,
			"REGIONFS_DRILL_NFS_PORT="+strconv.Itoa(c.NFSPort),
			fmt.Sprintf("REGIONFS_DRILL_NFS_URL=nfs://%s/?nfsport=%d&mountport=%d&version=3", c.IPAddress, c.NFSPort, c.NFSPort),
		)
	}
	return env
}

// RunCheck runs a check command (sh -c) with env added to the process's
// environment, for at most timeout; exit status 0 passes.
func RunCheck(ctx context.Context, command string, timeout time.Duration, env []string) CheckResult {
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Env = append(os.Environ(), env...)
	out := &tail{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	res := CheckResult{Command: command, Seconds: time.Since(start).Seconds(), By: "region"}
	var ee *exec.ExitError
	switch {
	case err == nil:
		res.Passed = true
	case ctx.Err() != nil:
		res.ExitCode = -1
		out.Write([]byte(fmt.Sprintf("\nthe check did not finish within %s\n", timeout)))
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	default:
		res.ExitCode = -1
		out.Write([]byte("\ncannot run the check: " + err.Error() + "\n"))
	}
	res.Output = out.String()
	return res
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex // guards b (stdout and stderr write concurrently)
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(string(bytes.TrimSpace([]byte(s)))), "\n")
	return lines[len(lines)-1]
}
