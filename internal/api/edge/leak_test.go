package edge

import (
	"testing"

	"github.com/regionfs/regionfs/internal/testkit"
)

// TestMain fails the package when goroutines outlive its tests (servers and
// edges that were not shut down, forwarding goroutines left behind).
func TestMain(m *testing.M) { testkit.Main(m) }
