package replication

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the package when goroutines of this package outlive its
// tests: streams, senders, receivers or loops of nodes that were closed.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(10 * time.Second)
		var leaked []string
		for {
			leaked = ours()
			if len(leaked) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(leaked) > 0 {
			if len(leaked) > 5 {
				leaked = leaked[:5]
			}
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", strings.Join(leaked, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// ours returns the stacks of live goroutines running this package's code.
func ours() []string {
	buf := make([]byte, 8<<20)
	var out []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "regionfs/internal/replication.") && !strings.Contains(g, "replication.TestMain") && !strings.Contains(g, "replication.ours") {
			out = append(out, g)
		}
	}
	return out
}
