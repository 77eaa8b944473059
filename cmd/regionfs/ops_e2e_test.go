package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionfs/regionfs/internal/config"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/serve/servetest"
	"github.com/regionfs/regionfs/internal/testkit"
)

// opsPair is two regions in one process, with their APIs and an edge in
// front of them, on loopback ranges of their own with ephemeral ports (no
// ports lock), the environment of the operator commands set.
type opsPair struct {
	a, b    *node
	aClosed bool // stopA closed a
	edge    string
	efsA    *efs.Client
	efsB    *efs.Client
}

func startOpsPair(t *testing.T) *opsPair {
	t.Helper()
	return startOpsPairOn(t, "127.8.0.1", "127.9.0.1")
}

// startOpsPairOn is startOpsPair with the regions' API addresses (their
// subnets are the .1.0/24 of each address's /16).
func startOpsPairOn(t *testing.T, ipA, ipB string, mods ...func(a, b *config.Config)) *opsPair {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	portA, portB := testkit.FreePort(t, ipA), testkit.FreePort(t, ipB)
	cfgA := logRegionConfig(t, dir, "ap-northeast-1", ipA, portA, "ap-northeast-2", ipB, portB)
	cfgB := logRegionConfig(t, dir, "ap-northeast-2", ipB, portB, "ap-northeast-1", ipA, portA)
	cfgA.Peers[0].API, cfgB.Peers[0].API = cfgB.API.Listen, cfgA.API.Listen
	for _, m := range mods {
		m(cfgA, cfgB)
	}
	fatal := func(err error) { t.Errorf("fatal: %v", err) }
	p := &opsPair{}
	var err error
	if p.a, err = openNode(ctx, cfgA, log, nil, fatal); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !p.aClosed {
			p.a.close(context.Background())
		}
	})
	if p.b, err = openNode(ctx, cfgB, log, nil, fatal); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.b.close(context.Background()) })
	for _, n := range []*node{p.a, p.b} {
		if err := n.startAPI(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cred := cfgA.Credentials[0]
	ecfg := &config.Edge{Listen: ipA + ":0", Credentials: []config.Credential{cred},
		Regions: []config.EdgeRegion{{Name: cfgA.Region, API: cfgA.API.Listen}, {Name: cfgB.Region, API: cfgB.API.Listen}}}
	ecfg.SetDefaults()
	e, err := newEdge(ecfg, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", ipA+":0")
	if err != nil {
		t.Fatal(err)
	}
	p.edge = servetest.Serve(t, e, ln)
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": cred.AccessKeyID, "AWS_SECRET_ACCESS_KEY": cred.SecretAccessKey, "AWS_REGION": cfgA.Region,
		"AWS_ENDPOINT_URL_EFS": p.edge, "AWS_ENDPOINT_URL": p.edge, "AWS_PROFILE": "", "AWS_CONFIG_FILE": dir + "/none",
		"AWS_SHARED_CREDENTIALS_FILE": dir + "/none",
	} {
		t.Setenv(k, v)
	}
	p.efsA = efs.NewFromConfig(testkit.AWSConfig(p.edge, cfgA.Region, cred.AccessKeyID, cred.SecretAccessKey))
	p.efsB = efs.NewFromConfig(testkit.AWSConfig(p.edge, cfgB.Region, cred.AccessKeyID, cred.SecretAccessKey))
	return p
}

// stopA takes region a down (its API, replication and mount targets), as
// an outage would.
func (p *opsPair) stopA(t *testing.T) {
	t.Helper()
	p.aClosed = true
	if err := p.a.close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, n *node, fsID, name, content string) {
	t.Helper()
	ctx := context.Background()
	fs, err := n.control.region.EngineFS(fsID)
	if err != nil {
		t.Fatal(err)
	}
	e, err := fs.Create(ctx, engine.RootCred, engine.RootIno, name, engine.CreateGuarded, engine.SetAttr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := fs.Write(ctx, engine.RootCred, e.Attr.Ino, 0, []byte(content)); err != nil {
		t.Fatal(err)
	}
}

func readFile(n *node, fsID, name string) (string, error) {
	ctx := context.Background()
	fs, err := n.control.region.EngineFS(fsID)
	if err != nil {
		return "", err
	}
	a, err := fs.Lookup(ctx, engine.RootCred, engine.RootIno, name)
	if err != nil {
		return "", err
	}
	b, _, _, err := fs.Read(ctx, engine.RootCred, a.Ino, 0, int(a.Size))
	return string(b), err
}

// TestOperatorCommands drives status (--json, --all-regions, --watch, a
// region down) and failback --switch-back, which ends with the original
// replicated into the promoted file system again (it used to be left
// without a replica), through an edge.
func TestOperatorCommands(t *testing.T) {
	ctx := context.Background()
	p := startOpsPair(t)
	src, dst := p.replicated(t, "ops", "written in ap-northeast-1\n")
	enabled := func(c *efs.Client, fs string) bool {
		out, err := c.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(fs)})
		return err == nil && len(out.Replications) == 1 && out.Replications[0].Destinations[0].Status == types.ReplicationStatusEnabled
	}
	testkit.WaitFor(t, "replication ENABLED", 30*time.Second, func() bool { return enabled(p.efsA, src) })

	// --json --all-regions: both regions, the replication seen from each end.
	out, err := runRoot(t, "status", "--all-regions", "--json")
	if err != nil {
		t.Fatalf("status --all-regions --json: %v\n%s", err, out)
	}
	var all struct{ Regions []regionStatus }
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(all.Regions) != 2 || all.Regions[0].Region != "ap-northeast-1" || all.Regions[1].Region != "ap-northeast-2" {
		t.Fatalf("regions: %s", out)
	}
	for i, role := range []string{"source", "destination"} {
		r := all.Regions[i]
		if r.Error != "" || len(r.Replications) != 1 || r.Replications[0].Role != role || r.Replications[0].ReplicationID == "" {
			t.Fatalf("%s: %+v", r.Region, r)
		}
	}
	if s := all.Regions[0].Replications[0].InitialSync; !s.Done || s.BytesDone == 0 || s.Started == nil {
		t.Errorf("initial sync: %+v", s)
	}
	// Text: both regions, every line within 100 columns.
	out, err = runRoot(t, "status", "--all-regions")
	if err != nil {
		t.Fatalf("status --all-regions: %v\n%s", err, out)
	}
	for _, want := range []string{"ap-northeast-1  ", "ap-northeast-2  ", src + "  ", "→ ap-northeast-2", "← ap-northeast-1", "initial sync  done: "} {
		if !strings.Contains(out, want) {
			t.Errorf("status --all-regions lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if utf8.RuneCountInString(l) > 100 {
			t.Errorf("wider than 100 columns: %q", l)
		}
	}
	// --watch: one JSON document per refresh until interrupted.
	wctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	cmd := newRootCmd()
	var buf bytes.Buffer
	cmd.SetOut(&buf)
	cmd.SetArgs([]string{"status", "--watch", "--json", "--interval", "300ms"})
	err = cmd.ExecuteContext(wctx)
	cancel()
	docs := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if err != nil || len(docs) < 2 {
		t.Fatalf("status --watch --json: %v, %d documents\n%s", err, len(docs), buf.String())
	}
	for _, d := range docs {
		var st regionStatus
		if err := json.Unmarshal([]byte(d), &st); err != nil || st.Region != "ap-northeast-1" {
			t.Fatalf("watch document %q: %v", d, err)
		}
	}

	// Failover in the destination region, a change there, failback with
	// --switch-back.
	if _, err := p.efsB.DeleteReplicationConfiguration(ctx, &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: aws.String(src)}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the replica writable", 10*time.Second, func() bool {
		fs, err := p.b.control.region.EngineFS(dst)
		if err != nil {
			return false
		}
		_, err = fs.Mkdir(ctx, engine.RootCred, engine.RootIno, "probe", engine.SetAttr{})
		return err == nil
	})
	writeFile(t, p.b, dst, "c.txt", "written in ap-northeast-2 after the failover\n")
	out, err = runRoot(t, "failback", dst, "--region", "ap-northeast-2", "--original", src, "--original-region", "ap-northeast-1", "--switch-back")
	t.Logf("failback --switch-back:\n%s", out)
	if err != nil {
		t.Fatalf("failback: %v", err)
	}
	matchDoc(t, runbook, "TestOperatorCommands/failback", out)
	for _, want := range []string{
		fmt.Sprintf("switched back: %s (ap-northeast-1) is writable again", src),
		fmt.Sprintf("replicating %s (ap-northeast-1) into %s (ap-northeast-2)", src, dst),
		fmt.Sprintf("protected again: %s (ap-northeast-1) replicates into %s (ap-northeast-2), ENABLED", src, dst),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("failback output lacks %q", want)
		}
	}
	if got, err := readFile(p.a, src, "c.txt"); err != nil || got != "written in ap-northeast-2 after the failover\n" {
		t.Errorf("the original after the switch-back: %q %v", got, err)
	}
	d, err := p.efsA.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(src)})
	if err != nil || len(d.Replications) != 1 || aws.ToString(d.Replications[0].SourceFileSystemId) != src ||
		aws.ToString(d.Replications[0].Destinations[0].FileSystemId) != dst {
		t.Fatalf("replication after the switch-back: %+v %v", d, err)
	}
	writeFile(t, p.a, src, "d.txt", "protected again\n")
	testkit.WaitFor(t, "a new change replicated into the old replica", 20*time.Second, func() bool {
		got, err := readFile(p.b, dst, "d.txt")
		return err == nil && got == "protected again\n"
	})

	// A region down: --all-regions reports it and shows the other.
	if err := p.b.stopAPI(ctx); err != nil {
		t.Fatal(err)
	}
	out, err = runRoot(t, "status", "--all-regions")
	if err != nil || !strings.Contains(out, "unreachable: ap-northeast-2: ") || !strings.Contains(out, "ap-northeast-1  ") {
		t.Fatalf("status --all-regions with a region down: %v\n%s", err, out)
	}
	// Asked alone, the region that is down is an error.
	if out, err := runRoot(t, "status", "--region", "ap-northeast-2"); err == nil {
		t.Fatalf("status of a region that is down succeeded:\n%s", out)
	}
}

// waitAvailable waits until the file system id of c's region is available
// (CreateFileSystem answers while it is still creating, and a replication
// configuration of a creating one is refused).
// replicated creates a file system in ap-northeast-1 (creation token
// token), writes a.txt with content into it unless content is "", and
// replicates it to ap-northeast-2; it returns the source and destination ids.
func (p *opsPair) replicated(t *testing.T, token, content string) (src, dst string) {
	t.Helper()
	ctx := context.Background()
	orig, err := p.efsA.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(token)})
	if err != nil {
		t.Fatal(err)
	}
	src = aws.ToString(orig.FileSystemId)
	waitAvailable(t, p.efsA, src)
	if content != "" {
		writeFile(t, p.a, src, "a.txt", content)
	}
	rc, err := p.efsA.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: aws.String(src),
		Destinations: []types.DestinationToCreate{{Region: aws.String("ap-northeast-2")}}})
	if err != nil {
		t.Fatal(err)
	}
	return src, aws.ToString(rc.Destinations[0].FileSystemId)
}

// waitEnabled waits until the destination region describes the
// replication into dst as ENABLED.
func (p *opsPair) waitEnabled(t *testing.T, dst string) {
	t.Helper()
	testkit.WaitFor(t, "replication ENABLED", 30*time.Second, func() bool {
		out, err := p.efsB.DescribeReplicationConfigurations(t.Context(), &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(dst)})
		return err == nil && len(out.Replications) == 1 && out.Replications[0].Destinations[0].Status == types.ReplicationStatusEnabled
	})
}

func waitAvailable(t *testing.T, c *efs.Client, id string) {
	t.Helper()
	testkit.WaitFor(t, id+" available", 30*time.Second, func() bool {
		out, err := c.DescribeFileSystems(t.Context(), &efs.DescribeFileSystemsInput{FileSystemId: aws.String(id)})
		return err == nil && len(out.FileSystems) == 1 && out.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable
	})
}

// TestFailbackResumes: a failback cut short after it created its
// replication (its process or a region killed, as kill -9 of regionfs dev
// in the middle of the resync did) is completed by running it again. The
// second run failed at its first step: "set the protection of … to
// DISABLED: … ReplicationAlreadyExists".
func TestFailbackResumes(t *testing.T) {
	ctx := t.Context()
	p := startOpsPair(t)
	src, dst := p.replicated(t, "resume", "written in ap-northeast-1\n")
	p.waitEnabled(t, dst)
	if _, err := p.efsB.DeleteReplicationConfiguration(ctx, &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: aws.String(src)}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the replica writable", 10*time.Second, func() bool {
		fs, err := p.b.control.region.EngineFS(dst)
		if err != nil {
			return false
		}
		_, err = fs.Mkdir(ctx, engine.RootCred, engine.RootIno, "probe", engine.SetAttr{})
		return err == nil
	})
	writeFile(t, p.b, dst, "c.txt", "written in ap-northeast-2 after the failover\n")
	// The first two steps of a failback, then the failback command again.
	if _, err := p.efsA.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: aws.String(src),
		ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionDisabled}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.efsB.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: aws.String(dst),
		Destinations: []types.DestinationToCreate{{Region: aws.String("ap-northeast-1"), FileSystemId: aws.String(src)}}}); err != nil {
		t.Fatal(err)
	}
	out, err := runRoot(t, "failback", dst, "--region", "ap-northeast-2", "--original", src, "--original-region", "ap-northeast-1", "--switch-back")
	t.Logf("failback --switch-back again:\n%s", out)
	if err != nil {
		t.Fatalf("failback again: %v", err)
	}
	for _, want := range []string{
		fmt.Sprintf("replicating %s (ap-northeast-2) into %s (ap-northeast-1): already configured, waiting for it", dst, src),
		fmt.Sprintf("switched back: %s (ap-northeast-1) is writable again", src),
		fmt.Sprintf("protected again: %s (ap-northeast-1) replicates into %s (ap-northeast-2), ENABLED", src, dst),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("failback output lacks %q", want)
		}
	}
	if got, err := readFile(p.a, src, "c.txt"); err != nil || got != "written in ap-northeast-2 after the failover\n" {
		t.Errorf("the original after the switch-back: %q %v", got, err)
	}
}
