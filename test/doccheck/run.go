package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// shell is one bash session the steps run in.
type shell struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	errc  chan error
	ended chan struct{} // closed once the shell has exited and been waited for
	end   string        // marker printed after each command, with its status
}

func startShell(dir string) (*shell, error) {
	b := make([]byte, 8)
	rand.Read(b)
	s := &shell{end: "__doccheck_" + hex.EncodeToString(b) + "_", lines: make(chan string, 1024), errc: make(chan error, 1), ended: make(chan struct{})}
	s.cmd = exec.Command("bash", "--noprofile", "--norc")
	s.cmd.Dir = dir
	var err error
	if s.in, err = s.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		s.errc <- errors.Join(sc.Err(), errors.New("doccheck: the shell ended"))
	}()
	go func() { s.cmd.Wait(); pw.Close(); close(s.ended) }()
	if _, err := fmt.Fprintln(s.in, "exec 2>&1"); err != nil {
		return nil, err
	}
	return s, nil
}

// run runs one command line and returns its output lines and exit status.
func (s *shell) run(ctx context.Context, line string) ([]string, int, error) {
	// The marker follows on a line of its own, even after output that
	// does not end with a newline.
	// Commands read nothing from the session's stdin (its script); the
	// braces keep them in the session (variables, cd).
	script := "{ " + line + "\n} </dev/null\n" + `__st=$?; printf '\n%s%d\n' '` + s.end + `' "$__st"` + "\n"
	if _, err := io.WriteString(s.in, script); err != nil {
		return nil, 0, err
	}
	var out []string
	for {
		select {
		case <-ctx.Done():
			return out, 0, fmt.Errorf("%w (output so far: %q)", ctx.Err(), out)
		case err := <-s.errc:
			return out, 0, err
		case l := <-s.lines:
			rest, ok := strings.CutPrefix(l, s.end)
			if !ok {
				out = append(out, l)
				continue
			}
			st, err := strconv.Atoi(rest)
			if err != nil {
				return out, 0, fmt.Errorf("doccheck: bad status line %q", l)
			}
			// Drop the newline printed before the marker.
			if n := len(out); n > 0 && out[n-1] == "" {
				out = out[:n-1]
			}
			return out, st, nil
		}
	}
}

func (s *shell) close() {
	s.in.Close()
	select {
	case <-s.ended:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
	}
}

// readOnly matches commands that only look at things: running them again
// changes nothing.
var readOnly = regexp.MustCompile(`^(\S+=\S*\s+)*(` +
	`aws\s+(\S+\s+)*\S+\s+(describe|list|get)-\S+` +
	`|nfs-cat\s|nfs-ls\s` +
	`|\S*regionfs\s+(status|failover\s+--report|version|dev\s+region\s+status)\b` +
	`|echo\s|cat\s)`)

// retryable reports whether a step whose output does not have the
// documented shape may be run again.
func retryable(cmd string, status int) bool {
	return status != 0 || readOnly.MatchString(cmd)
}
