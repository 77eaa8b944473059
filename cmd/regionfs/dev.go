package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/regionfs/regionfs/internal/config"
	"github.com/regionfs/regionfs/internal/engine/kms"
	"github.com/regionfs/regionfs/internal/engine/kv/pebblekv"
	"github.com/regionfs/regionfs/internal/serve"
)

// The dev topology (DESIGN.md §1): the edge on 127.0.0.1:7070 and each
// region on its own loopback range.
const (
	devEdgeAddr = "127.0.0.1:7070"
	devAccount  = "123456789012"
	devNFSPort  = 12049
)

type devRegion struct {
	name    string
	api     string
	subnets [][2]string // zone, CIDR
}

var devRegions = []devRegion{
	{"us-east-1", "127.1.0.1:7070", [][2]string{{"us-east-1a", "127.1.1.0/24"}, {"us-east-1b", "127.1.2.0/24"}}},
	{"us-west-2", "127.2.0.1:7070", [][2]string{{"us-west-2a", "127.2.1.0/24"}, {"us-west-2b", "127.2.2.0/24"}}},
}

// devNet is the loopback layout of a dev: with base 0 the standard one
// above; with base B the edge on 127.B.0.1:7070 and the regions on
// 127.(B+1) and 127.(B+2), so that tests can run a dev of their own
// beside another one (--loopback-base, hidden).
type devNet struct{ base int }

func (n devNet) edge() string {
	if n.base == 0 {
		return devEdgeAddr
	}
	return fmt.Sprintf("127.%d.0.1:7070", n.base)
}

func (n devNet) regions() []devRegion {
	if n.base == 0 {
		return devRegions
	}
	var out []devRegion
	for i, r := range devRegions {
		o := n.base + 1 + i
		out = append(out, devRegion{r.name, fmt.Sprintf("127.%d.0.1:7070", o),
			[][2]string{{r.subnets[0][0], fmt.Sprintf("127.%d.1.0/24", o)}, {r.subnets[1][0], fmt.Sprintf("127.%d.2.0/24", o)}}})
	}
	return out
}

func newDevCmd() *cobra.Command {
	var dataDir string
	var lf logFlags
	var be devBackends
	var dn devNet
	cmd := &cobra.Command{
		Use:   "dev [--data-dir DIR] [--metadata-url postgres://… --blocks-url s3://…]",
		Short: "Run two regions and the edge on loopback, for trying regionfs out",
		Long: `Dev starts, in one process, the regions us-east-1 (API 127.1.0.1:7070, subnets
127.1.1.0/24 and 127.1.2.0/24) and us-west-2 (API 127.2.0.1:7070, subnets
127.2.1.0/24 and 127.2.2.0/24), one security group each, mount targets on their
subnet's addresses with NFS on port 12049, and the edge, the one client
endpoint, on http://127.0.0.1:7070. Credentials are generated once and kept
in the data directory, like everything else: data persists across restarts.

It prints, and writes to DIR/env.sh, the environment that points the aws CLI,
boto3 and the SDKs at the edge:

  regionfs dev &
  . regionfs-data/env.sh
  aws efs create-file-system --creation-token demo

'regionfs dev region stop us-east-1' takes a region's API and NFS down while
the edge stays up (a regional outage on demand); 'region start' brings it back.

With --metadata-url and --blocks-url (or REGIONFS_DEV_METADATA_URL and
REGIONFS_DEV_BLOCKS_URL) the regions keep their metadata in PostgreSQL and
their blocks in an S3-compatible bucket instead of under the data directory;
a literal {region} in either is replaced by each region's name, so every
region gets its own database and bucket (created when absent).
scripts/backends.sh up DIR starts both on loopback and prints the two URLs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(lf.apply(config.Log{}), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if dn.base < 0 || dn.base > 252 {
				return fmt.Errorf("--loopback-base %d: want 0 to 252", dn.base)
			}
			return runDev(cmd.Context(), dataDir, be, dn, log, cmd.OutOrStdout())
		},
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", "regionfs-data", "directory of every region's data, the credentials and env.sh")
	lf.add(cmd, "info", "text")
	cmd.Flags().StringVar(&be.metadata, "metadata-url", os.Getenv("REGIONFS_DEV_METADATA_URL"),
		"PostgreSQL URL for the regions' metadata ({region} = the region's name; default $REGIONFS_DEV_METADATA_URL, empty: embedded)")
	cmd.Flags().StringVar(&be.blocks, "blocks-url", os.Getenv("REGIONFS_DEV_BLOCKS_URL"),
		"s3://bucket?endpoint=… for the regions' blocks ({region} = the region's name; default $REGIONFS_DEV_BLOCKS_URL, empty: local files)")
	cmd.Flags().IntVar(&dn.base, "loopback-base", 0, "second octet of the edge's loopback address (0: the standard layout); the regions take the next two")
	cmd.Flags().MarkHidden("loopback-base")
	cmd.AddCommand(newDevRegionCmd(&dataDir))
	return cmd
}

// devBackends are the scale-out backends of `regionfs dev` (empty: the
// embedded ones); {region} in a URL is replaced by each region's name.
type devBackends struct{ metadata, blocks string }

func runDev(ctx context.Context, dataDir string, be devBackends, dn devNet, log *slog.Logger, out io.Writer) (err error) {
	dataDir, err = filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	// Refuse a second dev before touching anything: the same data
	// directory, then the edge's address.
	if devRunning(dataDir) {
		return fmt.Errorf("another regionfs dev is running on %s", dataDir)
	}
	edgeAddr, regions := dn.edge(), dn.regions()
	ln, err := listenTCP("edge", edgeAddr)
	if err != nil {
		return fmt.Errorf("%w; is another regionfs dev running (with another --data-dir)?", err)
	}
	defer func() {
		if ln != nil {
			ln.Close() // not handed to the edge
		}
	}()
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return err
	}
	// env.sh is replaced atomically once every region is up, and never
	// removed: its lines stay valid across restarts (the credentials are
	// kept). The edge starts serving after it is written, so a client that
	// reaches the edge finds the current one.
	envPath := filepath.Join(dataDir, "env.sh")
	cred, err := devCredentials(dataDir)
	if err != nil {
		return err
	}
	// The regions' metadata and monitoring stores share one block cache;
	// each takes its memtables' reservation from it.
	cache := pebble.NewCache(int64(config.DefaultCacheSize) + int64(len(regions))*
		(pebblekv.MemTableReservation(0)+pebblekv.MemTableReservation(monitorMemTable)))
	defer cache.Unref()

	nodes := map[string]*node{}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, n := range nodes {
			n.giveUpAfter(backendGrace) // for every region from now, not one after the other
		}
		var unclean []string
		for _, n := range nodes {
			if cerr := n.close(sctx); cerr != nil {
				log.Error("region did not stop cleanly", "region", n.cfg.Region, "err", cerr)
				unclean = append(unclean, n.cfg.Region)
			}
		}
		if len(unclean) > 0 {
			// The reasons are in the log, once: the exit status says the
			// stop was not clean (a unit's "failed" under systemd).
			sort.Strings(unclean)
			err = errors.Join(err, fmt.Errorf("%s did not stop cleanly (the log above says why)", strings.Join(unclean, ", ")))
		}
	}()
	edgeCfg := &config.Edge{Listen: edgeAddr, Credentials: []config.Credential{cred}}
	for _, r := range regions {
		cfg, err := devRegionConfig(dataDir, r, regions, cred)
		if err != nil {
			return err
		}
		if be.metadata != "" || be.blocks != "" {
			cfg.Metadata = strings.ReplaceAll(be.metadata, "{region}", r.name)
			cfg.Blocks = strings.ReplaceAll(be.blocks, "{region}", r.name)
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("dev config of %s: %w", r.name, err)
			}
		}
		n, err := openNode(ctx, cfg, log, cache, exitOnFatal(log))
		if err != nil {
			return fmt.Errorf("region %s: %w", r.name, err)
		}
		nodes[r.name] = n
		if err := n.startAPI(ctx); err != nil {
			return err
		}
		edgeCfg.Regions = append(edgeCfg.Regions, config.EdgeRegion{Name: r.name, API: r.api})
	}
	edgeCfg.SetDefaults()
	if err := edgeCfg.Validate(); err != nil {
		return err
	}
	e, err := newEdge(edgeCfg, log, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	ctl, err := startDevControl(ctx, dataDir, nodes, log)
	if err != nil {
		return err
	}
	defer ctl.close()

	env := devEnv(cred, edgeAddr)
	// NFS over TLS: clients trust both regions' mount-target CAs.
	var caBundle []byte
	for _, r := range regions {
		caBundle = append(caBundle, nodes[r.name].nfsCA.CertPEM()...)
	}
	caPath := filepath.Join(dataDir, "nfs-ca.pem")
	if err := writeFileAtomic(caPath, caBundle, 0o644); err != nil {
		return err
	}
	env += "export REGIONFS_NFS_CA=" + caPath + "\n" + "export REGIONFS_NFS_PORT=" + strconv.Itoa(devNFSPort) + "\n"
	if err := writeFileAtomic(envPath, []byte(env), 0o600); err != nil {
		return err
	}
	edgeRun := serve.Start(ctx, e, ln)
	ln = nil
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = errors.Join(err, edgeRun.Stop(sctx))
	}()
	fmt.Fprintf(out, "regionfs dev: edge on http://%s; regions %s (%s) and %s (%s)\n", edgeAddr, regions[0].name, regions[0].api, regions[1].name, regions[1].api)
	fmt.Fprintf(out, "data in %s; paste these lines, or run: . %s\n\n%s\n", dataDir, envPath, env)
	fmt.Fprintf(out, "then, for example:\n  aws efs create-file-system --creation-token demo\n"+
		"  aws ec2 describe-subnets --query 'Subnets[].[SubnetId,AvailabilityZone,CidrBlock]' --output text\n"+
		"  aws efs create-mount-target --file-system-id fs-… --subnet-id subnet-… --security-groups sg-…\n"+
		"  nfs-ls 'nfs://<mount target IpAddress>//?nfsport=%d&mountport=%d&version=3'\n"+
		"a regional outage: regionfs dev region stop us-east-1 --data-dir %s\n", devNFSPort, devNFSPort, dataDir)
	log.Info("regionfs dev ready", "edge", edgeAddr, "data_dir", dataDir)

	select {
	case <-ctx.Done():
		log.Info("regionfs dev stopping")
		return nil
	case <-edgeRun.Done():
		return nil // the deferred Stop reports why
	}
}

// devEnv is env.sh: the dev endpoint for every service the CLI might call,
// the generated credentials, and nothing that could send them to AWS.
func devEnv(c config.Credential, edgeAddr string) string {
	url := "http://" + edgeAddr
	lines := []string{
		"export AWS_ACCESS_KEY_ID=" + c.AccessKeyID,
		"export AWS_SECRET_ACCESS_KEY=" + c.SecretAccessKey,
		"export AWS_DEFAULT_REGION=us-east-1",
		"export AWS_REGION=us-east-1",
		"export AWS_ENDPOINT_URL=" + url,
		"export AWS_ENDPOINT_URL_EFS=" + url,
		"export AWS_ENDPOINT_URL_CLOUDWATCH=" + url,
		"export AWS_ENDPOINT_URL_SNS=" + url,
		"export AWS_ENDPOINT_URL_EC2=" + url,
		"export AWS_EC2_METADATA_DISABLED=true",
		"export AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=false",
		"unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE",
	}
	return strings.Join(lines, "\n") + "\n"
}

// devCredentials returns the dev access key, generating it at the first
// start.
func devCredentials(dir string) (config.Credential, error) {
	path := filepath.Join(dir, "credentials.json")
	var c struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &c); err != nil || c.AccessKeyID == "" || len(c.SecretAccessKey) < 16 {
			return config.Credential{}, fmt.Errorf("%s is damaged; remove it to generate new credentials", path)
		}
	case errors.Is(err, os.ErrNotExist):
		c.AccessKeyID = "AKIA" + randomString("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
		c.SecretAccessKey = randomString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40)
		b, _ := json.MarshalIndent(c, "", "  ")
		if err := writeFileAtomic(path, append(b, '\n'), 0o600); err != nil {
			return config.Credential{}, err
		}
	default:
		return config.Credential{}, err
	}
	return config.Credential{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey}, nil
}

// devRegionConfig is the config of one dev region, with ids derived from the
// region name so that they stay the same across restarts; it is also written
// to DIR/<region>.yaml for reference.
func devRegionConfig(dir string, r devRegion, regions []devRegion, cred config.Credential) (*config.Config, error) {
	regionDir := filepath.Join(dir, r.name)
	if err := ensureSecretFile(filepath.Join(dir, "replication.secret")); err != nil {
		return nil, err
	}
	keyFile := filepath.Join(regionDir, "kms", "default.key")
	if err := ensureKeyFile(keyFile); err != nil {
		return nil, err
	}
	ip := strings.Split(r.api, ":")[0]
	delay := 500 * time.Millisecond
	cfg := &config.Config{
		Region:      r.name,
		AccountID:   devAccount,
		DataDir:     regionDir,
		API:         config.Listener{Listen: r.api},
		NFS:         config.NFS{Port: devNFSPort},
		Credentials: []config.Credential{cred},
		Replication: config.Listener{Listen: ip + ":7443"},
		Control:     config.Control{TransitionDelay: &delay},
		KMSKeys:     []config.KMSKey{{ID: stableUUID("kms/" + r.name), Aliases: []string{config.DefaultAlias}, KeyFile: keyFile}},
		SecurityGroups: []config.SecurityGroup{{
			ID: "sg-" + stableHex("sg/"+r.name, 17), Name: "default",
			Description: "regionfs dev: NFS from loopback", Ingress: []string{"127.0.0.0/8"},
		}},
	}
	for _, s := range r.subnets {
		cfg.Subnets = append(cfg.Subnets, config.Subnet{
			ID: "subnet-" + stableHex("subnet/"+s[0], 17), AvailabilityZone: s[0], CIDR: s[1], Name: "regionfs-dev-" + s[0],
		})
	}
	for _, o := range regions {
		if o.name != r.name {
			oip := strings.Split(o.api, ":")[0]
			cfg.Peers = append(cfg.Peers, config.Peer{Name: o.name, Replication: oip + ":7443", API: o.api,
				SecretFile: filepath.Join(dir, "replication.secret")})
		}
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dev config of %s: %w", r.name, err)
	}
	b, err := cfg.Marshal()
	if err != nil {
		return nil, err
	}
	header := "# Written by regionfs dev at every start (reference only; edits are overwritten).\n" +
		"# The same region on its own: regionfs serve --config " + filepath.Join(dir, r.name+".yaml") + "\n"
	if err := writeFileAtomic(filepath.Join(dir, r.name+".yaml"), append([]byte(header), b...), 0o600); err != nil {
		return nil, err
	}
	return cfg, nil
}

// ensureSecretFile generates a secret (the dev regions' replication pair
// secret) at the first start.
func ensureSecretFile(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	s := randomString("abcdefghijklmnopqrstuvwxyz0123456789", 40)
	return writeFileAtomic(path, []byte(s+"\n"), 0o600)
}

func ensureKeyFile(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	k, err := kms.NewDataKey()
	if err != nil {
		return err
	}
	return writeFileAtomic(path, []byte(hex.EncodeToString(k)+"\n"), 0o600)
}

// writeFileAtomic writes a file durably: temp file, fsync, rename, fsync
// of the directory; a failure leaves the old file as it was (and no temp
// file). A file that already holds b is not rewritten, so that a restart on
// a full disk does not depend on writing what it already has.
func writeFileAtomic(path string, b []byte, mode os.FileMode) (err error) {
	if old, rerr := os.ReadFile(path); rerr == nil && bytes.Equal(old, b) {
		return nil
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func randomString(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		x, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err) // crypto/rand does not fail on Linux
		}
		b[i] = alphabet[x.Int64()]
	}
	return string(b)
}

func stableHex(s string, n int) string {
	h := sha256.Sum256([]byte("regionfs dev/" + s))
	return hex.EncodeToString(h[:])[:n]
}

func stableUUID(s string) string {
	h := stableHex(s, 32)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
