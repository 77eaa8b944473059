package control

import (
	"context"
	"errors"
	"fmt"

	"github.com/regionfs/regionfs/internal/engine"
)

// What the replication configurations (package replconf) do to file
// systems: create destinations, mark file systems that take part in a
// configuration, set the REPLICATING protection that users cannot, keep
// copies and flush buffered writes.

// Replication roles (FileSystem.ReplicationRole).
const (
	RoleSource      = "source"
	RoleDestination = "destination"
)

// ReplicaInput asks for a new replication destination.
type ReplicaInput struct {
	// CreationToken makes the call idempotent (the replication's id): a
	// second call returns the same file system.
	CreationToken        string
	AvailabilityZoneName string
	// KMSKeyID: "" is the region's default key (destinations are always
	// encrypted).
	KMSKeyID string
	// SourceARN, when set, is recorded in the tag regionfs:replica-of
	// (until the replica is promoted); no Name tag is added, so the
	// replica keeps none once it is a file system of its own.
	SourceARN string
	Tags      []Tag
}

// CreateReplica creates a destination file system: its engine file system
// is an empty replica, its protection REPLICATING (read-only mount
// targets) and its role destination. It is available at once (there is
// nothing to provision, and replication may be ENABLED within
// milliseconds: a mount target can be created on it right away).
func (r *Region) CreateReplica(ctx context.Context, in ReplicaInput) (FileSystem, error) {
	if err := r.checkSpace(); err != nil {
		return FileSystem{}, err
	}
	if in.CreationToken == "" {
		return FileSystem{}, badRequest("CreationToken is required.")
	}
	if in.SourceARN != "" {
		in.Tags = append([]Tag{{Key: TagReplicaOf, Value: sanitizeTagValue(in.SourceARN)}}, in.Tags...)
	}
	if err := checkTags(in.Tags); err != nil {
		return FileSystem{}, err
	}
	key, err := r.resolveKMSKey(cmpOr(in.KMSKeyID, r.o.Region.DefaultKMSKey))
	if err != nil {
		return FileSystem{}, err
	}
	azID, err := r.oneZoneID(in.AvailabilityZoneName)
	if err != nil {
		return FileSystem{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkLocked(); err != nil {
		return FileSystem{}, err
	}
	counts := r.mountTargetCountsLocked()
	if id, ok := r.tokens[in.CreationToken]; ok {
		return r.describeFSLocked(r.fss[id], counts), nil
	}
	if err := r.checkFSLimitLocked(); err != nil {
		return FileSystem{}, err
	}
	now := r.now()
	f := &fsRecord{
		ID: r.newIDLocked(fsPrefix), Token: in.CreationToken, Created: now, State: StateAvailable, Since: now,
		Performance: PerformanceGeneralPurpose, Encrypted: true, KMSKeyID: key.ID, Throughput: ThroughputElastic,
		AZ: in.AvailabilityZoneName, AZID: azID, Tags: mergeTags(nil, in.Tags), Protection: ProtectionReplicating,
		Role: RoleDestination, Replica: true,
	}
	t := r.begin()
	t.putFS(f)
	if err := t.commit(); err != nil {
		return FileSystem{}, err
	}
	if _, err := r.o.Engine.CreateReplica(ctx, f.ID, f.KMSKeyID); err != nil {
		t := r.begin()
		t.deleteFS(f)
		if cerr := t.commit(); cerr != nil {
			r.log.Error("file system record left behind after a failed create", "fs_id", f.ID, "err", cerr)
		}
		return FileSystem{}, fmt.Errorf("control: create replica %s: %w", f.ID, err)
	}
	r.log.Info("replica file system created", "fs_id", f.ID)
	r.poke()
	return r.describeFSLocked(f, counts), nil
}

// ResetToReplica replaces an available file system's engine file system by
// an empty replica encrypted under kmsKeyID ("" keeps its key, or the
// default key if it had none), keeping its id and mount targets: the
// mount targets are stopped and served again on the new file system, read
// only. Take any copy of the old content (KeepCopy) first.
func (r *Region) ResetToReplica(ctx context.Context, ref, kmsKeyID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.openAvailableFSLocked(ref)
	if err != nil {
		return err
	}
	keyRef := kmsKeyID
	if keyRef == "" {
		keyRef = f.KMSKeyID
	}
	key, err := r.resolveKMSKey(cmpOr(keyRef, r.o.Region.DefaultKMSKey))
	if err != nil {
		return err
	}
	n := *f
	n.Replica, n.Encrypted, n.KMSKeyID = true, true, key.ID
	n.Protection, n.Role = ProtectionReplicating, RoleDestination
	t := r.begin()
	t.putFS(&n)
	if err := t.commit(); err != nil {
		return err
	}
	var mts []string
	for _, m := range sortedValues(r.mts) {
		if m.FileSystemID == f.ID && m.State != StateDeleting && r.o.MountTargets != nil {
			mts = append(mts, m.ID)
			if err := r.o.MountTargets.Stop(ctx, m.ID); err != nil {
				r.log.Error("mount target not stopped", "mount_target", m.ID, "err", err)
			}
		}
	}
	if err := r.o.Engine.DeleteFS(ctx, f.ID); err != nil {
		return fmt.Errorf("control: reset %s: %w", f.ID, err)
	}
	// From here a crash leaves a replica record without an engine file
	// system; Open creates the empty replica.
	if _, err := r.o.Engine.CreateReplica(ctx, f.ID, key.ID); err != nil {
		return fmt.Errorf("control: reset %s: %w", f.ID, err)
	}
	for _, id := range mts {
		spec, err := r.specLocked(r.mts[id])
		if err == nil {
			err = r.o.MountTargets.Start(ctx, spec)
		}
		if err != nil {
			r.log.Error("mount target not served after a reset", "mount_target", id, "err", err)
		}
	}
	r.log.Info("file system reset to an empty replica", "fs_id", f.ID)
	return nil
}

// KeepCopy keeps a read-only copy of a file system's current state (an
// engine clone sharing its blocks) as a new file system, and returns the
// copy's id. reason is recorded in its regionfs:kept-because tag.
func (r *Region) KeepCopy(ctx context.Context, ref, reason string) (string, error) {
	c, err := r.clone(ctx, ref, false, func(f *fsRecord, id string) []Tag {
		tags := []Tag{{Key: "Name", Value: "copy of " + f.ID}, {Key: "regionfs:copy-of", Value: f.ID}}
		if v := sanitizeTagValue(reason); v != "" {
			tags = append(tags, Tag{Key: "regionfs:kept-because", Value: v})
		}
		return tags
	})
	if err != nil {
		return "", err
	}
	r.log.Info("file system copy kept", "fs_id", c.ID, "copy_of", c.CopyOf, "reason", reason)
	return c.ID, nil
}

// CloneInput asks for a writable clone of a file system.
type CloneInput struct {
	// FileSystemID is the file system to clone (id or ARN): a primary or
	// a replica with a consistent state (the clone holds the replica's
	// current prefix of its source).
	FileSystemID string
	// Tags of the clone; Name defaults to "clone of <id>".
	Tags []Tag
}

// CloneFileSystem creates a new, writable file system holding the current
// state of another (an engine clone sharing its blocks, copy-on-write at
// block granularity) and returns it available: there is nothing to
// provision, so a mount target can be created on it at once. The clone is
// its own lineage (never a replication destination of its origin); the
// origin keeps serving, and a replica keeps replicating, meanwhile. It is
// tagged regionfs:clone-of with the origin's id.
func (r *Region) CloneFileSystem(ctx context.Context, in CloneInput) (FileSystem, error) {
	if err := checkTags(in.Tags); err != nil {
		return FileSystem{}, err
	}
	c, err := r.clone(ctx, in.FileSystemID, true, func(f *fsRecord, id string) []Tag {
		return mergeTags([]Tag{{Key: "Name", Value: "clone of " + f.ID}, {Key: "regionfs:clone-of", Value: f.ID}}, in.Tags)
	})
	if err != nil {
		return FileSystem{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log.Info("file system cloned", "fs_id", c.ID, "clone_of", c.CloneOf)
	if f := r.fss[c.ID]; f != nil {
		return r.describeFSLocked(f, r.mountTargetCountsLocked()), nil
	}
	return FileSystem{}, fmt.Errorf("control: clone %s vanished: %w", c.ID, ErrFileSystemNotFound)
}

// clone makes the record and the engine clone of a file system: a
// read-only copy (CopyOf, available after the transition delay) or a
// writable clone (CloneOf, available once its engine clone exists).
func (r *Region) clone(ctx context.Context, ref string, writable bool, tags func(f *fsRecord, id string) []Tag) (*fsRecord, error) {
	if err := r.checkSpace(); err != nil {
		return nil, err
	}
	c, src, err := func() (*fsRecord, string, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := r.checkLocked(); err != nil {
			return nil, "", err
		}
		f, err := r.lookupFSLocked(ref)
		if err != nil {
			return nil, "", err
		}
		if f.State != StateAvailable && f.State != StateUpdating {
			return nil, "", wrongFSState(f.ID, f.State)
		}
		if err := r.checkFSLimitLocked(); err != nil {
			return nil, "", err
		}
		now := r.now()
		id := r.newIDLocked(fsPrefix)
		c := &fsRecord{
			ID: id, Created: now, State: StateCreating, Since: now,
			Performance: f.Performance, Encrypted: f.Encrypted, KMSKeyID: f.KMSKeyID, Throughput: f.Throughput,
			Provisioned: f.Provisioned, AZ: f.AZ, AZID: f.AZID, Tags: mergeTags(nil, tags(f, id)), Protection: ProtectionEnabled,
		}
		if writable {
			c.Token, c.CloneOf = "clone-"+id, f.ID
		} else {
			c.Token, c.CopyOf = "copy-"+id, f.ID
		}
		if f.Replica {
			// A replica is cloned at its current prefix of its source,
			// which exists once its initial sync is done.
			if efs, err := r.engineFS(f.ID); err != nil || !efs.Replica().Consistent() {
				return nil, "", errorf(ErrIncorrectLifeCycleState, "File system '%s' has no consistent state to clone yet (its initial sync is not finished).", f.ID)
			}
		}
		t := r.begin()
		t.putFS(c)
		return c, f.ID, t.commit()
	}()
	if err != nil {
		return nil, err
	}
	// The clone runs outside the lock (it copies in bounded batches); the
	// record shows as creating meanwhile.
	_, cerr := r.o.Engine.Clone(ctx, src, c.ID)
	r.mu.Lock()
	defer r.mu.Unlock()
	if cerr != nil {
		t := r.begin()
		t.deleteFS(c)
		if err := t.commit(); err != nil {
			r.log.Error("file system record left behind after a failed clone", "fs_id", c.ID, "err", err)
		}
		if errors.Is(cerr, engine.ErrInvalid) || errors.Is(cerr, engine.ErrNotReady) {
			return nil, errorf(ErrIncorrectLifeCycleState, "File system '%s' has no consistent state to clone yet (its initial sync is not finished).", src)
		}
		return nil, fmt.Errorf("control: clone %s: %w", src, cerr)
	}
	if writable {
		n := *c
		n.State, n.Since = StateAvailable, r.now()
		t := r.begin()
		t.putFS(&n)
		if err := t.commit(); err != nil {
			return nil, err
		}
		c = &n
	}
	r.poke()
	return c, nil
}

// sanitizeTagValue keeps the characters a tag value allows, 256 at most.
func sanitizeTagValue(s string) string {
	var out []rune
	for _, c := range s {
		if len(out) == 256 {
			break
		}
		if tagValueChars.MatchString(string(c)) {
			out = append(out, c)
		} else {
			out = append(out, ' ')
		}
	}
	return string(out)
}

// SetReplicationRole records that a file system takes part in a
// replication configuration (RoleSource or RoleDestination; "" when it no
// longer does). Such a file system cannot be deleted and users cannot
// change its protection. A destination that stops being one (it was
// promoted) loses its regionfs:replica-of tag.
func (r *Region) SetReplicationRole(_ context.Context, ref, role string) error {
	if role != "" && role != RoleSource && role != RoleDestination {
		return badRequest("Invalid replication role '%s'.", clip(role))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.openFSLocked(ref)
	if err != nil {
		return err
	}
	if f.Role == role {
		return nil
	}
	n := *f
	n.Role = role
	if f.Role == RoleDestination {
		// Promoted: no longer a replica of anything.
		n.Tags = nil
		for _, tg := range f.Tags {
			if tg.Key != TagReplicaOf {
				n.Tags = append(n.Tags, tg)
			}
		}
	}
	t := r.begin()
	t.putFS(&n)
	return t.commit()
}

// TagReplicaOf is the tag naming a replication destination's source (its
// ARN), from its creation to its promotion.
const TagReplicaOf = "regionfs:replica-of"

// SetProtection sets any protection, REPLICATING included (replication's
// hook; users go through UpdateFileSystemProtection). Mount targets are
// read-only unless the protection is ENABLED.
func (r *Region) SetProtection(ctx context.Context, ref, protection string) error {
	if err := oneOf("ReplicationOverwriteProtection", protection, protections); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.openFSLocked(ref)
	if err != nil {
		return err
	}
	return r.setProtectionLocked(ctx, f, protection)
}

// FlushWrites makes every write the data plane buffered for a file system
// (id or ARN) durable (MountTargetServer.Flush): a planned failover calls
// it before and after it fences the source.
func (r *Region) FlushWrites(ctx context.Context, ref string) error {
	r.mu.Lock()
	f, err := r.lookupFSLocked(ref)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if r.o.MountTargets == nil {
		return nil
	}
	return r.o.MountTargets.Flush(ctx, f.ID)
}

// EngineFS returns the engine file system of a file system (id or ARN).
func (r *Region) EngineFS(ref string) (*engine.FS, error) {
	r.mu.Lock()
	f, err := r.lookupFSLocked(ref)
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return r.engineFS(f.ID)
}
