package control

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/kms"
)

// CreateFileSystemInput are the parameters of CreateFileSystem.
type CreateFileSystemInput struct {
	CreationToken   string
	PerformanceMode string // "" = generalPurpose
	Encrypted       bool
	// KMSKeyID is a key id, alias, or key/alias ARN of this region; ""
	// with Encrypted = the region's default key.
	KMSKeyID       string
	ThroughputMode string // "" = bursting
	// ProvisionedThroughputMibps is required in provisioned mode.
	ProvisionedThroughputMibps *float64
	// AvailabilityZoneName makes a One Zone file system.
	AvailabilityZoneName string
	// Backup enables automatic backups (default: only for One Zone).
	Backup *bool
	Tags   []Tag
}

// CreateFileSystem creates a file system (and its engine file system, named
// by its id). It starts in creating and becomes available after the
// transition delay. A token already used is ErrFileSystemAlreadyExists with
// the existing file system's id.
func (r *Region) CreateFileSystem(ctx context.Context, in CreateFileSystemInput) (FileSystem, error) {
	if err := r.checkSpace(); err != nil {
		return FileSystem{}, err
	}
	if in.CreationToken == "" {
		return FileSystem{}, badRequest("CreationToken is required.")
	}
	perf := cmpOr(in.PerformanceMode, PerformanceGeneralPurpose)
	if err := oneOf("PerformanceMode", perf, performanceModes); err != nil {
		return FileSystem{}, err
	}
	mode := cmpOr(in.ThroughputMode, ThroughputBursting)
	if err := oneOf("ThroughputMode", mode, throughputModes); err != nil {
		return FileSystem{}, err
	}
	prov, err := r.checkThroughput(perf, mode, in.ProvisionedThroughputMibps, 0)
	if err != nil {
		return FileSystem{}, err
	}
	if err := checkTags(in.Tags); err != nil {
		return FileSystem{}, err
	}
	azID, err := r.oneZoneID(in.AvailabilityZoneName)
	if err != nil {
		return FileSystem{}, err
	}
	if in.AvailabilityZoneName != "" && perf == PerformanceMaxIO {
		return FileSystem{}, badRequest("One Zone file systems support only the generalPurpose performance mode.")
	}
	var key kms.Key
	if in.KMSKeyID != "" && !in.Encrypted {
		return FileSystem{}, badRequest("KmsKeyId can be given only with Encrypted set to true.")
	}
	if in.Encrypted {
		if key, err = r.resolveKMSKey(cmpOr(in.KMSKeyID, r.o.Region.DefaultKMSKey)); err != nil {
			return FileSystem{}, err
		}
	}
	backup := in.AvailabilityZoneName != ""
	if in.Backup != nil {
		backup = *in.Backup
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkLocked(); err != nil {
		return FileSystem{}, err
	}
	if id, ok := r.tokens[in.CreationToken]; ok {
		e := errorf(ErrFileSystemAlreadyExists, "File system '%s' already exists with creation token '%s'.", id, clip(in.CreationToken))
		e.ResourceID = id
		return FileSystem{}, e
	}
	if err := r.checkFSLimitLocked(); err != nil {
		return FileSystem{}, err
	}
	now := r.now()
	f := &fsRecord{
		ID: r.newIDLocked(fsPrefix), Token: in.CreationToken, Created: now, State: StateCreating, Since: now,
		Performance: perf, Encrypted: in.Encrypted, KMSKeyID: key.ID, Throughput: mode, Provisioned: prov,
		AZ: in.AvailabilityZoneName, AZID: azID, Tags: mergeTags(nil, in.Tags), Protection: ProtectionEnabled,
	}
	if backup {
		f.Backup, f.BackupSince = BackupEnabled, now
	}
	// The record is durable before the engine file system exists, so a
	// crash in between is finished by Open, never orphaned.
	t := r.begin()
	t.putFS(f)
	if err := t.commit(); err != nil {
		return FileSystem{}, err
	}
	if _, err := r.o.Engine.CreateFS(ctx, f.ID, engine.FSOptions{KMSKeyID: f.KMSKeyID}); err != nil {
		t := r.begin()
		t.deleteFS(f)
		if cerr := t.commit(); cerr != nil {
			r.log.Error("file system record left behind after a failed create", "fs_id", f.ID, "err", cerr)
		}
		return FileSystem{}, fmt.Errorf("control: create engine file system %s: %w", f.ID, err)
	}
	r.log.Info("file system created", "fs_id", f.ID, "encrypted", f.Encrypted, "throughput", f.Throughput, "az", f.AZ)
	r.poke()
	return r.describeFSLocked(f, r.mountTargetCountsLocked()), nil
}

// checkThroughput validates a throughput setting and returns the
// provisioned throughput to store. current is the stored value (0 when
// none): provisioned mode keeps it when prov is nil.
func (r *Region) checkThroughput(perf, mode string, prov *float64, current float64) (float64, error) {
	if perf == PerformanceMaxIO && mode == ThroughputElastic {
		return 0, badRequest("Elastic throughput is supported only with the generalPurpose performance mode.")
	}
	if mode != ThroughputProvisioned {
		if prov != nil {
			return 0, badRequest("ProvisionedThroughputInMibps can be given only with the provisioned throughput mode.")
		}
		return 0, nil
	}
	v := current
	if prov != nil {
		v = *prov
	}
	switch {
	case v == 0:
		return 0, badRequest("ProvisionedThroughputInMibps is required with the provisioned throughput mode.")
	case math.IsNaN(v) || v < 1:
		return 0, badRequest("ProvisionedThroughputInMibps must be at least 1.0.")
	case v > r.o.MaxProvisionedThroughput:
		return 0, errorf(ErrThroughputLimitExceeded, "Provisioned throughput of %g MiB/s exceeds the limit of %g MiB/s.", v, r.o.MaxProvisionedThroughput)
	}
	return v, nil
}

// SameKMSKey reports whether the KMS key references a and b (a key id,
// alias or ARN of this region; "" the region's default key) name the same
// key. References that do not resolve are the same only as the same
// string.
func (r *Region) SameKMSKey(a, b string) bool {
	if a == b {
		return true
	}
	ka, err := r.resolveKMSKey(cmpOr(a, r.o.Region.DefaultKMSKey))
	if err != nil {
		return false
	}
	kb, err := r.resolveKMSKey(cmpOr(b, r.o.Region.DefaultKMSKey))
	return err == nil && ka.ID == kb.ID
}

// resolveKMSKey finds a key of the keyring by id, alias or ARN.
func (r *Region) resolveKMSKey(ref string) (kms.Key, error) {
	name := ref
	if strings.HasPrefix(ref, "arn:") {
		parts := strings.SplitN(ref, ":", 6)
		if len(parts) != 6 || parts[2] != "kms" {
			return kms.Key{}, badRequest("Invalid KMS key ARN '%s'.", clip(ref))
		}
		if parts[3] != r.o.Region.Name || parts[4] != r.o.Region.AccountID {
			return kms.Key{}, badRequest("KMS key '%s' is not a key of account %s in region %s.", clip(ref), r.o.Region.AccountID, r.o.Region.Name)
		}
		name = strings.TrimPrefix(parts[5], "key/")
	}
	if r.o.Keyring == nil {
		return kms.Key{}, badRequest("Encryption at rest is not available: region %s has no KMS keys configured.", r.o.Region.Name)
	}
	k, err := r.o.Keyring.Resolve(name)
	if err != nil {
		return kms.Key{}, badRequest("KMS key '%s' does not exist in region %s.", clip(ref), r.o.Region.Name)
	}
	switch err := k.Usable(); {
	case errors.Is(err, kms.ErrPendingDeletion):
		return kms.Key{}, badRequest("KMS key '%s' is pending deletion; it cannot encrypt a file system.", clip(ref))
	case err != nil:
		return kms.Key{}, badRequest("KMS key '%s' is disabled; it cannot encrypt a file system.", clip(ref))
	}
	return k, nil
}

func (r *Region) newIDLocked(prefix string) string {
	short := r.prefs.ResourceIDType == ShortID && (prefix == fsPrefix || prefix == mtPrefix)
	for {
		id := newID(prefix, short)
		_, a := r.fss[id]
		_, b := r.mts[id]
		_, c := r.aps[id]
		if !a && !b && !c && (prefix != fsPrefix || !slices.Contains(r.o.Engine.Names(), id)) {
			return id
		}
	}
}

// mountTargetCountsLocked counts the mount targets of every file system.
func (r *Region) mountTargetCountsLocked() map[string]int {
	n := make(map[string]int, len(r.fss))
	for _, m := range r.mts {
		n[m.FileSystemID]++
	}
	return n
}

func (r *Region) describeFSLocked(f *fsRecord, counts map[string]int) FileSystem {
	d := FileSystem{
		ID: f.ID, ARN: r.FileSystemARN(f.ID), OwnerID: r.o.Region.AccountID, CreationToken: f.Token,
		CreationTime: f.Created, LifeCycleState: f.State, Name: tagName(f.Tags), NumberOfMountTargets: counts[f.ID],
		PerformanceMode: f.Performance, Encrypted: f.Encrypted, ThroughputMode: f.Throughput,
		ProvisionedThroughputMibps: f.Provisioned, AvailabilityZoneName: f.AZ, AvailabilityZoneID: f.AZID,
		Tags: slices.Clone(f.Tags), Protection: f.Protection, ReplicationRole: f.Role, Replica: f.Replica,
	}
	if f.Encrypted {
		d.KMSKeyARN = r.kmsKeyARN(f.KMSKeyID)
	}
	d.Size.Timestamp = r.now()
	// Wherever the file system is served (another node's is read from the
	// shared store).
	if u, err := r.o.Engine.Usage(f.ID); err == nil {
		d.Size.Value, d.Size.InStandard = u.Bytes, u.Bytes
	}
	return d
}

// FileSystemQuery selects file systems: by id (or ARN), by creation token,
// or all of them.
type FileSystemQuery struct {
	FileSystemID  string
	CreationToken string
	Page
}

// DescribeFileSystems lists file systems, one page at a time (100 at most;
// the default). An unknown FileSystemID is ErrFileSystemNotFound; an
// unknown CreationToken gives an empty list.
func (r *Region) DescribeFileSystems(_ context.Context, q FileSystemQuery) ([]FileSystem, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []*fsRecord
	switch {
	case q.FileSystemID != "":
		f, err := r.lookupFSLocked(q.FileSystemID)
		if err != nil {
			return nil, "", err
		}
		if q.CreationToken != "" && f.Token != q.CreationToken {
			return nil, "", fsNotFound(q.FileSystemID)
		}
		all = []*fsRecord{f}
	case q.CreationToken != "":
		if id, ok := r.tokens[q.CreationToken]; ok {
			all = []*fsRecord{r.fss[id]}
		}
	default:
		all = sortedValues(r.fss)
	}
	page, next, err := paginate(all, markerFileSystems, q.Page, 100, 100)
	if err != nil {
		return nil, "", err
	}
	counts := r.mountTargetCountsLocked()
	out := make([]FileSystem, len(page))
	for i, f := range page {
		out[i] = r.describeFSLocked(f, counts)
	}
	return out, next, nil
}

// DescribeFileSystem describes one file system by id or ARN.
func (r *Region) DescribeFileSystem(_ context.Context, ref string) (FileSystem, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.lookupFSLocked(ref)
	if err != nil {
		return FileSystem{}, err
	}
	return r.describeFSLocked(f, r.mountTargetCountsLocked()), nil
}

// UpdateFileSystemInput changes a file system's throughput; nil fields stay.
type UpdateFileSystemInput struct {
	FileSystemID               string
	ThroughputMode             *string
	ProvisionedThroughputMibps *float64
}

// UpdateFileSystem changes the throughput mode or provisioned throughput
// of an available file system, which goes through updating. Changing the
// mode or decreasing provisioned throughput is allowed once per
// ThroughputCooldown (ErrTooManyRequests).
func (r *Region) UpdateFileSystem(_ context.Context, in UpdateFileSystemInput) (FileSystem, error) {
	if err := r.checkSpace(); err != nil {
		return FileSystem{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkLocked(); err != nil {
		return FileSystem{}, err
	}
	f, err := r.lookupFSLocked(in.FileSystemID)
	if err != nil {
		return FileSystem{}, err
	}
	if f.State != StateAvailable {
		return FileSystem{}, wrongFSState(f.ID, f.State)
	}
	if f.Replica || f.Protection == ProtectionReplicating {
		return FileSystem{}, badRequest("File system '%s' is a replication destination; its throughput cannot be changed.", f.ID)
	}
	mode := f.Throughput
	if in.ThroughputMode != nil {
		mode = *in.ThroughputMode
		if err := oneOf("ThroughputMode", mode, throughputModes); err != nil {
			return FileSystem{}, err
		}
	}
	prov, err := r.checkThroughput(f.Performance, mode, in.ProvisionedThroughputMibps, f.Provisioned)
	if err != nil {
		return FileSystem{}, err
	}
	counts := r.mountTargetCountsLocked()
	if mode == f.Throughput && prov == f.Provisioned {
		return r.describeFSLocked(f, counts), nil
	}
	now := r.now()
	restricted := mode != f.Throughput || prov < f.Provisioned
	if restricted && r.o.ThroughputCooldown > 0 && !f.ThroughputChanged.IsZero() {
		if next := f.ThroughputChanged.Add(r.o.ThroughputCooldown); now.Before(next) {
			return FileSystem{}, errorf(ErrTooManyRequests, "The throughput mode of file system '%s' was changed or its provisioned throughput decreased at %s; the next such change is allowed after %s.",
				f.ID, f.ThroughputChanged.UTC().Format(time.RFC3339), next.UTC().Format(time.RFC3339))
		}
	}
	n := *f
	n.Throughput, n.Provisioned = mode, prov
	n.State, n.Since = StateUpdating, now
	if restricted {
		n.ThroughputChanged = now
	}
	t := r.begin()
	t.putFS(&n)
	if err := t.commit(); err != nil {
		return FileSystem{}, err
	}
	r.log.Info("file system updating", "fs_id", f.ID, "throughput", mode, "provisioned_mibps", prov)
	r.poke()
	return r.describeFSLocked(&n, counts), nil
}

// DeleteFileSystem starts deleting a file system without mount targets:
// it goes to deleting, then its engine file system and access points are
// removed and it is gone. Deleting a file system already being deleted
// succeeds.
func (r *Region) DeleteFileSystem(_ context.Context, ref string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.openFSLocked(ref)
	if err != nil {
		return err
	}
	if f.State == StateDeleting {
		return nil
	}
	if n := r.mountTargetCountsLocked()[f.ID]; n > 0 {
		return errorf(ErrFileSystemInUse, "File system '%s' has %d mount target(s); delete them first.", f.ID, n)
	}
	if f.Role != "" {
		return badRequest("File system '%s' is part of a replication configuration; delete the replication configuration first.", f.ID)
	}
	n := *f
	n.State, n.Since = StateDeleting, r.now()
	t := r.begin()
	t.putFS(&n)
	for _, a := range r.aps {
		if a.FileSystemID == f.ID && a.State != StateDeleting {
			na := *a
			na.State, na.Since = StateDeleting, n.Since
			t.putAP(&na)
		}
	}
	if err := t.commit(); err != nil {
		return err
	}
	r.log.Info("file system deleting", "fs_id", f.ID)
	r.poke()
	return nil
}

// UpdateFileSystemProtection sets a file system's replication overwrite
// protection (ENABLED or DISABLED; REPLICATING is set only by
// replication). DISABLED makes its mount targets read-only. nil keeps the
// current value.
func (r *Region) UpdateFileSystemProtection(ctx context.Context, ref string, protection *string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.openFSLocked(ref)
	if err != nil {
		return "", err
	}
	if protection == nil {
		return f.Protection, nil
	}
	p := *protection
	if err := oneOf("ReplicationOverwriteProtection", p, protections); err != nil {
		return "", err
	}
	if p == ProtectionReplicating {
		return "", badRequest("ReplicationOverwriteProtection REPLICATING is set only by replication.")
	}
	if f.State != StateAvailable {
		return "", wrongFSState(f.ID, f.State)
	}
	if f.Role != "" || f.Protection == ProtectionReplicating {
		return "", errorf(ErrReplicationAlreadyExists, "File system '%s' is part of a replication configuration; its protection cannot be changed.", f.ID)
	}
	if err := r.setProtectionLocked(ctx, f, p); err != nil {
		return "", err
	}
	if p == ProtectionEnabled {
		// A file system fenced by a failover elsewhere (it shows DISABLED)
		// takes writes again when its owner says so.
		if fs, err := r.engineFS(f.ID); err == nil {
			if mode, _ := fs.Mode(); mode == engine.ModeFenced {
				if err := fs.Replica().Unfence(ctx); err != nil {
					return "", fmt.Errorf("control: unfence %s: %w", f.ID, err)
				}
				r.log.Info("file system unfenced: it takes writes again", "fs_id", f.ID)
			}
		}
	}
	return p, nil
}

func (r *Region) setProtectionLocked(ctx context.Context, f *fsRecord, p string) error {
	if f.Protection == p {
		return nil
	}
	n := *f
	n.Protection = p
	t := r.begin()
	t.putFS(&n)
	if err := t.commit(); err != nil {
		return err
	}
	r.log.Info("file system protection", "fs_id", f.ID, "protection", p)
	r.updateMountTargetsLocked(ctx, f.ID)
	return nil
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// engineFS returns the engine file system of a control file system.
func (r *Region) engineFS(id string) (*engine.FS, error) {
	fs, err := r.o.Engine.FS(id)
	if errors.Is(err, engine.ErrFSNotFound) {
		return nil, fmt.Errorf("control: file system %s has no engine file system: %w", id, err)
	}
	return fs, err
}
