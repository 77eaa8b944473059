package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the configuration of one region server (`regionfs serve`).
type Config struct {
	// Region is the AWS-style region name this server plays (us-east-1).
	Region string `yaml:"region"`
	// AccountID is the 12-digit account id used in ARNs and OwnerId.
	AccountID string `yaml:"account_id"`
	// DataDir holds the metadata store (kv/), the block files (blocks/) and
	// local state. Required.
	DataDir string `yaml:"data_dir"`
	// Metadata selects the metadata store: empty (the default) is the
	// embedded Pebble store under DataDir/kv; postgres://… (or
	// postgresql://…) is a PostgreSQL database, which every node of the
	// region shares (pgx connection string; the database is created when
	// absent).
	Metadata string `yaml:"metadata,omitempty"`
	// Blocks selects the block store: empty (the default) is one file per
	// block under DataDir/blocks; s3://bucket[/prefix]?endpoint=…&region=…
	// &access_key_id=…&secret_access_key=… is an S3-compatible bucket
	// (created when absent), read through a local cache under
	// DataDir/cache of ObjectCacheSize bytes.
	Blocks string `yaml:"blocks,omitempty"`
	// ObjectCacheSize bounds the local cache of an object-store block
	// store (default 1GiB).
	ObjectCacheSize Size `yaml:"object_cache_size,omitempty"`
	// Cluster configures several nodes serving one region from a shared
	// PostgreSQL metadata store (Metadata) and bucket (Blocks).
	Cluster Cluster `yaml:"cluster,omitempty"`
	// API is the region's HTTP API listener (EFS, EC2, CloudWatch, SNS,
	// /metrics).
	API Listener `yaml:"api"`
	// NFS configures the mount targets.
	NFS NFS `yaml:"nfs"`
	// Credentials are the access keys accepted (global, like IAM: every
	// region and the edge should share them).
	Credentials []Credential `yaml:"credentials"`
	// VPC is the one VPC of the region; its subnets are Subnets.
	VPC VPC `yaml:"vpc"`
	// Subnets are where mount targets can be created.
	Subnets []Subnet `yaml:"subnets"`
	// SecurityGroups restrict which clients can reach a mount target.
	SecurityGroups []SecurityGroup `yaml:"security_groups"`
	// KMSKeys are the key-encryption keys for encrypted file systems. The
	// alias alias/aws/elasticfilesystem must name one of them (the default
	// key of `Encrypted` without `KmsKeyId`).
	KMSKeys []KMSKey `yaml:"kms_keys"`
	// Replication is this region's replication endpoint.
	Replication Listener `yaml:"replication"`
	// Peers are the other regions, for replication.
	Peers []Peer `yaml:"peers"`
	// Replicate tunes replication.
	Replicate Replicate `yaml:"replicate"`
	// Control tunes the control plane.
	Control Control `yaml:"control"`
	// SNS configures notifications (topics, alarm actions).
	SNS SNS `yaml:"sns,omitempty"`
	// Drills configures the disaster-recovery drills of this region's
	// replicas: where they report, and the ones it runs on a schedule.
	Drills Drills `yaml:"drills,omitempty"`
	// Engine tunes the storage engine.
	Engine Engine `yaml:"engine"`
	// Log configures logging.
	Log Log `yaml:"log"`
}

// Listener is an address to listen on, with optional TLS.
type Listener struct {
	// Listen is host:port.
	Listen string `yaml:"listen"`
	TLS    *TLS   `yaml:"tls,omitempty"`
}

// TLS is certificate material. For a server, CertFile/KeyFile are its own
// and CAFile (if set) authenticates clients (mutual TLS); for a client, CAFile
// authenticates the server and CertFile/KeyFile are its client certificate.
type TLS struct {
	CertFile string `yaml:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty"`
	CAFile   string `yaml:"ca_file,omitempty"`
}

// NFS configures the mount targets.
type NFS struct {
	// Port every mount target serves NFS and MOUNT on (default 2049).
	Port int `yaml:"port"`
	// TLSClientAuth asks NFS-over-TLS clients for a certificate issued by
	// the region's NFS CA (DATA_DIR/tls/ca.pem): "none" (default),
	// "request" (verified when given; plain text still served) or
	// "require" (mutual TLS: plain-text clients, which present none, are
	// refused with AUTH_ERROR AUTH_TOOWEAK and a log line, whatever the
	// file system's policy).
	TLSClientAuth string `yaml:"tls_client_auth,omitempty"`
	// RequestBuffer bounds the request bytes the region's mount targets
	// hold in memory at once (default 128MiB), ReplyBuffer the reply bytes
	// not yet written to their clients (default 256MiB); RecordTimeout
	// bounds receiving one request once it has started (default 10s). A
	// client that stops reading or sending slows down only itself.
	RequestBuffer Size          `yaml:"request_buffer,omitempty"`
	ReplyBuffer   Size          `yaml:"reply_buffer,omitempty"`
	RecordTimeout time.Duration `yaml:"record_timeout,omitempty"`
	// IdleTimeout closes a client connection without traffic (no request
	// read or answered, none in progress) for that long (default 6m, as
	// Linux's nfsd); its client reconnects when it next sends a call.
	IdleTimeout time.Duration `yaml:"idle_timeout,omitempty"`
	// MaxConnections bounds the client connections of the region's mount
	// targets together (default 4096, or a quarter of the process's
	// open-file limit if that is smaller); at the limit a new connection
	// closes the one idle longest of the client address holding the most.
	// A client address holds at most a quarter of it (at least 64).
	MaxConnections int `yaml:"max_connections,omitempty"`
}

// Credential is one access key. The secret is given inline or in a file
// (whose content, trimmed, is the secret).
type Credential struct {
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key,omitempty"`
	SecretFile      string `yaml:"secret_file,omitempty"`
}

// VPC is the region's virtual network as EC2 describes it.
type VPC struct {
	// ID defaults to a stable id derived from the region name.
	ID string `yaml:"id"`
	// CIDR defaults to the smallest block containing every subnet.
	CIDR string `yaml:"cidr"`
}

// Subnet is one subnet of the VPC.
type Subnet struct {
	ID               string `yaml:"id"`
	AvailabilityZone string `yaml:"availability_zone"`
	// AvailabilityZoneID defaults to the AWS-style id (us-east-1b → use1-az2).
	AvailabilityZoneID string `yaml:"availability_zone_id"`
	// CIDR is the IPv4 block mount targets get their address from; each
	// mount target listens on its own address, so the host must own them
	// (any address of 127.0.0.0/8 on loopback).
	CIDR string `yaml:"cidr"`
	// ListenAddress, when set, is the local address this subnet's mount
	// targets bind to instead of their own (a host that does not own the
	// subnet's addresses, behind NAT); then one mount target per subnet.
	ListenAddress string `yaml:"listen_address,omitempty"`
	// Name is the subnet's Name tag.
	Name string `yaml:"name,omitempty"`
}

// SecurityGroup admits NFS clients from its ingress CIDR blocks.
type SecurityGroup struct {
	ID          string `yaml:"id"`
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`
	// Ingress lists the CIDR blocks allowed to connect to the NFS port.
	Ingress []string `yaml:"ingress"`
}

// KMSKey is one key-encryption key; its 32-byte material is in KeyFile
// (raw, hex or base64).
type KMSKey struct {
	ID      string   `yaml:"id"`
	Aliases []string `yaml:"aliases,omitempty"`
	KeyFile string   `yaml:"key_file"`
}

// Peer is another region.
type Peer struct {
	Name string `yaml:"name"`
	// Replication is the peer's replication endpoint, host:port.
	Replication string `yaml:"replication"`
	// API is the peer's API listener (used by `regionfs dev` and tools).
	API string `yaml:"api,omitempty"`
	TLS *TLS   `yaml:"tls,omitempty"`
	// Secret authenticates the region pair (both regions configure the
	// same one, at least 16 characters), inline or in SecretFile.
	Secret     string `yaml:"secret,omitempty"`
	SecretFile string `yaml:"secret_file,omitempty"`
}

// Replicate tunes replication; zero values mean the defaults.
type Replicate struct {
	// Heartbeat: how often an idle source tells its destinations where it
	// stands (100ms).
	Heartbeat time.Duration `yaml:"heartbeat,omitempty"`
	// PauseAfter: a destination out of reach this long shows PAUSED (5m).
	PauseAfter time.Duration `yaml:"pause_after,omitempty"`
	// RetainAge: local journal kept beyond what destinations need (15m).
	RetainAge time.Duration `yaml:"retain_age,omitempty"`
	// ForkRetain: how long both journals are kept from a failover's fork
	// point, so that a failback sends only changes (168h).
	ForkRetain time.Duration `yaml:"fork_retain,omitempty"`
	// MaxLagAge and MaxLagBytes: a destination further behind loses its
	// journal pin and needs a resync (24h, 64GiB).
	MaxLagAge   time.Duration `yaml:"max_lag_age,omitempty"`
	MaxLagBytes Size          `yaml:"max_lag_bytes,omitempty"`
	// Lease enables hard fencing: a source whose destination stopped
	// acknowledging for this long stops taking writes, and a promotion
	// waits for it (0: soft fencing).
	Lease time.Duration `yaml:"lease,omitempty"`
	// VerifyInterval: how often each source compares range checksums with
	// its replica at a common seq and repairs what differs (0: only on
	// demand, regionfs verify).
	VerifyInterval time.Duration `yaml:"verify_interval,omitempty"`
	// AutoFailoverTopicARN is an SNS topic of this region notified of
	// every automatic failover (opt-in per configuration: regionfs
	// replication policy --auto-failover-after).
	AutoFailoverTopicARN string `yaml:"auto_failover_topic_arn,omitempty"`
	// SelfSecretFile authenticates replication between zones of this
	// region (default: DataDir/replication-self.secret, generated).
	SelfSecretFile string `yaml:"self_secret_file,omitempty"`
}

// PeerSecret returns a peer's secret (inline or from its file).
func (p Peer) PeerSecret() ([]byte, error) {
	s := p.Secret
	if p.SecretFile != "" {
		b, err := os.ReadFile(p.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("config: replication secret of peer %s: %w", p.Name, err)
		}
		s = strings.TrimSpace(string(b))
	}
	if len(s) < 16 {
		return nil, fmt.Errorf("config: the replication secret of peer %s must have at least 16 characters", p.Name)
	}
	return []byte(s), nil
}

// Cluster configures the nodes of a region that share one PostgreSQL
// metadata store: one node, the owner, holds the region's lease and serves
// it (API, mount targets, replication); the others wait and take over when
// the owner's lease runs out (a crashed owner) or is handed over (a clean
// stop). Every metadata commit is fenced by the lease's token.
type Cluster struct {
	// Node names this node; unique per node of the region (default: the
	// host name).
	Node string `yaml:"node,omitempty"`
	// Lease is how long the owner's lease runs without renewal (renewed
	// every third of it); a standby takes over within about Lease after
	// the owner died (default 6s).
	Lease time.Duration `yaml:"lease,omitempty"`
	// Spread spreads the region's file systems over its nodes: each file
	// system (with its clones) is owned by one node through a lease of its
	// own and served there (its mount targets follow it), the nodes share
	// them out evenly and take over a dead node's within about Lease; the
	// node holding the region's lease also runs the API, the control plane
	// and the replication, and serves the file systems that replicate.
	// Off: one node serves the whole region, the others wait.
	Spread bool `yaml:"spread,omitempty"`
}

// Drills configures disaster-recovery drills (regionfs drill).
type Drills struct {
	// NotificationTopicARN is an SNS topic of this region notified at the
	// end of every drill that names no topic of its own.
	NotificationTopicARN string `yaml:"notification_topic_arn,omitempty"`
	// History is how many drills the region keeps (default 200).
	History int `yaml:"history,omitempty"`
	// Schedules are drills the region runs by itself.
	Schedules []DrillSchedule `yaml:"schedules,omitempty"`
}

// DrillSchedule is a drill the region runs when its schedule says.
type DrillSchedule struct {
	// Name identifies the schedule (unique).
	Name string `yaml:"name"`
	// FileSystemID is the replica (in this region) or its source.
	FileSystemID string `yaml:"file_system_id"`
	// Schedule is cron-like: five fields (minute hour day-of-month month
	// day-of-week), @daily, @weekly, … or "@every 24h".
	Schedule string `yaml:"schedule"`
	// TimeZone of Schedule (an IANA name; default: the server's).
	TimeZone string `yaml:"time_zone,omitempty"`
	// SubnetID and SecurityGroups of the clone's mount target (default: a
	// subnet of the replica's zone and the VPC's default group).
	SubnetID       string   `yaml:"subnet_id,omitempty"`
	SecurityGroups []string `yaml:"security_groups,omitempty"`
	// Keep keeps the clone and its mount target after the drill.
	Keep bool `yaml:"keep,omitempty"`
	// Check is a shell command run against the clone (its address in
	// REGIONFS_DRILL_IP, …); exit status 0 passes.
	Check        string        `yaml:"check,omitempty"`
	CheckTimeout time.Duration `yaml:"check_timeout,omitempty"`
	// MaxRPO and MaxRTO are objectives: the drill fails past them.
	MaxRPO time.Duration `yaml:"max_rpo,omitempty"`
	MaxRTO time.Duration `yaml:"max_rto,omitempty"`
	// NotificationTopicARN overrides drills.notification_topic_arn.
	NotificationTopicARN string `yaml:"notification_topic_arn,omitempty"`
}

// SNS configures the region's notifications.
type SNS struct {
	// PublicURL is where subscribers reach this region's SNS without
	// signing: the SubscribeURL, UnsubscribeURL and SigningCertURL of the
	// messages start with it (default: the API listener's URL).
	PublicURL string `yaml:"public_url,omitempty"`
	// SMTP is the relay email and email-json subscriptions go through
	// (none: those protocols are refused).
	SMTP *SMTP `yaml:"smtp,omitempty"`
}

// SMTP is a mail relay.
type SMTP struct {
	// Address is host:port.
	Address string `yaml:"address"`
	// From is the sender address of notifications.
	From string `yaml:"from"`
	// Username and the password (inline or in PasswordFile) authenticate
	// with PLAIN when set.
	Username     string `yaml:"username,omitempty"`
	Password     string `yaml:"password,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty"`
	// StartTLS requires STARTTLS (CAFile, when set, authenticates the
	// relay).
	StartTLS bool   `yaml:"starttls,omitempty"`
	CAFile   string `yaml:"ca_file,omitempty"`
}

// Control tunes the control plane.
type Control struct {
	// TransitionDelay is how long file systems and mount targets stay in
	// creating/updating/deleting (default 1s; 0 is allowed).
	TransitionDelay *time.Duration `yaml:"transition_delay"`
}

// Engine tunes the storage engine; zero values take the engine's defaults.
type Engine struct {
	// CacheSize is the Pebble block cache shared by the metadata store.
	CacheSize      Size          `yaml:"cache_size"`
	BlockCacheSize Size          `yaml:"block_cache_size"`
	InlineMax      Size          `yaml:"inline_max"`
	MaxRecordSize  Size          `yaml:"max_record_size"`
	MaxGroup       int           `yaml:"max_group"`
	QueueDepth     int           `yaml:"queue_depth"`
	BatchEntries   int           `yaml:"batch_entries"`
	GCInterval     time.Duration `yaml:"gc_interval"`
	MergeDelay     time.Duration `yaml:"merge_delay"`
	ScrubInterval  time.Duration `yaml:"scrub_interval"`
	MemTableSize   Size          `yaml:"memtable_size"`
	// MinFreeSpace is the data disk's free-space floor: below it, writes
	// that grow what the region stores are refused (NFS3ERR_NOSPC,
	// InsufficientThroughputCapacity) and deletions still work (default
	// 256MiB). ReservedSpace is the reserve file kept in the data
	// directory and given back when the disk fills up, so that the region
	// can restart and delete (default 128MiB; none when both metadata and
	// blocks are in shared stores). See package engine/space.
	MinFreeSpace  Size `yaml:"min_free_space"`
	ReservedSpace Size `yaml:"reserved_space"`
}

// Log configures the slog handler.
type Log struct {
	// Level is debug, info, warn or error (default info).
	Level string `yaml:"level"`
	// Format is text or json (default text).
	Format string `yaml:"format"`
}

// Defaults.
const (
	DefaultNFSPort         = 2049
	DefaultCacheSize       = Size(128 << 20)
	DefaultObjectCacheSize = Size(1 << 30)
	DefaultLease           = 6 * time.Second
	DefaultTransitionDelay = time.Second
	DefaultAPIListen       = "127.0.0.1:7070"
)

// Load reads, completes and validates a region config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes, completes and validates a region config.
func Parse(b []byte) (*Config, error) {
	var c Config
	if err := decodeStrict(b, &c); err != nil {
		return nil, err
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func decodeStrict(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty config")
		}
		return err
	}
	return nil
}

// Marshal encodes c as YAML.
func (c *Config) Marshal() ([]byte, error) { return yaml.Marshal(c) }

// TransitionDelayOrDefault is the configured transition delay.
func (c *Config) TransitionDelayOrDefault() time.Duration {
	if c.Control.TransitionDelay == nil {
		return DefaultTransitionDelay
	}
	return *c.Control.TransitionDelay
}
