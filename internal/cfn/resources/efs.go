package resources

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/regionfs/regionfs/internal/cfn"
	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/replconf"
)

// Replication is what the file system type needs of replconf.Manager.
type Replication interface {
	Create(ctx context.Context, sourceID string, dests []replconf.Destination) (replconf.Description, error)
	Describe(ctx context.Context, fsID string) ([]replconf.Description, error)
	Delete(ctx context.Context, fsID, mode string) (*replconf.Promotion, error)
}

// Options are the domains the providers act through.
type Options struct {
	Region *control.Region
	// Replication is nil when the region has no replication.
	Replication Replication
	Keys        Keys
	Network     Network
	// Alarms and Topics are the region's CloudWatch alarms and SNS topics
	// (nil: the types AWS::CloudWatch::Alarm, AWS::SNS::* are unknown).
	Alarms Alarms
	Topics Topics
	// PollInterval is how often a provider checks a resource it waits for
	// (100ms by default); StabilizeTimeout bounds the wait (10 minutes).
	PollInterval     time.Duration
	StabilizeTimeout time.Duration
}

// Registry returns the resource types of a region.
func Registry(o Options) cfn.Registry {
	if o.PollInterval == 0 {
		o.PollInterval = 100 * time.Millisecond
	}
	if o.StabilizeTimeout == 0 {
		o.StabilizeTimeout = 10 * time.Minute
	}
	reg := cfn.Registry{}
	for _, t := range []*cfn.ResourceType{fileSystemType(o), mountTargetType(o), accessPointType(o)} {
		reg[t.Name] = t
	}
	for _, t := range keyTypes(o) {
		reg[t.Name] = t
	}
	for _, t := range networkTypes(o) {
		reg[t.Name] = t
	}
	for _, t := range monitoringTypes(o) {
		reg[t.Name] = t
	}
	return reg
}

// efsErr is the handler error of a file-system or replication call.
func efsErr(err error) error { return handlerError(err) }

var (
	fsIDPattern   = control.FileSystemRefPattern.String()
	kmsKeyPattern = `^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|alias/[a-zA-Z0-9/_-]+|(arn:aws[-a-z]*:kms:[a-z0-9-]+:\d{12}:((key/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})|(key/mrk-[0-9a-f]{32})|(alias/[a-zA-Z0-9/_-]+))))$`
	transitions   = []string{"AFTER_1_DAY", "AFTER_7_DAYS", "AFTER_14_DAYS", "AFTER_30_DAYS", "AFTER_60_DAYS", "AFTER_90_DAYS", "AFTER_180_DAYS", "AFTER_270_DAYS", "AFTER_365_DAYS"}
)

func fileSystemType(o Options) *cfn.ResourceType {
	lifecycle := obj(map[string]*cfn.Prop{
		"TransitionToIA": enum(transitions...), "TransitionToArchive": enum(transitions...),
		"TransitionToPrimaryStorageClass": enum("AFTER_1_ACCESS"),
	})
	dest := obj(map[string]*cfn.Prop{
		"Region": p(cfn.String), "AvailabilityZoneName": p(cfn.String), "KmsKeyId": p(cfn.String),
		"FileSystemId": pattern(fsIDPattern, 0, 128), "RoleArn": p(cfn.String),
		"Status": p(cfn.String), "StatusMessage": p(cfn.String),
	})
	destinations := listOf(dest)
	destinations.MinLen, destinations.MaxLen = 1, 1
	lifecycles := listOf(lifecycle)
	lifecycles.MaxLen = 3
	return &cfn.ResourceType{
		Name:       "AWS::EFS::FileSystem",
		Attributes: []string{"Arn", "FileSystemId"},
		Properties: map[string]*cfn.Prop{
			"AvailabilityZoneName":           replace(pattern(`.+`, 1, 64)),
			"BackupPolicy":                   obj(map[string]*cfn.Prop{"Status": req(enum("DISABLED", "ENABLED"))}),
			"BypassPolicyLockoutSafetyCheck": p(cfn.Boolean),
			"Encrypted":                      replace(p(cfn.Boolean)),
			"FileSystemPolicy":               p(cfn.JSON),
			"FileSystemProtection":           obj(map[string]*cfn.Prop{"ReplicationOverwriteProtection": enum("DISABLED", "ENABLED")}),
			"FileSystemTags":                 tagList(),
			"KmsKeyId":                       replace(pattern(kmsKeyPattern, 0, 2048)),
			"LifecyclePolicies":              lifecycles,
			"PerformanceMode":                replace(enum("generalPurpose", "maxIO")),
			"ProvisionedThroughputInMibps":   p(cfn.Number),
			"ReplicationConfiguration":       obj(map[string]*cfn.Prop{"Destinations": destinations}),
			"ThroughputMode":                 enum("bursting", "elastic", "provisioned"),
		},
		Provider: &fileSystems{o},
	}
}

type fileSystems struct{ o Options }

func (f *fileSystems) attrs(fs control.FileSystem) map[string]string {
	return map[string]string{"Arn": fs.ARN, "FileSystemId": fs.ID}
}

func (f *fileSystems) Create(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	pr := r.Props
	in := control.CreateFileSystemInput{
		CreationToken: r.Token, PerformanceMode: str(pr, "PerformanceMode"), Encrypted: boolean(pr, "Encrypted"),
		KMSKeyID: str(pr, "KmsKeyId"), ThroughputMode: str(pr, "ThroughputMode"), AvailabilityZoneName: str(pr, "AvailabilityZoneName"),
	}
	if v, ok := number(pr, "ProvisionedThroughputInMibps"); ok {
		in.ProvisionedThroughputMibps = &v
	}
	if bp := object(pr, "BackupPolicy"); bp != nil {
		b := str(bp, "Status") == "ENABLED"
		in.Backup = &b
	}
	for _, t := range tagsOf(pr, "FileSystemTags") {
		in.Tags = append(in.Tags, control.Tag{Key: t[0], Value: t[1]})
	}
	fs, err := f.o.Region.CreateFileSystem(ctx, in)
	var ce *control.Error
	if errors.As(err, &ce) && errors.Is(err, control.ErrFileSystemAlreadyExists) && ce.ResourceID != "" {
		fs, err = f.o.Region.DescribeFileSystem(ctx, ce.ResourceID) // created before a restart
	}
	if err != nil {
		return cfn.Outcome{}, efsErr(err)
	}
	if r.Started != nil {
		r.Started(fs.ID)
	}
	if fs, err = f.waitAvailable(ctx, fs.ID); err != nil {
		return cfn.Outcome{}, err
	}
	if err := f.apply(ctx, fs.ID, nil, pr); err != nil {
		return cfn.Outcome{}, err
	}
	return cfn.Outcome{PhysicalID: fs.ID, Attributes: f.attrs(fs)}, nil
}

// waitAvailable polls until the file system is available.
func (f *fileSystems) waitAvailable(ctx context.Context, id string) (control.FileSystem, error) {
	deadline := time.Now().Add(f.o.StabilizeTimeout)
	for {
		fs, err := f.o.Region.DescribeFileSystem(ctx, id)
		if err != nil {
			return control.FileSystem{}, efsErr(err)
		}
		switch fs.LifeCycleState {
		case control.StateAvailable:
			return fs, nil
		case control.StateError, control.StateDeleting:
			return control.FileSystem{}, &cfn.HandlerError{Code: "NotStabilized", Message: fmt.Sprintf("File system %s is %s.", id, fs.LifeCycleState)}
		}
		if time.Now().After(deadline) {
			return control.FileSystem{}, &cfn.HandlerError{Code: "NotStabilized", Message: fmt.Sprintf("File system %s did not become available.", id)}
		}
		if err := sleep(ctx, f.o.PollInterval); err != nil {
			return control.FileSystem{}, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// apply sets the properties that are separate calls (lifecycle, backup,
// policy, protection, replication) where they differ from old (nil on
// create: set what is given).
func (f *fileSystems) apply(ctx context.Context, id string, old, pr map[string]any) error {
	changed := func(k string) bool {
		if old == nil {
			return has(pr, k)
		}
		return !equalJSON(old[k], pr[k])
	}
	if changed("LifecyclePolicies") {
		var pols []control.LifecyclePolicy
		for _, v := range list(pr, "LifecyclePolicies") {
			m, _ := v.(map[string]any)
			pols = append(pols, control.LifecyclePolicy{TransitionToIA: str(m, "TransitionToIA"),
				TransitionToPrimaryStorageClass: str(m, "TransitionToPrimaryStorageClass"), TransitionToArchive: str(m, "TransitionToArchive")})
		}
		if _, err := f.o.Region.PutLifecycleConfiguration(ctx, id, pols); err != nil {
			return efsErr(err)
		}
	}
	if changed("BackupPolicy") && old != nil {
		status := "DISABLED"
		if bp := object(pr, "BackupPolicy"); bp != nil {
			status = str(bp, "Status")
		}
		if _, err := f.o.Region.PutBackupPolicy(ctx, id, status); err != nil {
			return efsErr(err)
		}
	}
	if changed("FileSystemPolicy") {
		if has(pr, "FileSystemPolicy") {
			if _, err := f.o.Region.PutFileSystemPolicy(ctx, id, jsonText(pr["FileSystemPolicy"]), boolean(pr, "BypassPolicyLockoutSafetyCheck")); err != nil {
				return efsErr(err)
			}
		} else if err := f.o.Region.DeleteFileSystemPolicy(ctx, id); err != nil && !errors.Is(err, control.ErrPolicyNotFound) {
			return efsErr(err)
		}
	}
	if changed("FileSystemProtection") {
		prot := control.ProtectionEnabled
		if fp := object(pr, "FileSystemProtection"); fp != nil && str(fp, "ReplicationOverwriteProtection") != "" {
			prot = str(fp, "ReplicationOverwriteProtection")
		}
		if _, err := f.o.Region.UpdateFileSystemProtection(ctx, id, &prot); err != nil {
			return efsErr(err)
		}
	}
	if changed("ReplicationConfiguration") {
		if old != nil && has(old, "ReplicationConfiguration") {
			if err := f.deleteReplication(ctx, id); err != nil {
				return err
			}
		}
		if rc := object(pr, "ReplicationConfiguration"); rc != nil {
			if err := f.createReplication(ctx, id, rc); err != nil {
				return err
			}
		}
	}
	return nil
}

func equalJSON(a, b any) bool { return jsonText(a) == jsonText(b) }

func (f *fileSystems) createReplication(ctx context.Context, id string, rc map[string]any) error {
	if f.o.Replication == nil {
		return &cfn.HandlerError{Code: "InvalidRequest", Message: "Replication is not configured in this region."}
	}
	var dests []replconf.Destination
	for _, v := range list(rc, "Destinations") {
		m, _ := v.(map[string]any)
		dests = append(dests, replconf.Destination{Region: str(m, "Region"), FileSystemID: str(m, "FileSystemId"),
			AvailabilityZoneName: str(m, "AvailabilityZoneName"), KMSKeyID: str(m, "KmsKeyId"), RoleArn: str(m, "RoleArn")})
	}
	if _, err := f.o.Replication.Create(ctx, id, dests); err != nil {
		if errors.Is(err, control.ErrReplicationAlreadyExists) {
			// Made before a restart: the same destination region is ours.
			if ds, derr := f.o.Replication.Describe(ctx, id); derr == nil && len(ds) == 1 && len(dests) == 1 &&
				ds[0].SourceFileSystemID == id && ds[0].DestRegion == dests[0].Region {
				return nil
			}
		}
		return efsErr(err)
	}
	return nil
}

func (f *fileSystems) deleteReplication(ctx context.Context, id string) error {
	if f.o.Replication == nil {
		return nil
	}
	ds, err := f.o.Replication.Describe(ctx, id)
	if err != nil {
		if errors.Is(err, control.ErrReplicationNotFound) || errors.Is(err, control.ErrFileSystemNotFound) {
			return nil
		}
		return efsErr(err)
	}
	for _, d := range ds {
		if d.SourceFileSystemID != id {
			continue // this file system is a destination: not ours to end
		}
		if _, err := f.o.Replication.Delete(ctx, id, replconf.DeleteAll); err != nil && !errors.Is(err, control.ErrReplicationNotFound) {
			return efsErr(err)
		}
	}
	// The file system leaves the configuration when both ends have
	// forgotten it.
	deadline := time.Now().Add(f.o.StabilizeTimeout)
	for {
		fs, err := f.o.Region.DescribeFileSystem(ctx, id)
		if err != nil || fs.ReplicationRole == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return &cfn.HandlerError{Code: "NotStabilized", Message: fmt.Sprintf("The replication configuration of %s was not deleted.", id)}
		}
		if err := sleep(ctx, f.o.PollInterval); err != nil {
			return err
		}
	}
}

func (f *fileSystems) Update(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	id, pr, old := r.PhysicalID, r.Props, r.OldProps
	if str(old, "ThroughputMode") != str(pr, "ThroughputMode") || str(old, "ProvisionedThroughputInMibps") != str(pr, "ProvisionedThroughputInMibps") {
		mode := str(pr, "ThroughputMode")
		if mode == "" {
			mode = control.ThroughputBursting
		}
		in := control.UpdateFileSystemInput{FileSystemID: id, ThroughputMode: &mode}
		if v, ok := number(pr, "ProvisionedThroughputInMibps"); ok {
			in.ProvisionedThroughputMibps = &v
		}
		if _, err := f.o.Region.UpdateFileSystem(ctx, in); err != nil {
			return cfn.Outcome{}, efsErr(err)
		}
		if _, err := f.waitAvailable(ctx, id); err != nil {
			return cfn.Outcome{}, err
		}
	}
	set, remove := tagDiff(tagsOf(old, "FileSystemTags"), tagsOf(pr, "FileSystemTags"))
	if len(set) > 0 {
		var tags []control.Tag
		for _, t := range set {
			tags = append(tags, control.Tag{Key: t[0], Value: t[1]})
		}
		if err := f.o.Region.TagResource(ctx, id, tags); err != nil {
			return cfn.Outcome{}, efsErr(err)
		}
	}
	if len(remove) > 0 {
		if err := f.o.Region.UntagResource(ctx, id, remove); err != nil {
			return cfn.Outcome{}, efsErr(err)
		}
	}
	if err := f.apply(ctx, id, old, pr); err != nil {
		return cfn.Outcome{}, err
	}
	fs, err := f.o.Region.DescribeFileSystem(ctx, id)
	if err != nil {
		return cfn.Outcome{}, efsErr(err)
	}
	return cfn.Outcome{PhysicalID: id, Attributes: f.attrs(fs)}, nil
}

func (f *fileSystems) Delete(ctx context.Context, r *cfn.Request) error {
	id := r.PhysicalID
	if _, err := f.o.Region.DescribeFileSystem(ctx, id); errors.Is(err, control.ErrFileSystemNotFound) {
		return nil
	}
	if err := f.deleteReplication(ctx, id); err != nil {
		return err
	}
	if err := f.o.Region.DeleteFileSystem(ctx, id); err != nil {
		if errors.Is(err, control.ErrFileSystemNotFound) {
			return nil
		}
		return efsErr(err)
	}
	deadline := time.Now().Add(f.o.StabilizeTimeout)
	for {
		if _, err := f.o.Region.DescribeFileSystem(ctx, id); errors.Is(err, control.ErrFileSystemNotFound) {
			return nil
		}
		if time.Now().After(deadline) {
			return &cfn.HandlerError{Code: "NotStabilized", Message: fmt.Sprintf("File system %s was not deleted.", id)}
		}
		if err := sleep(ctx, f.o.PollInterval); err != nil {
			return err
		}
	}
}

func mountTargetType(o Options) *cfn.ResourceType {
	sgs := listOf(pattern(`^sg-[0-9a-f]{8,40}`, 11, 43))
	sgs.MaxLen = 100
	sgs.Required = true
	return &cfn.ResourceType{
		Name:       "AWS::EFS::MountTarget",
		Attributes: []string{"Id", "IpAddress"},
		Properties: map[string]*cfn.Prop{
			"FileSystemId":   req(replace(pattern(fsIDPattern, 0, 128))),
			"IpAddress":      replace(pattern(`^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$`, 7, 15)),
			"SecurityGroups": sgs,
			"SubnetId":       req(replace(pattern(`^subnet-[0-9a-f]{8,40}$`, 15, 47))),
		},
		Provider: &mountTargets{o},
	}
}

type mountTargets struct{ o Options }

func (m *mountTargets) Create(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	pr := r.Props
	in := control.CreateMountTargetInput{FileSystemID: str(pr, "FileSystemId"), SubnetID: str(pr, "SubnetId"),
		IPAddress: str(pr, "IpAddress"), SecurityGroups: strings_(pr, "SecurityGroups")}
	mt, err := m.o.Region.CreateMountTarget(ctx, in)
	if errors.Is(err, control.ErrMountTargetConflict) {
		// One made before a restart, in this subnet with these settings,
		// is ours.
		if found, ok := m.existing(ctx, in); ok {
			mt, err = found, nil
		}
	}
	if err != nil {
		return cfn.Outcome{}, efsErr(err)
	}
	if r.Started != nil {
		r.Started(mt.ID)
	}
	mt, err = m.wait(ctx, mt.ID)
	if err != nil {
		return cfn.Outcome{}, err
	}
	return cfn.Outcome{PhysicalID: mt.ID, Attributes: map[string]string{"Id": mt.ID, "IpAddress": mt.IPAddress}}, nil
}

func (m *mountTargets) existing(ctx context.Context, in control.CreateMountTargetInput) (control.MountTarget, bool) {
	mts, _, err := m.o.Region.DescribeMountTargets(ctx, control.MountTargetQuery{FileSystemID: in.FileSystemID, Page: control.Page{Max: 100}})
	if err != nil {
		return control.MountTarget{}, false
	}
	for _, mt := range mts {
		if mt.SubnetID == in.SubnetID && (in.IPAddress == "" || in.IPAddress == mt.IPAddress) && mt.LifeCycleState != control.StateDeleting {
			want := slices.Clone(in.SecurityGroups)
			got := slices.Clone(mt.SecurityGroups)
			slices.Sort(want)
			slices.Sort(got)
			if len(want) == 0 || slices.Equal(want, got) {
				return mt, true
			}
		}
	}
	return control.MountTarget{}, false
}

func (m *mountTargets) wait(ctx context.Context, id string) (control.MountTarget, error) {
	deadline := time.Now().Add(m.o.StabilizeTimeout)
	for {
		mts, _, err := m.o.Region.DescribeMountTargets(ctx, control.MountTargetQuery{MountTargetID: id})
		if err != nil {
			return control.MountTarget{}, efsErr(err)
		}
		if mts[0].LifeCycleState == control.StateAvailable {
			return mts[0], nil
		}
		if time.Now().After(deadline) {
			return control.MountTarget{}, &cfn.HandlerError{Code: "NotStabilized", Message: fmt.Sprintf("Mount target %s did not become available.", id)}
		}
		if err := sleep(ctx, m.o.PollInterval); err != nil {
			return control.MountTarget{}, err
		}
	}
}

func (m *mountTargets) Update(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	if err := m.o.Region.ModifyMountTargetSecurityGroups(ctx, r.PhysicalID, strings_(r.Props, "SecurityGroups")); err != nil {
		return cfn.Outcome{}, efsErr(err)
	}
	mt, err := m.wait(ctx, r.PhysicalID)
	if err != nil {
		return cfn.Outcome{}, err
	}
	return cfn.Outcome{PhysicalID: mt.ID, Attributes: map[string]string{"Id": mt.ID, "IpAddress": mt.IPAddress}}, nil
}

func (m *mountTargets) Delete(ctx context.Context, r *cfn.Request) error {
	if err := m.o.Region.DeleteMountTarget(ctx, r.PhysicalID); err != nil {
		if errors.Is(err, control.ErrMountTargetNotFound) {
			return nil
		}
		return efsErr(err)
	}
	deadline := time.Now().Add(m.o.StabilizeTimeout)
	for {
		if _, _, err := m.o.Region.DescribeMountTargets(ctx, control.MountTargetQuery{MountTargetID: r.PhysicalID}); errors.Is(err, control.ErrMountTargetNotFound) {
			return nil
		}
		if time.Now().After(deadline) {
			return &cfn.HandlerError{Code: "NotStabilized", Message: fmt.Sprintf("Mount target %s was not deleted.", r.PhysicalID)}
		}
		if err := sleep(ctx, m.o.PollInterval); err != nil {
			return err
		}
	}
}

func accessPointType(o Options) *cfn.ResourceType {
	creation := obj(map[string]*cfn.Prop{
		"OwnerGid": req(p(cfn.String)), "OwnerUid": req(p(cfn.String)), "Permissions": req(pattern(`^[0-7]{3,4}$`, 0, 0)),
	})
	return &cfn.ResourceType{
		Name:       "AWS::EFS::AccessPoint",
		Attributes: []string{"AccessPointId", "Arn"},
		Properties: map[string]*cfn.Prop{
			"AccessPointTags": listOf(obj(map[string]*cfn.Prop{"Key": &cfn.Prop{Kind: cfn.String, MinLen: 1, MaxLen: 128}, "Value": &cfn.Prop{Kind: cfn.String, MinLen: 1, MaxLen: 256}})),
			"ClientToken":     replace(p(cfn.String)),
			"FileSystemId":    req(replace(p(cfn.String))),
			"PosixUser": replace(obj(map[string]*cfn.Prop{
				"Gid": req(p(cfn.String)), "Uid": req(p(cfn.String)), "SecondaryGids": listOf(p(cfn.String)),
			})),
			"RootDirectory": replace(obj(map[string]*cfn.Prop{
				"CreationInfo": creation, "Path": &cfn.Prop{Kind: cfn.String, MinLen: 1, MaxLen: 100},
			})),
		},
		Provider: &accessPoints{o},
	}
}

type accessPoints struct{ o Options }

func parseID(s, what string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, &cfn.HandlerError{Code: "InvalidRequest", Message: fmt.Sprintf("%s %q must be an integer from 0 to 4294967295.", what, s)}
	}
	return uint32(v), nil
}

func (a *accessPoints) Create(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	pr := r.Props
	tok := str(pr, "ClientToken")
	if tok == "" {
		tok = r.Token
	}
	in := control.CreateAccessPointInput{ClientToken: tok, FileSystemID: str(pr, "FileSystemId")}
	for _, t := range tagsOf(pr, "AccessPointTags") {
		in.Tags = append(in.Tags, control.Tag{Key: t[0], Value: t[1]})
	}
	if u := object(pr, "PosixUser"); u != nil {
		uid, err := parseID(str(u, "Uid"), "PosixUser.Uid")
		if err != nil {
			return cfn.Outcome{}, err
		}
		gid, err := parseID(str(u, "Gid"), "PosixUser.Gid")
		if err != nil {
			return cfn.Outcome{}, err
		}
		pu := &control.PosixUser{UID: uid, GID: gid}
		for _, g := range strings_(u, "SecondaryGids") {
			v, err := parseID(g, "PosixUser.SecondaryGids")
			if err != nil {
				return cfn.Outcome{}, err
			}
			pu.SecondaryGIDs = append(pu.SecondaryGIDs, v)
		}
		in.PosixUser = pu
	}
	if rd := object(pr, "RootDirectory"); rd != nil {
		in.RootDirectory.Path = str(rd, "Path")
		if ci := object(rd, "CreationInfo"); ci != nil {
			uid, err := parseID(str(ci, "OwnerUid"), "CreationInfo.OwnerUid")
			if err != nil {
				return cfn.Outcome{}, err
			}
			gid, err := parseID(str(ci, "OwnerGid"), "CreationInfo.OwnerGid")
			if err != nil {
				return cfn.Outcome{}, err
			}
			in.RootDirectory.CreationInfo = &control.CreationInfo{OwnerUID: uid, OwnerGID: gid, Permissions: str(ci, "Permissions")}
		}
	}
	ap, err := a.o.Region.CreateAccessPoint(ctx, in)
	var ce *control.Error
	if errors.As(err, &ce) && errors.Is(err, control.ErrAccessPointAlreadyExists) && ce.ResourceID != "" && tok == r.Token {
		aps, _, derr := a.o.Region.DescribeAccessPoints(ctx, control.AccessPointQuery{AccessPointID: ce.ResourceID})
		if derr == nil && len(aps) == 1 {
			ap, err = aps[0], nil
		}
	}
	if err != nil {
		return cfn.Outcome{}, efsErr(err)
	}
	if r.Started != nil {
		r.Started(ap.ID)
	}
	return cfn.Outcome{PhysicalID: ap.ID, Attributes: map[string]string{"AccessPointId": ap.ID, "Arn": ap.ARN}}, nil
}

func (a *accessPoints) Update(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	set, remove := tagDiff(tagsOf(r.OldProps, "AccessPointTags"), tagsOf(r.Props, "AccessPointTags"))
	if len(set) > 0 {
		var tags []control.Tag
		for _, t := range set {
			tags = append(tags, control.Tag{Key: t[0], Value: t[1]})
		}
		if err := a.o.Region.TagResource(ctx, r.PhysicalID, tags); err != nil {
			return cfn.Outcome{}, efsErr(err)
		}
	}
	if len(remove) > 0 {
		if err := a.o.Region.UntagResource(ctx, r.PhysicalID, remove); err != nil {
			return cfn.Outcome{}, efsErr(err)
		}
	}
	return cfn.Outcome{PhysicalID: r.PhysicalID, Attributes: r.Attributes}, nil
}

func (a *accessPoints) Delete(ctx context.Context, r *cfn.Request) error {
	if err := a.o.Region.DeleteAccessPoint(ctx, r.PhysicalID); err != nil && !errors.Is(err, control.ErrAccessPointNotFound) {
		return efsErr(err)
	}
	return nil
}
