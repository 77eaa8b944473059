package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/config"
	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/replconf"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/replication"
	"github.com/regionfs/regionfs/internal/testkit"
)

// lines returns the lines written to b.
func lines(b *testkit.Buffer) []string {
	return strings.Split(strings.TrimSpace(b.String()), "\n")
}

func TestRegionHandler(t *testing.T) {
	var buf testkit.Buffer
	base := slog.New(slog.NewJSONHandler(&buf, nil))
	log := regionLogger(base, "us-east-1")
	log.Info("plain")
	log.With("region", "us-east-1").Info("component adds it")
	log.Info("per line", "region", "us-east-1", "k", 1)
	log.Info("another region is kept", "region", "us-west-2")
	log.WithGroup("peer").Info("grouped", "region", "us-east-1")
	want := []string{
		`"msg":"plain","region":"us-east-1"}`,
		`"msg":"component adds it","region":"us-east-1"}`,
		`"msg":"per line","region":"us-east-1","k":1}`,
		`"msg":"another region is kept","region":"us-east-1","region":"us-west-2"}`,
		`"msg":"grouped","region":"us-east-1","peer":{"region":"us-east-1"}}`,
	}
	got := lines(&buf)
	if len(got) != len(want) {
		t.Fatalf("%d lines:\n%s", len(got), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasSuffix(got[i], want[i]) {
			t.Errorf("line %d: %s\nwant suffix %s", i, got[i], want[i])
		}
	}
}

// logRegion is a region of TestRegionLogs, on a loopback range of its own
// with ephemeral ports (no ports lock).
func logRegionConfig(t *testing.T, dir, name, ip string, replPort int, peer string, peerIP string, peerPort int) *config.Config {
	t.Helper()
	zero := time.Duration(0)
	keyFile := filepath.Join(dir, name+".key")
	if err := ensureKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	sub := strings.TrimSuffix(ip, ".0.1") + ".1.0/24"
	cfg := &config.Config{
		Region: name, AccountID: "444455556666", DataDir: filepath.Join(dir, name),
		API:         config.Listener{Listen: fmt.Sprintf("%s:%d", ip, testkit.FreePort(t, ip))},
		NFS:         config.NFS{Port: testkit.FreePort(t, ip)},
		Credentials: []config.Credential{{AccessKeyID: "AKIALOGTESTKEY00001", SecretAccessKey: "log-test-secret-0123456789"}},
		Subnets:     []config.Subnet{{ID: "subnet-0d0000000000000a1", AvailabilityZone: name + "a", CIDR: sub}},
		SecurityGroups: []config.SecurityGroup{
			{ID: "sg-0d0000000000000a1", Name: "open", Ingress: []string{"127.0.0.0/8"}},
		},
		KMSKeys:     []config.KMSKey{{ID: "key-" + name, Aliases: []string{config.DefaultAlias}, KeyFile: keyFile}},
		Control:     config.Control{TransitionDelay: &zero},
		Replication: config.Listener{Listen: fmt.Sprintf("%s:%d", ip, replPort)},
		Peers:       []config.Peer{{Name: peer, Replication: fmt.Sprintf("%s:%d", peerIP, peerPort), Secret: "log-test-pair-secret-0123"}},
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestRegionLogs runs two regions in one process, as regionfs dev does,
// with replication and an initial sync, and checks every log line: valid
// JSON, exactly one region key (the region's own), and the initial sync's
// start and end at INFO with its size and rate.
func TestRegionLogs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var buf testkit.Buffer
	log, err := newLogger(config.Log{Level: "info", Format: "json"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	ipA, ipB := "127.6.0.1", "127.7.0.1"
	portA, portB := testkit.FreePort(t, ipA), testkit.FreePort(t, ipB)
	cfgA := logRegionConfig(t, dir, "ap-northeast-1", ipA, portA, "ap-northeast-2", ipB, portB)
	cfgB := logRegionConfig(t, dir, "ap-northeast-2", ipB, portB, "ap-northeast-1", ipA, portA)
	fatal := func(err error) { t.Errorf("fatal: %v", err) }
	a, err := openNode(ctx, cfgA, log, nil, fatal)
	if err != nil {
		t.Fatal(err)
	}
	b, err := openNode(ctx, cfgB, log, nil, fatal)
	if err != nil {
		a.close(ctx)
		t.Fatal(err)
	}
	defer func() {
		if err := b.close(ctx); err != nil {
			t.Error(err)
		}
		if err := a.close(ctx); err != nil {
			t.Error(err)
		}
	}()
	fs, err := a.control.region.CreateFileSystem(ctx, control.CreateFileSystemInput{CreationToken: "logs"})
	if err != nil {
		t.Fatal(err)
	}
	efs, err := a.control.region.EngineFS(fs.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		e, err := efs.Create(ctx, engine.RootCred, engine.RootIno, fmt.Sprint("f", i), engine.CreateGuarded, engine.SetAttr{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := efs.Write(ctx, engine.RootCred, e.Attr.Ino, 0, bytes.Repeat([]byte{byte(i + 1)}, 100<<10)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.repl.mgr.Create(ctx, fs.ID, []replconf.Destination{{Region: "ap-northeast-2"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replication to be ENABLED", func() bool {
		ds, err := a.repl.mgr.Describe(ctx, fs.ID)
		return err == nil && len(ds) == 1 && ds[0].Live.State == replication.StateEnabled
	})
	// The destination's ack makes it ENABLED; the source logs the end of
	// the sync right after it has read that ack.
	waitFor(t, "the initial sync's end in the log", func() bool {
		return strings.Contains(strings.Join(lines(&buf), "\n"), `"msg":"initial sync done"`)
	})

	var started, done map[string]any
	for _, l := range lines(&buf) {
		if n := strings.Count(l, `"region":`); n != 1 {
			t.Errorf("%d region keys: %s", n, l)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %s", l)
		}
		if m["region"] != "ap-northeast-1" && m["region"] != "ap-northeast-2" {
			t.Errorf("region %v: %s", m["region"], l)
		}
		switch m["msg"] {
		case "initial sync started":
			started = m
		case "initial sync done":
			done = m
		}
	}
	// 5 files of 100 KiB and the root directory (no file of zeros: a block
	// of zeros is a hole, which uses nothing and is not counted).
	if started == nil || started["level"] != "INFO" || started["bytes"] != float64(500<<10) || started["files"] != float64(6) || started["region"] != "ap-northeast-1" {
		t.Errorf("initial sync start: %v", started)
	}
	if done == nil || done["level"] != "INFO" || done["bytes"] != float64(500<<10) || !strings.HasSuffix(fmt.Sprint(done["rate"]), " MiB/s") || done["duration"] == nil {
		t.Errorf("initial sync end: %v", done)
	}
}
