package monitoringe2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

// rulesFile is the repository's alert rules.
func rulesFile(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "monitoring", "prometheus", "regionfs-alerts.yml")
}

// TestPrometheusRules checks the shipped rules with promtool and runs
// their unit tests.
func TestPrometheusRules(t *testing.T) {
	promtool := testkit.NeedTool(t, "promtool")
	rules := rulesFile(t)
	for _, args := range [][]string{{"check", "rules", rules}, {"test", "rules", strings.TrimSuffix(rules, ".yml") + ".test.yml"}} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// TestPrometheusLagAlert runs the real Prometheus with the shipped rules
// against two regions (regionfs serve on their own loopback ranges, the
// same servers regionfs dev runs, without its fixed ports), kills the
// destination region and sees RegionfsReplicationLagHigh fire through
// Prometheus's API, then resolve when the region is back.
func TestPrometheusLagAlert(t *testing.T) {
	prom := testkit.NeedTool(t, "prometheus")
	w := newWorld(t, "127.0.0.1:1")
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: regionfs
    static_configs: [{targets: ["127.61.0.1:7070", "127.62.0.1:7070"]}]
`, rulesFile(t))
	os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600)
	startProc(t, prom, filepath.Join(dir, "prometheus.log"), "http://127.61.0.9:9090", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address=127.61.0.9:9090")
	alerts := func() map[string]string {
		b, err := get("http://127.61.0.9:9090/api/v1/alerts")
		if err != nil {
			return nil
		}
		var r struct {
			Data struct {
				Alerts []struct {
					Labels map[string]string
					State  string
				}
			}
		}
		json.Unmarshal(b, &r)
		out := map[string]string{}
		for _, a := range r.Data.Alerts {
			out[a.Labels["alertname"]+"/"+a.Labels["role"]] = a.State
		}
		return out
	}
	testkit.WaitFor(t, "Prometheus scraping the lag", 60*time.Second, func() bool {
		b, err := get("http://127.61.0.9:9090/api/v1/query?query=regionfs_replication_lag_seconds")
		return err == nil && strings.Contains(string(b), w.src)
	})
	if a := alerts(); a["RegionfsReplicationLagHigh/source"] != "" {
		t.Fatalf("lag alert before the link was cut: %v", a)
	}
	w.regions["us-west-2"].Kill9()
	t0 := time.Now()
	testkit.WaitFor(t, "RegionfsReplicationLagHigh firing", 120*time.Second, func() bool {
		return alerts()["RegionfsReplicationLagHigh/source"] == "firing"
	})
	t.Logf("Prometheus fired the lag alert %v after the destination region was killed; alerts: %v", time.Since(t0).Round(time.Second), alerts())
	w.regions["us-west-2"].start()
	testkit.WaitFor(t, "lag alert resolved", 120*time.Second, func() bool {
		_, firing := alerts()["RegionfsReplicationLagHigh/source"]
		return !firing
	})
}
