package replication

import (
	"testing"

	"github.com/regionfs/regionfs/internal/testkit"
)

// TestMain fails the package when goroutines of this package outlive its
// tests: streams, senders, receivers or loops of nodes that were closed.
func TestMain(m *testing.M) {
	testkit.Main(m, testkit.OnlyStacks("regionfs/internal/replication."))
}
