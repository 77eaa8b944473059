package iac

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/api/cloudformation"
	"github.com/regionfs/regionfs/internal/api/cloudwatch"
	"github.com/regionfs/regionfs/internal/api/ec2"
	kmsapi "github.com/regionfs/regionfs/internal/api/kms"
	"github.com/regionfs/regionfs/internal/api/region"
	snsapi "github.com/regionfs/regionfs/internal/api/sns"
	"github.com/regionfs/regionfs/internal/cfn"
	"github.com/regionfs/regionfs/internal/cfn/resources"
	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/controltest"
	"github.com/regionfs/regionfs/internal/control/keys"
	"github.com/regionfs/regionfs/internal/control/network"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kms/kmstest"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/monitor"
	"github.com/regionfs/regionfs/internal/monitor/notify"
	"github.com/regionfs/regionfs/internal/serve/servetest"
	"github.com/regionfs/regionfs/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const (
	regionName = "us-east-1"
	accountID  = "123456789012"
	accessKey  = "AKIAREGIONFSIACTEST1"
	secretKey  = "aWFjIHRlc3Qgc2VjcmV0IGtleSAwMTIzNDU2"
	vpcID      = "vpc-0a1b2c3d4e5f60718"
	subA       = "subnet-0a1b2c3d4e5f60001"
	defaultSG  = "sg-0a1b2c3d4e5f60001"
)

// env is one region with every IaC API.
type env struct {
	url    string
	mts    *controltest.MountTargets
	region *control.Region
	keys   *keys.Keys
	net    *network.Network
	stacks *cfn.Engine
	eng    *engine.Engine
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	ring := kmstest.Keyring(t, "cdeb22c5-ef31-629d-bed1-063e81a1f3c0", control.DefaultKMSKey)
	if err := ring.Attach(filepath.Join(t.TempDir(), "kms", "keyring.json")); err != nil {
		t.Fatal(err)
	}
	store := kv.NewMemory()
	eng, err := engine.Open(ctx, engine.Options{KV: store, Disk: disk.NewMem(), Keyring: ring, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	nw, err := network.Open(network.Options{Region: regionName, AccountID: accountID, VPCID: vpcID, KV: store, NFSPort: 2049, Logger: log,
		Seed: []network.Group{{ID: defaultSG, Name: "default", Description: "default group", Rules: []network.Rule{
			{Protocol: "tcp", FromPort: 2049, ToPort: 2049, CIDRv4: "127.0.0.0/8"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	mts := controltest.NewMountTargets()
	info := control.RegionInfo{Name: regionName, AccountID: accountID, VPCID: vpcID,
		Subnets: []control.Subnet{{ID: subA, AvailabilityZone: "us-east-1a", AvailabilityZoneID: "use1-az1", CIDR: netip.MustParsePrefix("127.1.1.0/24")}}}
	src := groupSource{nw}
	reg, err := control.Open(ctx, control.Options{Region: info, KV: store, Engine: eng, Keyring: ring, MountTargets: mts,
		SecurityGroups: src, NFSPort: 2049, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	nw.Watch(func(ids []string) { reg.SecurityGroupsChanged(context.Background(), ids) })
	k, err := keys.Open(keys.Options{Region: regionName, AccountID: accountID, Keyring: ring, Engine: eng, Logger: log,
		Changed: func(ctx context.Context, st engine.KeyState) { reg.RefreshMountTargets(ctx) }})
	if err != nil {
		t.Fatal(err)
	}
	// Monitoring in a store of its own, as serve has it.
	monStore := kv.NewMemory()
	sns, err := notify.Open(notify.Options{KV: monStore, Region: regionName, AccountID: accountID, PublicURL: "http://127.1.0.1:7070", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	mon, err := monitor.Open(monitor.Options{KV: monStore, Region: regionName, AccountID: accountID, Notifier: sns, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	types := resources.Registry(resources.Options{Region: reg, Keys: k, Network: resources.Network{Network: nw, InUse: reg.MountTargetsUsingGroup},
		Alarms: mon, Topics: sns, PollInterval: 10 * time.Millisecond})
	stacks, err := cfn.Open(cfn.Options{Region: regionName, AccountID: accountID, KV: store, Types: types, Logger: log,
		AZs: func(string) []string { return []string{"us-east-1a"} }})
	if err != nil {
		t.Fatal(err)
	}
	ec2h := ec2.NewHandler(ec2.Region{Name: regionName, AccountID: accountID, VPC: ec2.VPC{ID: vpcID, CIDR: netip.MustParsePrefix("127.1.0.0/16")},
		Subnets: []ec2.Subnet{{ID: subA, AvailabilityZone: "us-east-1a", AvailabilityZoneID: "use1-az1", CIDR: netip.MustParsePrefix("127.1.1.0/24")}}}, log)
	ec2h.SetNetwork(nw, reg.MountTargetsUsingGroup)
	cf := cloudformation.NewHandler(stacks, log)
	srv, err := region.New(region.Options{Name: regionName, Secret: func(id string) (string, bool) { return secretKey, id == accessKey },
		EC2: ec2h, KMS: kmsapi.NewHandler(k, log), CloudFormation: cf, Monitoring: cloudwatch.NewHandler(mon, log), SNS: snsapi.NewHandler(sns, log),
		Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stacks.Close()
		mon.Close()
		sns.Close()
		k.Close()
		reg.Close()
		eng.Close()
	})
	url := servetest.Start(t, srv) // stopped before the cleanup above
	return &env{url: url, mts: mts, region: reg, keys: k, net: nw, stacks: stacks, eng: eng}
}

type groupSource struct{ n *network.Network }

func (g groupSource) SecurityGroup(id string) (control.SecurityGroup, bool) {
	ng, ok := g.n.Group(id)
	if !ok {
		return control.SecurityGroup{}, false
	}
	return control.SecurityGroup{ID: ng.ID, Name: ng.Name, Description: ng.Description, VPCID: ng.VPCID, Ingress: g.n.Ingress([]string{id})}, true
}

func (g groupSource) DefaultSecurityGroup(vpc string) (string, bool) { return g.n.DefaultGroup(vpc) }

// cliEnv is the environment of an aws CLI or boto3 process pointed at e.
func (e *env) cliEnv(t *testing.T) []string {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	os.WriteFile(cfg, []byte("[default]\nregion = us-east-1\n"), 0o600)
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			base = append(base, kv)
		}
	}
	return append(base, "AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey, "AWS_DEFAULT_REGION=us-east-1",
		"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL="+e.url, "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_CONFIG_FILE="+cfg,
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"))
}
