package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/kms"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/engine/space"
)

// DefaultKMSKey is the alias of the key that encrypts file systems created
// with Encrypted and no KmsKeyId.
const DefaultKMSKey = "alias/aws/elasticfilesystem"

// Default limits (the EFS quotas).
const (
	DefaultMaxFileSystems           = 1000
	DefaultMaxAccessPoints          = 10000 // per file system
	DefaultMaxNetworkInterfaces     = 5000  // mount targets in the region
	DefaultMaxSecurityGroups        = 5     // per mount target
	DefaultMaxProvisionedThroughput = 3414  // MiB/s
	DefaultThroughputCooldown       = 24 * time.Hour
	MaxTags                         = 50 // per resource
)

// Subnet is a subnet mount targets can be created in.
type Subnet struct {
	ID, AvailabilityZone, AvailabilityZoneID, VPCID string
	CIDR                                            netip.Prefix
}

// SecurityGroup admits NFS clients from its ingress CIDR blocks.
type SecurityGroup struct {
	ID, Name, Description, VPCID string
	Ingress                      []netip.Prefix
}

// RegionInfo is the region's static configuration.
type RegionInfo struct {
	Name, AccountID string
	// VPCID is the region's VPC (subnets and groups without one are in it).
	VPCID          string
	Subnets        []Subnet
	SecurityGroups []SecurityGroup
	// DefaultKMSKey names the key of Encrypted file systems without a
	// KmsKeyId; DefaultKMSKey ("alias/aws/elasticfilesystem") when empty.
	DefaultKMSKey string
}

// SecurityGroupSource provides the region's security groups when they are
// managed through the EC2 API (package control/network); Ingress of a
// group is what it admits to NFS now.
type SecurityGroupSource interface {
	SecurityGroup(id string) (SecurityGroup, bool)
	DefaultSecurityGroup(vpc string) (string, bool)
}

// MountTargetServer serves NFS for mount targets; nfs.Targets implements
// it.
type MountTargetServer interface {
	// Start serves the mount target on Addr (its IP and the region's NFS
	// port) until Stop.
	Start(ctx context.Context, mt MountTargetSpec) error
	// Update replaces a running mount target's security groups, access
	// points and read-only flag.
	Update(ctx context.Context, mt MountTargetSpec) error
	Stop(ctx context.Context, mountTargetID string) error
	// Flush makes every write the mount targets of the file system
	// buffered (NFS UNSTABLE writes not yet committed) durable: a planned
	// failover calls it before and after it fences the source.
	Flush(ctx context.Context, fileSystemID string) error
}

// MountTargetSpec is what a mount target serves.
type MountTargetSpec struct {
	ID, FileSystemID string
	Addr             netip.AddrPort
	// FS is the engine's file system; nil when another node of the region
	// serves it (engine.ErrElsewhere: the region's file systems are spread
	// over nodes), which then serves the mount target.
	FS *engine.FS
	// Ingress is the union of its security groups' ingress CIDRs, checked
	// at accept.
	Ingress []netip.Prefix
	// AccessPoints are exported as MOUNT path "/<access point id>" (the
	// root is exported as "/").
	AccessPoints []AccessPointSpec
	// ReadOnly: the file system is a replication destination (or may
	// become one: protection DISABLED); every write is refused.
	ReadOnly bool
	// RequireTLS: the file system policy denies requests made without
	// aws:SecureTransport; plain-text NFS is refused.
	RequireTLS bool
}

// AccessPointSpec is an access point as NFS enforces it.
type AccessPointSpec struct {
	ID string
	// Path is the access point's root directory in the file system.
	Path string
	// PosixUser, when set, replaces the caller's identity.
	PosixUser *engine.Cred
	// CreationInfo, when set, creates Path with this owner and mode if it
	// does not exist.
	CreationInfo *DirCreation
}

// DirCreation is the owner and mode (permission bits) of an access point's
// root directory created at first use.
type DirCreation struct {
	UID, GID uint32
	Mode     uint32
}

// Options configure a Region.
type Options struct {
	Region RegionInfo
	// KV is the server's store (the engine's); control uses keys under 'c'.
	KV     kv.Store
	Engine *engine.Engine
	// Keyring holds the KMS keys (nil: encrypted file systems are refused).
	Keyring *kms.Keyring
	// SecurityGroups, when set, replaces Region.SecurityGroups.
	SecurityGroups SecurityGroupSource
	// MountTargets serves mount targets (nil: nothing is served).
	MountTargets MountTargetServer
	NFSPort      int
	// TransitionDelay is the time file systems, mount targets and access
	// points spend in creating/updating/deleting (0: move on at once).
	TransitionDelay time.Duration
	Clock           func() time.Time
	Logger          *slog.Logger
	// Storage, when set, reports the state of the data disk (the space
	// guard's), for GET /2015-02-01/regionfs/storage-status.
	Storage func() space.Status

	// Limits; zero means the default.
	MaxFileSystems           int
	MaxAccessPoints          int // per file system
	MaxNetworkInterfaces     int
	MaxSecurityGroups        int
	MaxProvisionedThroughput float64
	// ThroughputCooldown is the time after a throughput mode change or a
	// decrease of provisioned throughput before the next one (negative:
	// none).
	ThroughputCooldown time.Duration
}

// Region is the control plane of one region: its file systems, mount
// targets, access points and settings, persisted under 'c'.
type Region struct {
	o   Options
	log *slog.Logger

	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex // guards the fields below and serializes changes
	closed   bool
	fss      map[string]*fsRecord
	mts      map[string]*mtRecord
	aps      map[string]*apRecord
	tokens   map[string]string // creation token → file system id
	apTokens map[string]string // client token → access point id
	prefs    prefsRecord
	purging  map[string]bool // file systems whose engine state is being deleted
	stopping map[string]bool // mount targets whose server is being stopped
}

// Open loads the region's control state, creates engine file systems that a
// crash left uncreated, restarts the mount targets and resumes every
// transition that was under way.
func Open(ctx context.Context, o Options) (*Region, error) {
	if o.KV == nil || o.Engine == nil || o.Logger == nil {
		return nil, errors.New("control: Options.KV, Engine and Logger are required")
	}
	if o.Region.Name == "" || o.Region.AccountID == "" {
		return nil, errors.New("control: region name and account id are required")
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Region.DefaultKMSKey == "" {
		o.Region.DefaultKMSKey = DefaultKMSKey
	}
	for i := range o.Region.Subnets {
		if o.Region.Subnets[i].VPCID == "" {
			o.Region.Subnets[i].VPCID = o.Region.VPCID
		}
		if !o.Region.Subnets[i].CIDR.Addr().Is4() {
			return nil, fmt.Errorf("control: subnet %s: an IPv4 CIDR is required", o.Region.Subnets[i].ID)
		}
	}
	for i := range o.Region.SecurityGroups {
		if o.Region.SecurityGroups[i].VPCID == "" {
			o.Region.SecurityGroups[i].VPCID = o.Region.VPCID
		}
	}
	setDefault(&o.MaxFileSystems, DefaultMaxFileSystems)
	setDefault(&o.MaxAccessPoints, DefaultMaxAccessPoints)
	setDefault(&o.MaxNetworkInterfaces, DefaultMaxNetworkInterfaces)
	setDefault(&o.MaxSecurityGroups, DefaultMaxSecurityGroups)
	if o.MaxProvisionedThroughput == 0 {
		o.MaxProvisionedThroughput = DefaultMaxProvisionedThroughput
	}
	if o.ThroughputCooldown == 0 {
		o.ThroughputCooldown = DefaultThroughputCooldown
	}
	r := &Region{
		o: o, log: o.Logger,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		fss: map[string]*fsRecord{}, mts: map[string]*mtRecord{}, aps: map[string]*apRecord{},
		tokens: map[string]string{}, apTokens: map[string]string{}, purging: map[string]bool{}, stopping: map[string]bool{},
	}
	if err := r.load(); err != nil {
		return nil, err
	}
	if err := r.recreateEngineFileSystems(ctx); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.startMountTargetsLocked(ctx)
	r.log.Info("control plane open", "region", o.Region.Name, "file_systems", len(r.fss), "mount_targets", len(r.mts), "access_points", len(r.aps))
	r.mu.Unlock()
	go r.run()
	return r, nil
}

// RefreshMountTargets serves every mount target that is not served yet
// (those of file systems whose KMS key became usable again) and updates
// the others.
func (r *Region) RefreshMountTargets(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.startMountTargetsLocked(ctx)
}

// SecurityGroupsChanged serves the mount targets that use any of the
// groups with their groups' current rules (new connections are admitted
// by them at once).
func (r *Region) SecurityGroupsChanged(ctx context.Context, groupIDs []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.o.MountTargets == nil {
		return
	}
	for _, m := range sortedValues(r.mts) {
		if m.State == StateDeleting || !slices.ContainsFunc(m.SecurityGroups, func(g string) bool { return slices.Contains(groupIDs, g) }) {
			continue
		}
		spec, err := r.specLocked(m)
		if err == nil {
			err = r.o.MountTargets.Update(ctx, spec)
		}
		if err != nil {
			r.log.Error("mount target not updated after a security group change", "mount_target", m.ID, "err", err)
		}
	}
}

// MountTargetsUsingGroup lists the mount targets (their network
// interfaces) that use a security group.
func (r *Region) MountTargetsUsingGroup(groupID string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range sortedValues(r.mts) {
		if slices.Contains(m.SecurityGroups, groupID) {
			out = append(out, m.ENI)
		}
	}
	return out
}

func setDefault(v *int, d int) {
	if *v == 0 {
		*v = d
	}
}

// Close stops the transition worker. Mount targets keep being served until
// their server is stopped by its owner.
func (r *Region) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	close(r.stop)
	<-r.done
	return nil
}

// Name is the region's name.
func (r *Region) Name() string { return r.o.Region.Name }

// AccountID is the account that owns every resource of the region.
func (r *Region) AccountID() string { return r.o.Region.AccountID }

func (r *Region) now() time.Time { return r.o.Clock() }

// check returns ErrClosed once the region is closed; callers hold r.mu.
// checkSpace refuses an operation that adds to what the region stores
// while its data disk is below the free-space floor (deletions are never
// refused: they are how space comes back).
func (r *Region) checkSpace() error {
	if r.o.Engine == nil {
		return nil
	}
	if err := r.o.Engine.CheckSpace(4 << 10); err != nil {
		r.log.Warn("request refused: data disk full", "err", err)
		return errorf(ErrInsufficientCapacity, "The region's data disk is full: only deletions are accepted until space is freed or added (%s).", spaceDetail(err))
	}
	return nil
}

// spaceDetail is the guard's explanation inside an engine error.
func spaceDetail(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "free space below the floor: "); i >= 0 {
		return msg[i+len("free space below the floor: "):]
	}
	return "no space left on device"
}

// StorageStatus returns the state of the region's data disk, when known.
func (r *Region) StorageStatus() (space.Status, bool) {
	if r.o.Storage == nil {
		return space.Status{}, false
	}
	return r.o.Storage(), true
}

func (r *Region) checkLocked() error {
	if r.closed {
		return ErrClosed
	}
	return nil
}

// startMountTargetsLocked serves every persisted mount target that is not
// being deleted.
func (r *Region) startMountTargetsLocked(ctx context.Context) {
	if r.o.MountTargets == nil {
		return
	}
	for _, mt := range sortedValues(r.mts) {
		if mt.State == StateDeleting {
			continue
		}
		spec, err := r.specLocked(mt)
		if err == nil {
			err = r.o.MountTargets.Start(ctx, spec)
		}
		if err != nil {
			r.log.Error("mount target not served", "mount_target", mt.ID, "fs_id", mt.FileSystemID, "addr", mt.IP, "err", err)
		}
	}
}

func (r *Region) subnet(id string) (Subnet, bool) {
	for _, s := range r.o.Region.Subnets {
		if s.ID == id {
			return s, true
		}
	}
	return Subnet{}, false
}

func (r *Region) securityGroup(id string) (SecurityGroup, bool) {
	if r.o.SecurityGroups != nil {
		return r.o.SecurityGroups.SecurityGroup(id)
	}
	for _, g := range r.o.Region.SecurityGroups {
		if g.ID == id {
			return g, true
		}
	}
	return SecurityGroup{}, false
}

// zoneID returns the id of availability zone name, if the region has it.
// oneZoneID returns the id of availability zone name for a One Zone file
// system ("" for a regional one, name ""), or ErrUnsupportedAvailabilityZone.
func (r *Region) oneZoneID(name string) (string, error) {
	if name == "" {
		return "", nil
	}
	id, ok := r.zoneID(name)
	if !ok {
		return "", errorf(ErrUnsupportedAvailabilityZone, "Availability zone '%s' is not supported in region %s.", clip(name), r.o.Region.Name)
	}
	return id, nil
}

// checkFSLimitLocked refuses a new file system once the region has
// MaxFileSystems.
func (r *Region) checkFSLimitLocked() error {
	if len(r.fss) >= r.o.MaxFileSystems {
		return errorf(ErrFileSystemLimitExceeded, "The account has reached the limit of %d file systems in region %s.", r.o.MaxFileSystems, r.o.Region.Name)
	}
	return nil
}

func (r *Region) zoneID(name string) (string, bool) {
	for _, s := range r.o.Region.Subnets {
		if s.AvailabilityZone == name {
			return s.AvailabilityZoneID, true
		}
	}
	return "", false
}

// poke wakes the transition worker.
func (r *Region) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}
