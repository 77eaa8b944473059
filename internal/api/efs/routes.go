package efs

import (
	"net/http"
	"strings"

	"github.com/regionfs/regionfs/internal/api/awserr"
)

// table is the EFS operations (botocore efs 2015-02-01), literal paths
// before labelled ones.
func (h *Handler) table() []route {
	r := func(method, op, path string, serve func(*call) error) route {
		rt := route{method: method, op: op, serve: serve, trailer: strings.HasSuffix(path, "/")}
		rt.path = strings.Split(strings.Trim(path, "/"), "/")
		return rt
	}
	return []route{
		r(http.MethodGet, "DescribeReplicationConfigurations", "file-systems/replication-configurations", replicationElsewhere("DescribeReplicationConfigurations")),
		r(http.MethodPost, "CreateFileSystem", "file-systems", createFileSystem),
		r(http.MethodGet, "DescribeFileSystems", "file-systems", describeFileSystems),
		r(http.MethodPut, "UpdateFileSystem", "file-systems/{FileSystemId}", updateFileSystem),
		r(http.MethodDelete, "DeleteFileSystem", "file-systems/{FileSystemId}", deleteFileSystem),
		r(http.MethodPut, "UpdateFileSystemProtection", "file-systems/{FileSystemId}/protection", updateFileSystemProtection),
		r(http.MethodPut, "PutLifecycleConfiguration", "file-systems/{FileSystemId}/lifecycle-configuration", putLifecycleConfiguration),
		r(http.MethodGet, "DescribeLifecycleConfiguration", "file-systems/{FileSystemId}/lifecycle-configuration", describeLifecycleConfiguration),
		r(http.MethodPut, "PutBackupPolicy", "file-systems/{FileSystemId}/backup-policy", putBackupPolicy),
		r(http.MethodGet, "DescribeBackupPolicy", "file-systems/{FileSystemId}/backup-policy", describeBackupPolicy),
		r(http.MethodPut, "PutFileSystemPolicy", "file-systems/{FileSystemId}/policy", putFileSystemPolicy),
		r(http.MethodGet, "DescribeFileSystemPolicy", "file-systems/{FileSystemId}/policy", describeFileSystemPolicy),
		r(http.MethodDelete, "DeleteFileSystemPolicy", "file-systems/{FileSystemId}/policy", deleteFileSystemPolicy),
		r(http.MethodPost, "CreateReplicationConfiguration", "file-systems/{SourceFileSystemId}/replication-configuration", replicationElsewhere("CreateReplicationConfiguration")),
		r(http.MethodDelete, "DeleteReplicationConfiguration", "file-systems/{SourceFileSystemId}/replication-configuration", replicationElsewhere("DeleteReplicationConfiguration")),
		r(http.MethodPost, "CreateMountTarget", "mount-targets", createMountTarget),
		r(http.MethodGet, "DescribeMountTargets", "mount-targets", describeMountTargets),
		r(http.MethodDelete, "DeleteMountTarget", "mount-targets/{MountTargetId}", deleteMountTarget),
		r(http.MethodGet, "DescribeMountTargetSecurityGroups", "mount-targets/{MountTargetId}/security-groups", describeMountTargetSecurityGroups),
		r(http.MethodPut, "ModifyMountTargetSecurityGroups", "mount-targets/{MountTargetId}/security-groups", modifyMountTargetSecurityGroups),
		r(http.MethodPost, "CreateAccessPoint", "access-points", createAccessPoint),
		r(http.MethodGet, "DescribeAccessPoints", "access-points", describeAccessPoints),
		r(http.MethodDelete, "DeleteAccessPoint", "access-points/{AccessPointId}", deleteAccessPoint),
		r(http.MethodPost, "TagResource", "resource-tags/{ResourceId}", tagResource),
		r(http.MethodDelete, "UntagResource", "resource-tags/{ResourceId}", untagResource),
		r(http.MethodGet, "ListTagsForResource", "resource-tags/{ResourceId}", listTagsForResource),
		r(http.MethodPost, "CreateTags", "create-tags/{FileSystemId}", createTags),
		r(http.MethodPost, "DeleteTags", "delete-tags/{FileSystemId}", deleteTags),
		r(http.MethodGet, "DescribeTags", "tags/{FileSystemId}/", describeTags),
		r(http.MethodGet, "DescribeAccountPreferences", "account-preferences", describeAccountPreferences),
		r(http.MethodPut, "PutAccountPreferences", "account-preferences", putAccountPreferences),
		r(http.MethodGet, "RegionfsStorageStatus", "regionfs/storage-status", regionfsStorageStatus),
	}
}

// replicationElsewhere answers the replication operations, which another
// part of regionfs serves once it is wired in (see package replication).
func replicationElsewhere(op string) func(*call) error {
	return func(*call) error {
		return errorf(awserr.ErrUnknownOperation, "%s is not served by this region's EFS API.", op)
	}
}
