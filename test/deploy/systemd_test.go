package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/regionfs/regionfs/internal/testkit"
)

// maxExposure is the highest systemd-analyze security exposure accepted
// (0 is the most locked down, 10 the least; "OK" is below 5).
const maxExposure = 2.5

// TestSystemdUnits: the units verify, with their ExecStart pointing at a
// real binary and the manual page they name installed, and stay hardened.
func TestSystemdUnits(t *testing.T) {
	analyze := testkit.NeedTool(t, "systemd-analyze")
	bin := binary(t)
	dir := t.TempDir()
	man := filepath.Join(dir, "man", "man1")
	os.MkdirAll(man, 0o755)
	page, err := exec.Command(bin, "man").Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(man, "regionfs.1"), page, 0o644)
	for _, unit := range []string{"regionfs@.service", "regionfs-edge.service"} {
		t.Run(unit, func(t *testing.T) {
			text := readFile(t, "deploy/systemd/"+unit)
			for _, want := range []string{"User=regionfs", "NoNewPrivileges=yes", "ProtectSystem=strict", "SystemCallFilter=@system-service"} {
				if !strings.Contains(text, want+"\n") {
					t.Errorf("%s lacks %s", unit, want)
				}
			}
			name := unit
			if strings.Contains(unit, "@") {
				name = strings.Replace(unit, "@", "@us-east-1", 1)
			}
			path := filepath.Join(dir, name)
			os.WriteFile(path, []byte(strings.ReplaceAll(text, "/usr/local/bin/regionfs", bin)), 0o644)
			cmd := exec.Command(analyze, "verify", "--man=yes", path)
			cmd.Env = append(os.Environ(), "MANPATH="+filepath.Join(dir, "man"))
			if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
				t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
			}
			out, err := exec.Command(analyze, "security", "--offline=true", "--no-pager", path).CombinedOutput()
			m := regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d+)`).FindSubmatch(out)
			if err != nil || m == nil {
				t.Fatalf("systemd-analyze security: %v\n%s", err, out)
			}
			if e, _ := strconv.ParseFloat(string(m[1]), 64); e > maxExposure {
				t.Errorf("%s: exposure %.1f > %.1f\n%s", unit, e, maxExposure, out)
			} else {
				t.Logf("%s: exposure %.1f", unit, e)
			}
		})
	}
}
