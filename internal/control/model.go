package control

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

// LifeCycleState is the state of a file system, mount target or access
// point.
type LifeCycleState string

// Life cycle states (lower case, as EFS spells them).
const (
	StateCreating  LifeCycleState = "creating"
	StateAvailable LifeCycleState = "available"
	StateUpdating  LifeCycleState = "updating"
	StateDeleting  LifeCycleState = "deleting"
	StateDeleted   LifeCycleState = "deleted"
	StateError     LifeCycleState = "error"
)

// Performance and throughput modes.
const (
	PerformanceGeneralPurpose = "generalPurpose"
	PerformanceMaxIO          = "maxIO"
	ThroughputBursting        = "bursting"
	ThroughputProvisioned     = "provisioned"
	ThroughputElastic         = "elastic"
)

// Replication overwrite protection.
const (
	ProtectionEnabled     = "ENABLED"
	ProtectionDisabled    = "DISABLED"
	ProtectionReplicating = "REPLICATING"
)

// Backup policy statuses.
const (
	BackupEnabled   = "ENABLED"
	BackupEnabling  = "ENABLING"
	BackupDisabled  = "DISABLED"
	BackupDisabling = "DISABLING"
)

// Resource id types (account preferences).
const (
	LongID  = "LONG_ID"
	ShortID = "SHORT_ID"
)

// Tag is a resource tag.
type Tag struct {
	Key, Value string
}

// Size is a file system's metered size.
type Size struct {
	Value, InStandard, InIA, InArchive uint64
	Timestamp                          time.Time
}

// FileSystem describes a file system (a copy; changing it changes nothing).
type FileSystem struct {
	ID, ARN, OwnerID, CreationToken string
	CreationTime                    time.Time
	LifeCycleState                  LifeCycleState
	// Name is the value of the Name tag.
	Name                 string
	NumberOfMountTargets int
	Size                 Size
	PerformanceMode      string
	Encrypted            bool
	// KMSKeyARN is the ARN of the key encrypting the file system.
	KMSKeyARN      string
	ThroughputMode string
	// ProvisionedThroughputMibps is set in provisioned mode (0 otherwise).
	ProvisionedThroughputMibps float64
	AvailabilityZoneName       string
	AvailabilityZoneID         string
	Tags                       []Tag
	Protection                 string
	// ReplicationRole is "" or the role set by replication (a hook).
	ReplicationRole string
	// Replica: the engine file system is a replica (written only by
	// replication).
	Replica bool
}

// MountTarget describes a mount target.
type MountTarget struct {
	ID, FileSystemID, OwnerID, SubnetID string
	LifeCycleState                      LifeCycleState
	IPAddress                           string
	NetworkInterfaceID                  string
	AvailabilityZoneName                string
	AvailabilityZoneID                  string
	VPCID                               string
	SecurityGroups                      []string
}

// PosixUser is the identity an access point imposes.
type PosixUser struct {
	UID, GID      uint32
	SecondaryGIDs []uint32
}

// CreationInfo is how an access point's missing root directory is created.
type CreationInfo struct {
	OwnerUID, OwnerGID uint32
	// Permissions are octal digits, 3 or 4 of them ("755", "0750").
	Permissions string
}

// RootDirectory is an access point's root directory.
type RootDirectory struct {
	Path         string
	CreationInfo *CreationInfo
}

// AccessPoint describes an access point.
type AccessPoint struct {
	ID, ARN, FileSystemID, OwnerID, ClientToken string
	Name                                        string
	Tags                                        []Tag
	PosixUser                                   *PosixUser
	RootDirectory                               RootDirectory
	LifeCycleState                              LifeCycleState
}

// LifecyclePolicy is one transition rule; exactly one field is set.
type LifecyclePolicy struct {
	TransitionToIA                  string `json:"ia,omitempty"`
	TransitionToPrimaryStorageClass string `json:"primary,omitempty"`
	TransitionToArchive             string `json:"archive,omitempty"`
}

// ResourceIDPreference is the account's id preference.
type ResourceIDPreference struct {
	ResourceIDType string
	Resources      []string
}

// Page asks for one page of a listing: Marker is the opaque token of a
// previous page (empty for the first), Max the page size (0: the default).
type Page struct {
	Marker string
	Max    int
}

// tagName returns the value of the Name tag.
func tagName(tags []Tag) string {
	for _, t := range tags {
		if t.Key == "Name" {
			return t.Value
		}
	}
	return ""
}

// sortedValues returns the records of m ordered by creation time, then id.
func sortedValues[R interface{ key() string }](m map[string]R) []R {
	out := slices.Collect(maps.Values(m))
	slices.SortFunc(out, func(a, b R) int { return cmp.Compare(a.key(), b.key()) })
	return out
}
