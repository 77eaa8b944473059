"""The EFS flow with boto3, against the endpoint in AWS_ENDPOINT_URL_EFS.

create (idempotent) -> wait available -> mount targets in two subnets ->
list (paginators) -> tag -> update -> NFS through both mount targets
(nfs-cp / nfs-cat) -> errors -> delete. Prints one JSON line of results;
exits non-zero with a message on the first failure.
"""
import json
import os
import subprocess
import sys
import time

import boto3
from botocore.exceptions import ClientError

NFS_PORT = os.environ["E2E_NFS_PORT"]
efs = boto3.client("efs")
ec2 = boto3.client("ec2")


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def expect_error(code, status, fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        http = e.response["ResponseMetadata"]["HTTPStatusCode"]
        if got != code or http != status or not e.response["Error"]["Message"]:
            fail("%s: got %s/%s %r, want %s/%s" % (fn.__name__, got, http, e.response["Error"], code, status))
        return e
    fail("%s(%r) succeeded, want %s" % (fn.__name__, kw, code))


def wait(what, pred, secs=30):
    end = time.time() + secs
    while not pred():
        if time.time() > end:
            fail("timed out waiting for " + what)
        time.sleep(0.1)


def nfs_url(ip, path):
    if path.count("/") == 1:
        path = "/" + path
    return "nfs://%s%s?nfsport=%s&mountport=%s&version=3" % (ip, path, NFS_PORT, NFS_PORT)


fs = efs.create_file_system(CreationToken="boto3-demo", PerformanceMode="generalPurpose",
                            ThroughputMode="provisioned", ProvisionedThroughputInMibps=64.0,
                            Tags=[{"Key": "Name", "Value": "boto3-demo"}])
fs_id = fs["FileSystemId"]
if fs["ResponseMetadata"]["HTTPStatusCode"] != 201 or fs["LifeCycleState"] != "creating":
    fail("create_file_system: %r" % fs)
if fs["Name"] != "boto3-demo" or fs["FileSystemProtection"]["ReplicationOverwriteProtection"] != "ENABLED":
    fail("create_file_system: %r" % fs)
if not hasattr(fs["CreationTime"], "timestamp"):
    fail("CreationTime is not a datetime: %r" % fs["CreationTime"])
e = expect_error("FileSystemAlreadyExists", 409, efs.create_file_system, CreationToken="boto3-demo")
if e.response.get("FileSystemId") != fs_id:
    fail("FileSystemAlreadyExists without FileSystemId: %r" % e.response)


def fs_state():
    return efs.describe_file_systems(FileSystemId=fs_id)["FileSystems"][0]["LifeCycleState"]


wait("available", lambda: fs_state() == "available")

subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
sg = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]["GroupId"]
mts = []
for s in subnets:
    mt = efs.create_mount_target(FileSystemId=fs_id, SubnetId=s, SecurityGroups=[sg])
    mts.append((mt["MountTargetId"], mt["IpAddress"]))
expect_error("MountTargetConflict", 409, efs.create_mount_target, FileSystemId=fs_id, SubnetId=subnets[0])
for mt_id, _ in mts:
    wait("mount target", lambda: efs.describe_mount_targets(MountTargetId=mt_id)["MountTargets"][0]["LifeCycleState"] == "available")
listed = [m["MountTargetId"] for page in efs.get_paginator("describe_mount_targets").paginate(FileSystemId=fs_id, PaginationConfig={"PageSize": 1})
          for m in page["MountTargets"]]
if sorted(listed) != sorted(m for m, _ in mts):
    fail("paginated mount targets %r" % listed)
names = [f["FileSystemId"] for page in efs.get_paginator("describe_file_systems").paginate() for f in page["FileSystems"]]
if names != [fs_id]:
    fail("describe_file_systems paginator %r" % names)

efs.tag_resource(ResourceId=fs["FileSystemArn"], Tags=[{"Key": "env", "Value": "prod"}])
tags = {t["Key"]: t["Value"] for t in efs.list_tags_for_resource(ResourceId=fs_id)["Tags"]}
if tags != {"Name": "boto3-demo", "env": "prod"}:
    fail("tags %r" % tags)

up = efs.update_file_system(FileSystemId=fs_id, ProvisionedThroughputInMibps=128.0)
if up["ResponseMetadata"]["HTTPStatusCode"] != 202 or up["LifeCycleState"] != "updating" or up["ProvisionedThroughputInMibps"] != 128.0:
    fail("update_file_system %r" % up)
wait("available after update", lambda: fs_state() == "available")
# Increases are free; a mode change is allowed once per 24 hours.
efs.update_file_system(FileSystemId=fs_id, ThroughputMode="bursting")
wait("available after a mode change", lambda: fs_state() == "available")
expect_error("TooManyRequests", 429, efs.update_file_system, FileSystemId=fs_id, ThroughputMode="elastic")

payload = b"boto3 wrote this over NFS\n" * 1000
with open(os.environ["E2E_TMP"] + "/in", "wb") as f:
    f.write(payload)
subprocess.run(["nfs-cp", os.environ["E2E_TMP"] + "/in", nfs_url(mts[0][1], "/from-boto3")], check=True, capture_output=True)
got = subprocess.run(["nfs-cat", nfs_url(mts[1][1], "/from-boto3")], check=True, capture_output=True).stdout
if got != payload:
    fail("read back %d bytes through the other mount target, want %d" % (len(got), len(payload)))

expect_error("FileSystemNotFound", 404, efs.describe_file_systems, FileSystemId="fs-0123456789abcdef0")
expect_error("FileSystemInUse", 409, efs.delete_file_system, FileSystemId=fs_id)
expect_error("BadRequest", 400, efs.create_file_system, CreationToken="x", ThroughputMode="warp")
expect_error("PolicyNotFound", 404, efs.describe_file_system_policy, FileSystemId=fs_id)
expect_error("SecurityGroupNotFound", 400, efs.create_mount_target, FileSystemId=fs_id, SubnetId=subnets[0], SecurityGroups=["sg-0123456789abcdef0"])

for mt_id, _ in mts:
    efs.delete_mount_target(MountTargetId=mt_id)
wait("mount targets gone", lambda: not efs.describe_mount_targets(FileSystemId=fs_id)["MountTargets"])
d = efs.delete_file_system(FileSystemId=fs_id)
if d["ResponseMetadata"]["HTTPStatusCode"] != 204:
    fail("delete_file_system %r" % d)


def gone():
    try:
        efs.describe_file_systems(FileSystemId=fs_id)
        return False
    except ClientError as e:
        return e.response["Error"]["Code"] == "FileSystemNotFound"


wait("deleted", gone)
print(json.dumps({"file_system": fs_id, "mount_targets": [m for m, _ in mts], "bytes_over_nfs": len(got)}))
