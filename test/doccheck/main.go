package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/regionfs/regionfs/internal/testkit/docshape"
)

func main() {
	dir := flag.String("dir", ".", "directory the commands run in")
	timeout := flag.Duration("timeout", 2*time.Minute, "longest a command may run")
	retry := flag.Duration("retry", 60*time.Second, "how long a command may be run again until its output has the documented shape")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: doccheck [-dir DIR] FILE.md...  (see go doc ./test/doccheck)")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := check(context.Background(), os.Stdout, *dir, *timeout, *retry, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "doccheck:", err)
		os.Exit(1)
	}
}

// check runs the marked blocks of files in order.
func check(ctx context.Context, log io.Writer, dir string, timeout, retry time.Duration, files []string) error {
	var steps []step
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		s, err := parse(f, string(b))
		if err != nil {
			return err
		}
		steps = append(steps, s...)
	}
	if len(steps) == 0 {
		return fmt.Errorf("no command in a block marked %s in %s", marker, strings.Join(files, ", "))
	}
	sh, err := startShell(dir)
	if err != nil {
		return err
	}
	defer sh.close()
	start := time.Now()
	again := 0
	for _, s := range steps {
		n, err := runStep(ctx, sh, s, timeout, retry)
		if err != nil {
			return err
		}
		again += n
		fmt.Fprintf(log, "ok %s:%d %s\n", s.file, s.line, clip(s.cmd, 100))
	}
	fmt.Fprintf(log, "doccheck: %d commands of %s have the documented output (%d runs again while waiting), %s\n",
		len(steps), strings.Join(files, ", "), again, time.Since(start).Round(time.Second))
	return nil
}

// runStep runs a step until its output has the documented shape (when it
// may run again); it returns how many times it ran again.
func runStep(ctx context.Context, sh *shell, s step, timeout, retry time.Duration) (int, error) {
	deadline := time.Now().Add(retry)
	for n := 0; ; n++ {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		got, status, err := sh.run(cctx, s.cmd)
		cancel()
		if err != nil {
			return n, fmt.Errorf("%s:%d: %s: %w", s.file, s.line, s.cmd, err)
		}
		// A command documented without output must also succeed.
		if docshape.Matches(s.want, got) && (len(s.want) > 0 || status == 0) {
			return n, nil
		}
		if !retryable(s.cmd, status) || time.Now().After(deadline) {
			return n, fmt.Errorf("%s:%d: the output of\n  $ %s\n(exit status %d) does not have the documented shape%s\n%s",
				s.file, s.line, s.cmd, status, waited(n, retry), docshape.Diff(s.want, got))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waited(n int, retry time.Duration) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" after %d runs in %s", n+1, retry)
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
