package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/regionfs/regionfs/bench/internal/benchkit"
	"github.com/regionfs/regionfs/internal/config"
	"github.com/regionfs/regionfs/internal/engine/kms"
)

// The benchmark's own topology: the same shape as `regionfs dev` (two
// regions and an edge), but each region is its own `regionfs serve`
// process, as in production, on loopback addresses of its own so that a
// `regionfs dev` or a dev e2e test running on the machine does not
// collide with it.
const (
	benchEdge   = "127.40.0.1:7070"
	benchNFS    = 12049
	benchAcct   = "123456789012"
	replPort    = "7443"
	benchAccess = "AKIABENCHREPLICATE01"
)

type benchRegion struct {
	name, ip, zone, cidr, subnet, sg string
}

var benchRegions = []benchRegion{
	{east, "127.41.0.1", "us-east-1a", "127.41.1.0/24", "subnet-0be0c41000000001a", "sg-0be0c41000000001a"},
	{west, "127.42.0.1", "us-west-2a", "127.42.1.0/24", "subnet-0be0c42000000002a", "sg-0be0c42000000002a"},
}

// cluster is the running topology.
type cluster struct {
	p       *procs
	bin     string
	secret  string
	regions map[string]*proc
	dir     string
	edge    *proc
	starts  int
	profDir string // CPU profiles of the serve processes, if not empty
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startCluster writes the configs under dir and starts both regions and
// the edge.
func startCluster(p *procs, bin, dir, profDir string) (*cluster, error) {
	for _, a := range []string{benchEdge, benchRegions[0].ip + ":7070", benchRegions[1].ip + ":7070"} {
		if benchkit.Listening(a) {
			return nil, fmt.Errorf("%s is in use (another benchmark running?)", a)
		}
	}
	c := &cluster{p: p, bin: bin, secret: randomHex(20), regions: map[string]*proc{}, dir: dir, profDir: profDir}
	secretFile := filepath.Join(dir, "replication.secret")
	if err := os.WriteFile(secretFile, []byte(randomHex(20)+"\n"), 0o600); err != nil {
		return nil, err
	}
	cred := config.Credential{AccessKeyID: benchAccess, SecretAccessKey: c.secret}
	delay := 500 * time.Millisecond
	for _, r := range benchRegions {
		rdir := filepath.Join(dir, r.name)
		keyFile := filepath.Join(rdir, "kms", "default.key")
		if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
			return nil, err
		}
		k, err := kms.NewDataKey()
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
			return nil, err
		}
		cfg := &config.Config{
			Region:      r.name,
			AccountID:   benchAcct,
			DataDir:     filepath.Join(rdir, "data"),
			API:         config.Listener{Listen: r.ip + ":7070"},
			NFS:         config.NFS{Port: benchNFS},
			Credentials: []config.Credential{cred},
			Replication: config.Listener{Listen: r.ip + ":" + replPort},
			Control:     config.Control{TransitionDelay: &delay},
			KMSKeys:     []config.KMSKey{{ID: "0be0c400-0000-4000-8000-" + randomHex(6), Aliases: []string{config.DefaultAlias}, KeyFile: keyFile}},
			SecurityGroups: []config.SecurityGroup{{ID: r.sg, Name: "default", Description: "bench: NFS from loopback",
				Ingress: []string{"127.0.0.0/8"}}},
			Subnets: []config.Subnet{{ID: r.subnet, AvailabilityZone: r.zone, CIDR: r.cidr, Name: "bench-" + r.zone}},
			Log:     config.Log{Level: "warn", Format: "text"},
		}
		for _, o := range benchRegions {
			if o.name != r.name {
				cfg.Peers = append(cfg.Peers, config.Peer{Name: o.name, Replication: o.ip + ":" + replPort, API: o.ip + ":7070", SecretFile: secretFile})
			}
		}
		cfg.SetDefaults()
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("config of %s: %w", r.name, err)
		}
		b, err := cfg.Marshal()
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, r.name+".yaml")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, err
		}
		if err := c.startRegion(r.name); err != nil {
			return nil, err
		}
	}
	for _, r := range benchRegions {
		if err := waitPort(r.ip+":7070", c.regions[r.name], 60*time.Second); err != nil {
			return nil, err
		}
	}
	edge := config.Edge{Listen: benchEdge, Credentials: []config.Credential{cred}, Log: config.Log{Level: "warn", Format: "text"}}
	for _, r := range benchRegions {
		edge.Regions = append(edge.Regions, config.EdgeRegion{Name: r.name, API: r.ip + ":7070"})
	}
	b, err := yaml.Marshal(&edge)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "edge.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	if c.edge, err = p.start("regionfs edge", filepath.Join(dir, "edge.log"), bin, "edge", "--config", path); err != nil {
		return nil, err
	}
	if err := waitPort(benchEdge, c.edge, 30*time.Second); err != nil {
		return nil, err
	}
	return c, nil
}

// startRegion starts (or restarts) one region's `regionfs serve`.
func (c *cluster) startRegion(name string) error {
	c.starts++
	logPath := filepath.Join(c.dir, fmt.Sprintf("%s.%d.log", name, c.starts))
	var env []string
	if c.profDir != "" {
		env = append(env, "REGIONFS_CPUPROFILE="+filepath.Join(c.profDir, fmt.Sprintf("%s.%d.pprof", name, c.starts)))
	}
	pr, err := c.p.startEnv("regionfs serve "+name, logPath, env, c.bin, "serve", "--config", filepath.Join(c.dir, name+".yaml"))
	if err != nil {
		return err
	}
	c.regions[name] = pr
	return nil
}

// stopRegion stops one region (SIGTERM: a clean shutdown) — an outage.
func (c *cluster) stopRegion(name string) error { return c.regions[name].stop(30 * time.Second) }

// restartRegion brings a stopped region back and waits for its API.
func (c *cluster) restartRegion(name string) error {
	if err := c.startRegion(name); err != nil {
		return err
	}
	for _, r := range benchRegions {
		if r.name == name {
			return waitPort(r.ip+":7070", c.regions[name], 60*time.Second)
		}
	}
	return fmt.Errorf("no region %s", name)
}

// alive reports a region or the edge that exited.
func (c *cluster) alive() error {
	for name, pr := range c.regions {
		if pr.exited() {
			return fmt.Errorf("regionfs serve %s exited: %v\n%s", name, pr.err, pr.tail(30))
		}
	}
	if c.edge.exited() {
		return fmt.Errorf("regionfs edge exited: %v\n%s", c.edge.err, c.edge.tail(30))
	}
	return nil
}
