package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

// startupFiles are the files a region config names, all valid.
type startupFiles struct {
	dir, secret, key, pair string
}

func writeStartupFiles(t *testing.T) startupFiles {
	t.Helper()
	dir := t.TempDir()
	f := startupFiles{dir: dir, secret: filepath.Join(dir, "access.secret"), key: filepath.Join(dir, "kms.key"),
		pair: filepath.Join(dir, "pair.secret")}
	for path, content := range map[string]string{
		f.secret: "startup-test-secret-0123456789\n",
		f.key:    strings.Repeat("cd", 32) + "\n",
		f.pair:   "startup-test-pair-secret-0123456789\n",
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// startupConfig is a region with replication, on 127.5.0.0/16 (a range of
// its own: the tests run without the ports lock) and ephemeral ports.
func startupConfig(t *testing.T, f startupFiles, dataDir string, edit func(string) string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
region: eu-central-1
account_id: "111122223333"
data_dir: %s
api: {listen: "127.5.0.1:%d"}
nfs: {port: %d}
credentials: [{access_key_id: AKIASTARTUPTEST0001, secret_file: %s}]
subnets: [{id: subnet-0e0000000000000a1, availability_zone: eu-central-1a, cidr: 127.5.1.0/24}]
security_groups: [{id: sg-0e0000000000000a1, name: nfs, ingress: [127.0.0.0/8]}]
kms_keys: [{id: key-1, aliases: [alias/aws/elasticfilesystem], key_file: %s}]
replication: {listen: "127.5.0.1:%d"}
peers: [{name: eu-west-1, replication: "127.5.0.2:7443", secret_file: %s}]
`, dataDir, testkit.FreePort(t, "127.5.0.1"), testkit.FreePort(t, "127.5.1.1"), f.secret, f.key, testkit.FreePort(t, "127.5.0.1"), f.pair)
	if edit != nil {
		cfg = edit(cfg)
	}
	path := filepath.Join(t.TempDir(), "region.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// replaceLine swaps the config line starting with prefix.
func replaceLine(prefix, line string) func(string) string {
	return func(cfg string) string {
		var out []string
		for _, l := range strings.Split(cfg, "\n") {
			if strings.HasPrefix(l, prefix) {
				l = line
			}
			out = append(out, l)
		}
		return strings.Join(out, "\n")
	}
}

// runServeFailing runs `regionfs serve` and expects it to fail at start
// with want in its message, without a panic.
func runServeFailing(t *testing.T, bin, cfg string, want ...string) string {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfg)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("serve still running after 60 s, want a start-up error\n%s", out)
	}
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("serve: %v, want exit status 1\n%s", err, out)
	}
	s := string(out)
	if strings.Contains(s, "panic") || strings.Contains(s, "goroutine ") {
		t.Fatalf("serve panicked:\n%s", s)
	}
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("serve output lacks %q:\n%s", w, s)
		}
	}
	return s
}

// TestServeStartupErrors: every start-up failure of `regionfs serve` is
// explained (no panic) and, up to binding the listeners, leaves nothing
// behind: a missing data_dir stays missing.
func TestServeStartupErrors(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		name string
		// edit changes the config; files lets a case damage the files
		edit  func(f startupFiles) func(string) string
		files func(t *testing.T, f startupFiles)
		want  []string
	}{
		{
			name:  "credential secret file missing",
			files: func(t *testing.T, f startupFiles) { os.Remove(f.secret) },
			want:  []string{"region eu-central-1: config: secret of AKIASTARTUPTEST0001: open ", "access.secret: no such file or directory", "\n(regionfs keygen --config "},
		},
		{
			name:  "credential secret too short",
			files: func(t *testing.T, f startupFiles) { os.WriteFile(f.secret, []byte("short\n"), 0o600) },
			want:  []string{"secret of AKIASTARTUPTEST0001 in ", "is too short (at least 16 characters)"},
		},
		{
			name:  "kms key file missing",
			files: func(t *testing.T, f startupFiles) { os.Remove(f.key) },
			want:  []string{"kms key key-1: open ", "kms.key: no such file or directory", "writes the missing secret and key files)"},
		},
		{
			name:  "kms key material of the wrong size",
			files: func(t *testing.T, f startupFiles) { os.WriteFile(f.key, []byte("abcd\n"), 0o600) },
			want:  []string{"kms key key-1: ", "want 32 bytes of key material (raw, hex or base64)"},
		},
		{
			name:  "pair secret file missing",
			files: func(t *testing.T, f startupFiles) { os.Remove(f.pair) },
			want:  []string{"replication secret of peer eu-west-1: open ", "pair.secret: no such file or directory"},
		},
		{
			name:  "pair secret too short",
			files: func(t *testing.T, f startupFiles) { os.WriteFile(f.pair, []byte("short\n"), 0o600) },
			want:  []string{"the replication secret of peer eu-west-1 must have at least 16 characters"},
		},
		{
			name: "api certificate missing",
			edit: func(f startupFiles) func(string) string {
				return func(cfg string) string {
					return strings.Replace(cfg, `api: {listen: "127.5.0.1:`, fmt.Sprintf(`api: {tls: {cert_file: %s/api.crt, key_file: %s/api.key}, listen: "127.5.0.1:`, f.dir, f.dir), 1)
				}
			},
			want: []string{"api.tls: open ", "api.crt: no such file or directory"},
		},
		{
			name: "api address not on this host",
			edit: func(startupFiles) func(string) string {
				return replaceLine("api:", `api: {listen: "192.0.2.1:7070"}`)
			},
			want: []string{"api.listen: 192.0.2.1 is not an address of this host"},
		},
		{
			name: "data_dir is a file",
			files: func(t *testing.T, f startupFiles) {
				os.WriteFile(filepath.Join(f.dir, "data"), nil, 0o600)
			},
			want: []string{"data_dir ", "/data exists and is not a directory"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := writeStartupFiles(t)
			dataDir := filepath.Join(f.dir, "data")
			var edit func(string) string
			if tc.edit != nil {
				edit = tc.edit(f)
			}
			cfg := startupConfig(t, f, dataDir, edit)
			if tc.files != nil {
				tc.files(t, f)
			}
			before, _ := os.Stat(dataDir)
			runServeFailing(t, bin, cfg, tc.want...)
			after, err := os.Stat(dataDir)
			switch {
			case before == nil && err == nil:
				t.Errorf("serve created %s although it did not start", dataDir)
			case before != nil && !after.Mode().IsRegular() && before.Mode().IsRegular():
				t.Errorf("serve replaced the file %s", dataDir)
			}
		})
	}
}

// TestServeStartupBusyPorts: a listener already taken is reported before
// the data directory is created.
func TestServeStartupBusyPorts(t *testing.T) {
	bin := buildBinary(t)
	for _, which := range []string{"api", "replication"} {
		t.Run(which, func(t *testing.T) {
			f := writeStartupFiles(t)
			dataDir := filepath.Join(f.dir, "data")
			busy, err := net.Listen("tcp", "127.5.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			cfg := startupConfig(t, f, dataDir, replaceLine(which+":", fmt.Sprintf(`%s: {listen: "%s"}`, which, busy.Addr())))
			runServeFailing(t, bin, cfg, fmt.Sprintf("region eu-central-1: %s.listen: %s is in use by another process", which, busy.Addr()))
			if _, err := os.Stat(dataDir); err == nil {
				t.Errorf("serve created %s although its %s port was busy", dataDir, which)
			}
		})
	}
}

// TestServeStartupDataDirInUse: a second process on a data directory in
// use is refused, and the running one is not disturbed.
func TestServeStartupDataDirInUse(t *testing.T) {
	bin := buildBinary(t)
	f := writeStartupFiles(t)
	dataDir := filepath.Join(f.dir, "data")
	first := startupConfig(t, f, dataDir, nil)
	srv := startProc(t, bin, "serve", "--config", first)
	waitFor(t, "the first serve to lock its data directory", func() bool {
		b, _ := os.ReadFile(srv.log)
		return strings.Contains(string(b), "region serving")
	})
	second := startupConfig(t, f, dataDir, nil) // same data_dir, other ports
	runServeFailing(t, bin, second, "data_dir "+dataDir+" is in use by another regionfs process")
	select {
	case err := <-srv.done:
		t.Fatalf("the first serve exited: %v\n%s", err, srv.output())
	default:
	}
	if err := srv.term(t); err != nil {
		t.Errorf("first serve: %v\n%s", err, srv.output())
	}
}

// TestDevStartupErrors: a second `regionfs dev` on a data directory in use
// is refused before it changes anything there (env.sh stays).
func TestDevStartupErrors(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	ln, err := net.Listen("unix", filepath.Join(dir, devSocket)) // a running dev, as the next one sees it
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	env := filepath.Join(dir, "env.sh")
	if err := os.WriteFile(env, []byte("export AWS_ACCESS_KEY_ID=AKIARUNNINGDEV00001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "dev", "--data-dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another regionfs dev is running on "+dir) || strings.Contains(string(out), "panic") {
		t.Fatalf("second dev: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(env); err != nil || !strings.Contains(string(b), "AKIARUNNINGDEV00001") {
		t.Fatalf("the refused dev touched env.sh: %v %q", err, b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("the refused dev created files: %v", entries)
	}
}

// TestDevStartupEdgeBusy: a dev whose edge address is taken says so before
// it creates its data directory. It binds the standard edge address
// 127.0.0.1:7070: run it under the ports lock (flock /work/.ports.lock).
func TestDevStartupEdgeBusy(t *testing.T) {
	bin := buildBinary(t)
	busy, err := net.Listen("tcp", devEdgeAddr)
	if err != nil {
		t.Fatalf("%s is in use (another regionfs dev running?); this test needs it free: %v", devEdgeAddr, err)
	}
	defer busy.Close()
	dir := filepath.Join(t.TempDir(), "data")
	out, err := exec.Command(bin, "dev", "--data-dir", dir).CombinedOutput()
	want := "edge: 127.0.0.1:7070 is in use by another process (another regionfs?); is another regionfs dev running (with another --data-dir)?"
	if err == nil || !strings.Contains(string(out), want) || strings.Contains(string(out), "panic") {
		t.Fatalf("dev with the edge address taken: %v\n%s\nwant %q", err, out, want)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("dev created %s although it did not start", dir)
	}
}
