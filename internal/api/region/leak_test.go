package region

import (
	"testing"

	"github.com/regionfs/regionfs/internal/testkit"
)

// TestMain fails the package when goroutines outlive its tests (servers
// that were not shut down, connections left open).
func TestMain(m *testing.M) { testkit.Main(m) }
