package efs

import (
	"strconv"
	"time"

	"github.com/regionfs/regionfs/internal/control"
)

// epoch is a timestamp as EFS sends it: epoch seconds, a JSON number
// (milliseconds as a fraction).
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)), nil
}

type tagJSON struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

func tagsJSON(tags []control.Tag) []tagJSON {
	out := make([]tagJSON, len(tags))
	for i, t := range tags {
		out[i] = tagJSON{t.Key, t.Value}
	}
	return out
}

type sizeJSON struct {
	Value           uint64 `json:"Value"`
	Timestamp       epoch  `json:"Timestamp"`
	ValueInIA       uint64 `json:"ValueInIA"`
	ValueInStandard uint64 `json:"ValueInStandard"`
	ValueInArchive  uint64 `json:"ValueInArchive"`
}

type protectionJSON struct {
	ReplicationOverwriteProtection string `json:"ReplicationOverwriteProtection"`
}

type fileSystemJSON struct {
	OwnerID                      string         `json:"OwnerId"`
	CreationToken                string         `json:"CreationToken"`
	FileSystemID                 string         `json:"FileSystemId"`
	FileSystemARN                string         `json:"FileSystemArn"`
	CreationTime                 epoch          `json:"CreationTime"`
	LifeCycleState               string         `json:"LifeCycleState"`
	Name                         string         `json:"Name,omitempty"`
	NumberOfMountTargets         int            `json:"NumberOfMountTargets"`
	SizeInBytes                  sizeJSON       `json:"SizeInBytes"`
	PerformanceMode              string         `json:"PerformanceMode"`
	Encrypted                    bool           `json:"Encrypted"`
	KmsKeyID                     string         `json:"KmsKeyId,omitempty"`
	ThroughputMode               string         `json:"ThroughputMode"`
	ProvisionedThroughputInMibps *float64       `json:"ProvisionedThroughputInMibps,omitempty"`
	AvailabilityZoneName         string         `json:"AvailabilityZoneName,omitempty"`
	AvailabilityZoneID           string         `json:"AvailabilityZoneId,omitempty"`
	Tags                         []tagJSON      `json:"Tags"`
	FileSystemProtection         protectionJSON `json:"FileSystemProtection"`
}

func fileSystemOut(f control.FileSystem) fileSystemJSON {
	out := fileSystemJSON{
		OwnerID: f.OwnerID, CreationToken: f.CreationToken, FileSystemID: f.ID, FileSystemARN: f.ARN,
		CreationTime: epoch(f.CreationTime), LifeCycleState: string(f.LifeCycleState), Name: f.Name,
		NumberOfMountTargets: f.NumberOfMountTargets,
		SizeInBytes: sizeJSON{Value: f.Size.Value, Timestamp: epoch(f.Size.Timestamp), ValueInIA: f.Size.InIA,
			ValueInStandard: f.Size.InStandard, ValueInArchive: f.Size.InArchive},
		PerformanceMode: f.PerformanceMode, Encrypted: f.Encrypted, KmsKeyID: f.KMSKeyARN, ThroughputMode: f.ThroughputMode,
		AvailabilityZoneName: f.AvailabilityZoneName, AvailabilityZoneID: f.AvailabilityZoneID, Tags: tagsJSON(f.Tags),
		FileSystemProtection: protectionJSON{f.Protection},
	}
	if f.ThroughputMode == control.ThroughputProvisioned {
		v := f.ProvisionedThroughputMibps
		out.ProvisionedThroughputInMibps = &v
	}
	return out
}

type mountTargetJSON struct {
	OwnerID              string `json:"OwnerId"`
	MountTargetID        string `json:"MountTargetId"`
	FileSystemID         string `json:"FileSystemId"`
	SubnetID             string `json:"SubnetId"`
	LifeCycleState       string `json:"LifeCycleState"`
	IPAddress            string `json:"IpAddress"`
	NetworkInterfaceID   string `json:"NetworkInterfaceId"`
	AvailabilityZoneID   string `json:"AvailabilityZoneId"`
	AvailabilityZoneName string `json:"AvailabilityZoneName"`
	VpcID                string `json:"VpcId"`
}

func mountTargetOut(m control.MountTarget) mountTargetJSON {
	return mountTargetJSON{
		OwnerID: m.OwnerID, MountTargetID: m.ID, FileSystemID: m.FileSystemID, SubnetID: m.SubnetID,
		LifeCycleState: string(m.LifeCycleState), IPAddress: m.IPAddress, NetworkInterfaceID: m.NetworkInterfaceID,
		AvailabilityZoneID: m.AvailabilityZoneID, AvailabilityZoneName: m.AvailabilityZoneName, VpcID: m.VPCID,
	}
}

type posixUserJSON struct {
	UID           uint32   `json:"Uid"`
	GID           uint32   `json:"Gid"`
	SecondaryGIDs []uint32 `json:"SecondaryGids,omitempty"`
}

type creationInfoJSON struct {
	OwnerUID    uint32 `json:"OwnerUid"`
	OwnerGID    uint32 `json:"OwnerGid"`
	Permissions string `json:"Permissions"`
}

type rootDirectoryJSON struct {
	Path         string            `json:"Path"`
	CreationInfo *creationInfoJSON `json:"CreationInfo,omitempty"`
}

type accessPointJSON struct {
	ClientToken    string            `json:"ClientToken"`
	Name           string            `json:"Name,omitempty"`
	Tags           []tagJSON         `json:"Tags"`
	AccessPointID  string            `json:"AccessPointId"`
	AccessPointARN string            `json:"AccessPointArn"`
	FileSystemID   string            `json:"FileSystemId"`
	PosixUser      *posixUserJSON    `json:"PosixUser,omitempty"`
	RootDirectory  rootDirectoryJSON `json:"RootDirectory"`
	OwnerID        string            `json:"OwnerId"`
	LifeCycleState string            `json:"LifeCycleState"`
}

func accessPointOut(a control.AccessPoint) accessPointJSON {
	out := accessPointJSON{
		ClientToken: a.ClientToken, Name: a.Name, Tags: tagsJSON(a.Tags), AccessPointID: a.ID, AccessPointARN: a.ARN,
		FileSystemID: a.FileSystemID, RootDirectory: rootDirectoryJSON{Path: a.RootDirectory.Path},
		OwnerID: a.OwnerID, LifeCycleState: string(a.LifeCycleState),
	}
	if u := a.PosixUser; u != nil {
		out.PosixUser = &posixUserJSON{UID: u.UID, GID: u.GID, SecondaryGIDs: u.SecondaryGIDs}
	}
	if c := a.RootDirectory.CreationInfo; c != nil {
		out.RootDirectory.CreationInfo = &creationInfoJSON{OwnerUID: c.OwnerUID, OwnerGID: c.OwnerGID, Permissions: c.Permissions}
	}
	return out
}

type lifecyclePolicyJSON struct {
	TransitionToIA                  string `json:"TransitionToIA,omitempty"`
	TransitionToPrimaryStorageClass string `json:"TransitionToPrimaryStorageClass,omitempty"`
	TransitionToArchive             string `json:"TransitionToArchive,omitempty"`
}

type lifecycleConfigurationJSON struct {
	LifecyclePolicies []lifecyclePolicyJSON `json:"LifecyclePolicies"`
}

func lifecycleOut(ps []control.LifecyclePolicy) lifecycleConfigurationJSON {
	out := lifecycleConfigurationJSON{LifecyclePolicies: make([]lifecyclePolicyJSON, len(ps))}
	for i, p := range ps {
		out.LifecyclePolicies[i] = lifecyclePolicyJSON(p)
	}
	return out
}

type backupPolicyJSON struct {
	BackupPolicy struct {
		Status string `json:"Status"`
	} `json:"BackupPolicy"`
}

func backupOut(status string) backupPolicyJSON {
	var b backupPolicyJSON
	b.BackupPolicy.Status = status
	return b
}

type fileSystemPolicyJSON struct {
	FileSystemID string `json:"FileSystemId"`
	Policy       string `json:"Policy"`
}

type resourceIDPreferenceJSON struct {
	ResourceIDType string   `json:"ResourceIdType"`
	Resources      []string `json:"Resources"`
}

func preferenceOut(p control.ResourceIDPreference) resourceIDPreferenceJSON {
	return resourceIDPreferenceJSON{ResourceIDType: p.ResourceIDType, Resources: p.Resources}
}
