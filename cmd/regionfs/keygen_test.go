package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/regionfs/regionfs/internal/config"
)

// TestKeygen: keygen writes every secret and key file a region config
// names (mode 0600, new directories 0700), such that the region's files
// load; a second run keeps them; a damaged file is reported, not
// replaced; --owner gives them away; --edge handles an edge config.
func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc", "regionfs")
	cfgPath := filepath.Join(dir, "region.yaml")
	cfg := fmt.Sprintf(`
region: eu-central-1
account_id: "111122223333"
data_dir: %[1]s/data
api: {listen: "127.5.0.1:7070"}
credentials: [{access_key_id: AKIAKEYGENTEST00001, secret_file: %[2]s/AKIAKEYGENTEST00001.secret}]
subnets: [{id: subnet-0e0000000000000a1, availability_zone: eu-central-1a, cidr: 127.5.1.0/24}]
security_groups: [{id: sg-0e0000000000000a1, name: nfs, ingress: [127.0.0.0/8]}]
kms_keys: [{id: key-1, aliases: [alias/aws/elasticfilesystem], key_file: %[2]s/kms/default.key}]
replication: {listen: "127.5.0.1:7443"}
peers:
  - {name: eu-west-1, replication: "127.5.0.2:7443", secret_file: %[2]s/pair.secret}
  - {name: eu-west-2, replication: "127.5.0.3:7443", secret_file: %[2]s/pair.secret}
replicate: {self_secret_file: %[2]s/self.secret}
`, dir, etc)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runRoot(t, "keygen", "--config", cfgPath)
	if err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	files := map[string]int{ // path → content length without the newline
		filepath.Join(etc, "AKIAKEYGENTEST00001.secret"): 40,
		filepath.Join(etc, "kms", "default.key"):         64,
		filepath.Join(etc, "pair.secret"):                48,
		filepath.Join(etc, "self.secret"):                48,
	}
	contents := map[string]string{}
	for p, n := range files {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v\n%s", p, err, out)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", p, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(p)
		if len(strings.TrimSpace(string(b))) != n {
			t.Errorf("%s: %d characters, want %d", p, len(strings.TrimSpace(string(b))), n)
		}
		contents[p] = string(b)
		if !strings.Contains(out, "wrote  "+p+" (") {
			t.Errorf("keygen did not say it wrote %s:\n%s", p, out)
		}
	}
	if strings.Count(out, "pair.secret") != 1 {
		t.Errorf("the pair secret of two peers written twice:\n%s", out)
	}
	for _, d := range []string{etc, filepath.Join(etc, "kms")} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v", d, fi.Mode(), err)
		}
	}
	loaded, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loadRegionFiles(loaded); err != nil {
		t.Fatalf("the written files do not load: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Error("keygen created the data directory")
	}

	// Again: everything kept, nothing changed.
	out, err = runRoot(t, "keygen", "--config", cfgPath)
	if err != nil || strings.Contains(out, "wrote") || strings.Count(out, "kept   ") != 4 {
		t.Fatalf("second keygen: %v\n%s", err, out)
	}
	for p, c := range contents {
		if b, _ := os.ReadFile(p); string(b) != c {
			t.Errorf("%s changed", p)
		}
	}
	// A damaged key is reported and left alone.
	key := filepath.Join(etc, "kms", "default.key")
	os.WriteFile(key, []byte("short\n"), 0o600)
	if _, err := runRoot(t, "keygen", "--config", cfgPath); err == nil || !strings.Contains(err.Error(), key+" (KMS key key-1) exists but is not usable") {
		t.Fatalf("damaged key: %v", err)
	}
	if b, _ := os.ReadFile(key); string(b) != "short\n" {
		t.Error("keygen replaced a damaged key")
	}

	// --owner, and an edge config.
	edgeDir := filepath.Join(dir, "edge")
	edgeCfg := filepath.Join(dir, "edge.yaml")
	os.WriteFile(edgeCfg, []byte(fmt.Sprintf(`
listen: 127.0.0.1:7070
credentials: [{access_key_id: AKIAKEYGENTEST00001, secret_file: %s/AKIAKEYGENTEST00001.secret}]
regions: [{name: eu-central-1, api: "127.5.0.1:7070"}]
`, edgeDir)), 0o600)
	args := []string{"keygen", "--edge", "--config", edgeCfg}
	if os.Geteuid() == 0 {
		args = append(args, "--owner", "65534:65534")
	}
	if out, err := runRoot(t, args...); err != nil {
		t.Fatalf("keygen --edge: %v\n%s", err, out)
	}
	fi, err := os.Stat(filepath.Join(edgeDir, "AKIAKEYGENTEST00001.secret"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("edge secret: %v %v", fi, err)
	}
	if os.Geteuid() == 0 {
		st := fi.Sys().(*syscall.Stat_t)
		dst, _ := os.Stat(edgeDir)
		if st.Uid != 65534 || st.Gid != 65534 || dst.Sys().(*syscall.Stat_t).Uid != 65534 {
			t.Errorf("--owner 65534:65534: file %d:%d", st.Uid, st.Gid)
		}
	}
	if _, err := runRoot(t, "keygen", "--config", cfgPath, "--owner", "no-such-user-here"); err == nil || !strings.Contains(err.Error(), `no user "no-such-user-here"`) {
		t.Errorf("unknown owner: %v", err)
	}
}
