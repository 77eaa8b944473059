package monitoringe2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestAssetsShowReplicationTrouble: each replication gauge that says
// something is wrong is on the shipped Grafana dashboard and in an alert
// rule (regionfs_replication_destination_waiting, 345d260, was in
// neither).
func TestAssetsShowReplicationTrouble(t *testing.T) {
	dir := filepath.Dir(rulesFile(t))
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	rules := read(rulesFile(t))
	ruleTests := read(strings.TrimSuffix(rulesFile(t), ".yml") + ".test.yml")
	dashboard := read(filepath.Join(dir, "..", "grafana", "regionfs-dashboard.json"))
	for _, g := range []string{
		"regionfs_replication_lag_seconds",
		"regionfs_replication_link_up",
		"regionfs_replication_state",
		"regionfs_replication_pending_bytes",
		"regionfs_replication_destination_waiting",
	} {
		for _, f := range []struct{ name, text string }{
			{"the Grafana dashboard", dashboard},
			{"the alert rules", rules},
			{"the alert rules' promtool tests", ruleTests},
		} {
			if !regexp.MustCompile(`\b` + g + `\b`).MatchString(f.text) {
				t.Errorf("%s is not in %s", g, f.name)
			}
		}
	}
}
