"""Model-driven conformance of regionfs's EFS and CloudWatch APIs with boto3.

Every response boto3 parses is checked against botocore's service model
(required members, types, enums, lengths, ranges, patterns, timestamps);
every error against the operation's modeled errors and their HTTP status.
Scenarios then call each operation with valid input, page through every
list, and call each with invalid input (missing required member, values out
of the model's bounds, unknown ids, wrong states, duplicates), checking the
error code and that nothing changed.

Environment: EAST, WEST (API endpoints of us-east-1 and us-west-2),
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY. Prints one JSON object on its
last line: {"problems": [...], "called": {...}}.
"""
import datetime
import json
import os
import sys
import time
import uuid

import boto3
import botocore.config
import botocore.session
from botocore.exceptions import ClientError

try:
    import regex as re_  # \p{L} and friends, as in the model's Java patterns
except ImportError:  # pragma: no cover
    re_ = None

problems = []
called = {}  # "svc:Op" -> "ok" when a call answered with success
current = ["setup"]


def problem(msg):
    problems.append("%s: %s" % (current[0], msg))


def check_value(shape, v, path):
    t = shape.type_name
    if t == "structure":
        if not isinstance(v, dict):
            return problem("%s: %r is not a structure" % (path, v))
        for name in shape.required_members:
            if name not in v:
                problem("%s: required member %s missing" % (path, name))
        for name, mv in v.items():
            if name == "ResponseMetadata" or name == "Error":
                continue
            ms = shape.members.get(name)
            if ms is None:
                continue
            check_value(ms, mv, path + "." + name)
    elif t == "list":
        if not isinstance(v, list):
            return problem("%s: %r is not a list" % (path, v))
        for i, x in enumerate(v):
            check_value(shape.member, x, "%s[%d]" % (path, i))
    elif t == "map":
        if not isinstance(v, dict):
            return problem("%s: %r is not a map" % (path, v))
        for k, x in v.items():
            check_value(shape.key, k, path + ".key")
            check_value(shape.value, x, "%s[%s]" % (path, k))
    elif t == "string":
        if not isinstance(v, str):
            return problem("%s: %r is not a string" % (path, v))
        if shape.enum and v not in shape.enum:
            problem("%s: %r is not one of %s" % (path, v, shape.enum))
        mn, mx = shape.metadata.get("min"), shape.metadata.get("max")
        if mn is not None and len(v) < mn:
            problem("%s: %r shorter than %d" % (path, v, mn))
        if mx is not None and len(v) > mx:
            problem("%s: %r longer than %d" % (path, v, mx))
        pat = shape.metadata.get("pattern")
        if pat and re_ is not None:
            try:
                ok = re_.search(pat, v) is not None
            except Exception:
                ok = True
            if not ok:
                problem("%s: %r does not match %s" % (path, v, pat))
    elif t in ("integer", "long"):
        if not isinstance(v, int) or isinstance(v, bool):
            return problem("%s: %r is not an integer" % (path, v))
        mn, mx = shape.metadata.get("min"), shape.metadata.get("max")
        if mn is not None and v < mn:
            problem("%s: %r below %s" % (path, v, mn))
        if mx is not None and v > mx:
            problem("%s: %r above %s" % (path, v, mx))
    elif t in ("double", "float"):
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return problem("%s: %r is not a number" % (path, v))
    elif t == "boolean":
        if not isinstance(v, bool):
            problem("%s: %r is not a boolean" % (path, v))
    elif t == "timestamp":
        if not isinstance(v, datetime.datetime):
            return problem("%s: %r is not a timestamp" % (path, v))
        if abs((v - datetime.datetime.now(datetime.timezone.utc)).days) > 3650:
            problem("%s: timestamp %s is far from now" % (path, v))
    elif t == "blob":
        if not isinstance(v, (bytes, bytearray)):
            problem("%s: %r is not a blob" % (path, v))


def check_wire_timestamps(shape, v, path):
    """JSON protocols send timestamps as epoch seconds, a JSON number: the
    Go SDK refuses anything else (botocore would take a string)."""
    t = shape.type_name
    if t == "structure" and isinstance(v, dict):
        for name, ms in shape.members.items():
            wire = ms.serialization.get("name", name)
            if wire in v:
                check_wire_timestamps(ms, v[wire], path + "." + name)
    elif t == "list" and isinstance(v, list):
        for i, x in enumerate(v):
            check_wire_timestamps(shape.member, x, "%s[%d]" % (path, i))
    elif t == "map" and isinstance(v, dict):
        for k, x in v.items():
            check_wire_timestamps(shape.value, x, "%s[%s]" % (path, k))
    elif t == "timestamp" and shape.serialization.get("timestampFormat") in (None, "unixTimestamp"):
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            problem("%s: timestamp %r on the wire, want epoch seconds as a JSON number" % (path, v))


def after_call(http_response, parsed, model, **kw):
    svc = model.service_model.service_name
    key = "%s:%s" % (svc, model.name)
    status = http_response.status_code
    # (botocore's RPC v2 CBOR parser drops the request id of an answer without output.)
    if (model.output_shape is not None or status >= 300) and not parsed.get("ResponseMetadata", {}).get("RequestId"):
        problem("%s: HTTP %d without a request id" % (model.name, status))
    if status < 300:
        called[key] = "ok"
        want = model.http.get("responseCode")
        if want is not None and status != want:
            problem("%s answered HTTP %d, the model says %d" % (model.name, status, want))
        if model.output_shape is not None:
            check_value(model.output_shape, parsed, model.name)
            if "json" in http_response.headers.get("content-type", "") and http_response.content:
                try:
                    body = json.loads(http_response.content)
                except ValueError:
                    return problem("%s: the body is not JSON" % model.name)
                check_wire_timestamps(model.output_shape, body, model.name)
        return
    called.setdefault(key, "error")
    err = parsed.get("Error", {})
    code = err.get("Code")
    if not code or code == str(status):
        problem("%s: HTTP %d without an error code the client parses (%r)" % (model.name, status, parsed))
        return
    modeled = {}
    for es in model.error_shapes:
        c = es.metadata.get("error", {}).get("code", es.name)
        modeled[c] = es.metadata.get("error", {}).get("httpStatusCode")
    if code in modeled and modeled[code] and modeled[code] != status:
        problem("%s: %s with HTTP %d, the model says %d" % (model.name, code, status, modeled[code]))
    for es in model.error_shapes:
        c = es.metadata.get("error", {}).get("code", es.name)
        if c == code:
            for name in es.required_members:
                if name not in parsed and name not in err:
                    problem("%s: error %s lacks its required member %s" % (model.name, code, name))


def client(svc, endpoint, region, validate=True):
    cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, parameter_validation=validate, connect_timeout=10, read_timeout=30)
    c = boto3.client(svc, endpoint_url=endpoint, region_name=region, config=cfg)
    c.meta.events.register("after-call.*.*", after_call)
    return c


def expect(code, fn, *a, **kw):
    """Calls fn, which must fail with code (or one of the codes)."""
    codes = code if isinstance(code, (list, tuple, set)) else [code]
    try:
        fn(*a, **kw)
    except ClientError as e:
        got = e.response["Error"].get("Code")
        if got not in codes:
            problem("%s(%s): got %s %r, want %s" % (fn.__name__, short(kw), got, e.response["Error"].get("Message"), "/".join(codes)))
        return e
    else:
        problem("%s(%s): succeeded, want %s" % (fn.__name__, short(kw), "/".join(codes)))


def short(kw):
    s = json.dumps(kw, default=str)
    return s if len(s) < 160 else s[:157] + "..."


def wait(desc, fn, deadline=60):
    end = time.time() + deadline
    while time.time() < end:
        if fn():
            return True
        time.sleep(0.1)
    problem("timed out waiting for " + desc)
    return False


# ---------------------------------------------------------------- EFS

RUN = uuid.uuid4().hex[:8]
ACCOUNT = "123456789012"


def efs_snapshot(efs, ids):
    """What a failed call must leave as it was."""
    out = {}
    for fs in ids:
        d = efs.describe_file_systems(FileSystemId=fs)["FileSystems"][0]
        out[fs] = {
            "fs": {k: d.get(k) for k in ("LifeCycleState", "Name", "ThroughputMode", "ProvisionedThroughputInMibps", "NumberOfMountTargets", "FileSystemProtection")},
            "tags": sorted((t["Key"], t["Value"]) for t in efs.list_tags_for_resource(ResourceId=fs)["Tags"]),
            "mts": sorted((m["MountTargetId"], m["LifeCycleState"]) for m in efs.describe_mount_targets(FileSystemId=fs)["MountTargets"]),
            "aps": sorted(a["AccessPointId"] for a in efs.describe_access_points(FileSystemId=fs)["AccessPoints"]),
            "lifecycle": efs.describe_lifecycle_configuration(FileSystemId=fs)["LifecyclePolicies"],
        }
        try:
            out[fs]["policy"] = efs.describe_file_system_policy(FileSystemId=fs)["Policy"]
        except ClientError:
            out[fs]["policy"] = None
        try:
            out[fs]["backup"] = efs.describe_backup_policy(FileSystemId=fs)["BackupPolicy"]
        except ClientError:
            out[fs]["backup"] = None
    out["count"] = len(pages(efs.describe_file_systems, "FileSystems", "Marker", "NextMarker", "MaxItems", 100))
    return out


def pages(fn, key, in_tok, out_tok, size_name, size, **kw):
    """Every item of every page, checking the paging tokens."""
    items, tok, seen_tokens = [], None, set()
    for _ in range(1000):
        args = dict(kw)
        if size_name:
            args[size_name] = size
        if tok is not None:
            args[in_tok] = tok
        r = fn(**args)
        got = r.get(key, [])
        if size_name and len(got) > size:
            problem("%s: a page of %d items for %s=%d" % (fn.__name__, len(got), size_name, size))
        if tok is not None and in_tok == "Marker" and r.get("Marker") != tok:
            problem("%s: Marker %r not echoed (got %r)" % (fn.__name__, tok, r.get("Marker")))
        items.extend(got)
        tok = r.get(out_tok)
        if not tok:
            return items
        if tok in seen_tokens:
            problem("%s: token %r repeats" % (fn.__name__, tok))
            return items
        seen_tokens.add(tok)
    problem("%s: more than 1000 pages" % fn.__name__)
    return items


def exactly_once(what, items, want):
    got = sorted(items)
    if got != sorted(want):
        problem("%s: paged %s, want each of %s exactly once" % (what, got, sorted(want)))


def fs_state(efs, fs):
    try:
        return efs.describe_file_systems(FileSystemId=fs)["FileSystems"][0]["LifeCycleState"]
    except ClientError as e:
        return e.response["Error"]["Code"]


def mt_state(efs, mt):
    try:
        return efs.describe_mount_targets(MountTargetId=mt)["MountTargets"][0]["LifeCycleState"]
    except ClientError as e:
        return e.response["Error"]["Code"]


def efs_valid(east, west, ec2):
    current[0] = "efs/valid"
    subnets = {s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}
    cidr = {s["SubnetId"]: s["CidrBlock"] for s in ec2.describe_subnets()["Subnets"]}[subnets[sorted(subnets)[0]]]
    free_ip = cidr.rsplit(".", 1)[0] + ".200"
    sg = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    azs = sorted(subnets)
    fss = []
    for i in range(3):
        d = east.create_file_system(CreationToken="conf-%s-%d" % (RUN, i), Tags=[{"Key": "Name", "Value": "conf-%d" % i}])
        fss.append(d["FileSystemId"])
        if d.get("Name") != "conf-%d" % i:
            problem("CreateFileSystem: Name %r, want the Name tag" % d.get("Name"))
    for fs in fss:
        wait(fs + " available", lambda: fs_state(east, fs) == "available")
    fs1, fs2, fs3 = fss
    arn1 = "arn:aws:elasticfilesystem:us-east-1:%s:file-system/%s" % (ACCOUNT, fs1)

    exactly_once("DescribeFileSystems MaxItems=1",
                 [f["FileSystemId"] for f in pages(east.describe_file_systems, "FileSystems", "Marker", "NextMarker", "MaxItems", 1) if f["FileSystemId"] in fss], fss)
    all_fs = [f["FileSystemId"] for f in pages(east.describe_file_systems, "FileSystems", "Marker", "NextMarker", None, 0)]
    exactly_once("DescribeFileSystems", [f for f in all_fs if f in fss], fss)
    for sel in ({"FileSystemId": fs1}, {"FileSystemId": arn1}, {"CreationToken": "conf-%s-0" % RUN}):
        r = east.describe_file_systems(**sel)["FileSystems"]
        if [f["FileSystemId"] for f in r] != [fs1]:
            problem("DescribeFileSystems(%s): %s" % (sel, [f["FileSystemId"] for f in r]))
    p = east.get_paginator("describe_file_systems")
    got = [f["FileSystemId"] for page in p.paginate(PaginationConfig={"PageSize": 2}) for f in page["FileSystems"]]
    exactly_once("describe_file_systems paginator", [f for f in got if f in fss], fss)

    east.update_file_system(FileSystemId=fs3, ThroughputMode="elastic")
    wait(fs3 + " available after update", lambda: fs_state(east, fs3) == "available")
    east.update_file_system_protection(FileSystemId=fs3, ReplicationOverwriteProtection="ENABLED")
    east.put_lifecycle_configuration(FileSystemId=fs1, LifecyclePolicies=[{"TransitionToIA": "AFTER_30_DAYS"}, {"TransitionToPrimaryStorageClass": "AFTER_1_ACCESS"}])
    lc = east.describe_lifecycle_configuration(FileSystemId=fs1)["LifecyclePolicies"]
    if len(lc) != 2:
        problem("DescribeLifecycleConfiguration: %s" % lc)
    east.put_backup_policy(FileSystemId=fs1, BackupPolicy={"Status": "ENABLED"})
    east.describe_backup_policy(FileSystemId=fs1)
    expect("PolicyNotFound", east.describe_file_system_policy, FileSystemId=fs1)
    pol = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "elasticfilesystem:ClientMount", "Resource": arn1}]})
    east.put_file_system_policy(FileSystemId=fs1, Policy=pol)
    east.describe_file_system_policy(FileSystemId=fs1)
    east.delete_file_system_policy(FileSystemId=fs1)
    expect("PolicyNotFound", east.describe_file_system_policy, FileSystemId=fs1)
    east.put_file_system_policy(FileSystemId=fs1, Policy=pol)

    # tags, both APIs
    east.tag_resource(ResourceId=fs1, Tags=[{"Key": "k%d" % i, "Value": "v%d" % i} for i in range(5)])
    keys = [t["Key"] for t in pages(east.list_tags_for_resource, "Tags", "NextToken", "NextToken", "MaxResults", 2, ResourceId=fs1)]
    exactly_once("ListTagsForResource MaxResults=2", keys, ["Name"] + ["k%d" % i for i in range(5)])
    keys = [t["Key"] for t in pages(east.describe_tags, "Tags", "Marker", "NextMarker", "MaxItems", 2, FileSystemId=fs1)]
    exactly_once("DescribeTags MaxItems=2", keys, ["Name"] + ["k%d" % i for i in range(5)])
    east.untag_resource(ResourceId=fs1, TagKeys=["k3", "k4"])
    east.create_tags(FileSystemId=fs1, Tags=[{"Key": "old", "Value": "x"}])
    east.delete_tags(FileSystemId=fs1, TagKeys=["old", "k2"])
    keys = [t["Key"] for t in east.list_tags_for_resource(ResourceId=arn1)["Tags"]]
    exactly_once("tags after untag", keys, ["Name", "k0", "k1"])

    # access points
    aps = []
    for i in range(3):
        a = east.create_access_point(ClientToken="ap-%s-%d" % (RUN, i), FileSystemId=fs1, Tags=[{"Key": "Name", "Value": "ap%d" % i}],
                                     PosixUser={"Uid": 1000, "Gid": 1000}, RootDirectory={"Path": "/app%d" % i, "CreationInfo": {"OwnerUid": 1000, "OwnerGid": 1000, "Permissions": "0755"}})
        aps.append(a["AccessPointId"])
    wait("access points available", lambda: all(x.get("LifeCycleState") == "available" for x in east.describe_access_points(FileSystemId=fs1)["AccessPoints"]))
    exactly_once("DescribeAccessPoints MaxResults=1",
                 [a["AccessPointId"] for a in pages(east.describe_access_points, "AccessPoints", "NextToken", "NextToken", "MaxResults", 1, FileSystemId=fs1)], aps)
    got = [a["AccessPointId"] for a in pages(east.describe_access_points, "AccessPoints", "NextToken", "NextToken", "MaxResults", 1)]
    exactly_once("DescribeAccessPoints (all) MaxResults=1", [a for a in got if a in aps], aps)
    p = east.get_paginator("describe_access_points")
    got = [a["AccessPointId"] for page in p.paginate(FileSystemId=fs1, PaginationConfig={"PageSize": 2}) for a in page["AccessPoints"]]
    exactly_once("describe_access_points paginator", got, aps)
    r = east.describe_access_points(AccessPointId=aps[0])["AccessPoints"]
    if [a["AccessPointId"] for a in r] != [aps[0]]:
        problem("DescribeAccessPoints(AccessPointId): %s" % r)
    east.tag_resource(ResourceId=aps[0], Tags=[{"Key": "t", "Value": "1"}])
    exactly_once("access point tags", [t["Key"] for t in east.list_tags_for_resource(ResourceId=aps[0])["Tags"]], ["Name", "t"])
    east.untag_resource(ResourceId=aps[0], TagKeys=["t"])
    east.delete_access_point(AccessPointId=aps[2])
    wait("access point deleted", lambda: aps[2] not in [a["AccessPointId"] for a in east.describe_access_points(FileSystemId=fs1)["AccessPoints"]])

    # mount targets
    mts = []
    for az in azs[:2]:
        m = east.create_mount_target(FileSystemId=fs1, SubnetId=subnets[az], SecurityGroups=[sg])
        mts.append(m["MountTargetId"])
    for mt in mts:
        wait(mt + " available", lambda: mt_state(east, mt) == "available")
    exactly_once("DescribeMountTargets MaxItems=1",
                 [m["MountTargetId"] for m in pages(east.describe_mount_targets, "MountTargets", "Marker", "NextMarker", "MaxItems", 1, FileSystemId=fs1)], mts)
    exactly_once("DescribeMountTargets(AccessPointId)",
                 [m["MountTargetId"] for m in east.describe_mount_targets(AccessPointId=aps[0])["MountTargets"]], mts)
    p = east.get_paginator("describe_mount_targets")
    exactly_once("describe_mount_targets paginator",
                 [m["MountTargetId"] for page in p.paginate(FileSystemId=fs1, PaginationConfig={"PageSize": 1}) for m in page["MountTargets"]], mts)
    r = east.describe_mount_targets(MountTargetId=mts[0])["MountTargets"]
    if [m["MountTargetId"] for m in r] != [mts[0]]:
        problem("DescribeMountTargets(MountTargetId): %s" % r)
    east.describe_mount_target_security_groups(MountTargetId=mts[0])
    east.modify_mount_target_security_groups(MountTargetId=mts[0], SecurityGroups=[sg])
    n = east.describe_file_systems(FileSystemId=fs1)["FileSystems"][0]["NumberOfMountTargets"]
    if n != 2:
        problem("NumberOfMountTargets %d, want 2" % n)

    east.describe_account_preferences()
    east.put_account_preferences(ResourceIdType="LONG_ID")
    return {"fss": fss, "aps": aps[:2], "mts": mts, "subnets": subnets, "sg": sg, "arn1": arn1, "policy": pol, "free_ip": free_ip}


def efs_replication(east, west, st):
    current[0] = "efs/replication"
    fs1, fs2, fs3 = st["fss"]
    r = east.create_replication_configuration(SourceFileSystemId=fs2, Destinations=[{"Region": "us-west-2"}])
    dst2 = r["Destinations"][0]["FileSystemId"]
    r = east.create_replication_configuration(SourceFileSystemId=fs3, Destinations=[{"Region": "us-west-2"}])
    dst3 = r["Destinations"][0]["FileSystemId"]
    st["dsts"] = [dst2, dst3]
    for src in (fs2, fs3):
        wait(src + " replication ENABLED", lambda: east.describe_replication_configurations(FileSystemId=src)["Replications"][0]["Destinations"][0]["Status"] == "ENABLED")
    for c, fs in ((east, fs2), (west, dst2)):
        reps = c.describe_replication_configurations(FileSystemId=fs)["Replications"]
        if [x["SourceFileSystemId"] for x in reps] != [fs2]:
            problem("DescribeReplicationConfigurations(%s): %s" % (fs, reps))
        elif reps[0]["Destinations"][0]["FileSystemId"] != dst2:
            problem("DescribeReplicationConfigurations(%s): destination %s, want %s" % (fs, reps[0]["Destinations"], dst2))
    got = [x["SourceFileSystemId"] for x in pages(east.describe_replication_configurations, "Replications", "NextToken", "NextToken", "MaxResults", 1)]
    exactly_once("DescribeReplicationConfigurations MaxResults=1", [x for x in got if x in (fs2, fs3)], [fs2, fs3])
    p = east.get_paginator("describe_replication_configurations")
    got = [x["SourceFileSystemId"] for page in p.paginate(PaginationConfig={"PageSize": 1}) for x in page["Replications"]]
    exactly_once("describe_replication_configurations paginator", [x for x in got if x in (fs2, fs3)], [fs2, fs3])
    prot = west.describe_file_systems(FileSystemId=dst2)["FileSystems"][0].get("FileSystemProtection", {}).get("ReplicationOverwriteProtection")
    if prot != "REPLICATING":
        problem("destination protection %r, want REPLICATING" % prot)

    current[0] = "efs/replication-errors"
    before = efs_snapshot(east, [fs1, fs2, fs3])
    expect("ReplicationNotFound", east.describe_replication_configurations, FileSystemId=fs1)
    expect("FileSystemNotFound", east.describe_replication_configurations, FileSystemId="fs-0123456789abcdef0")
    # Accepted divergence: the same request again is taken as a retry and answers the configuration.
    r = east.create_replication_configuration(SourceFileSystemId=fs2, Destinations=[{"Region": "us-west-2"}])
    if r["Destinations"][0]["FileSystemId"] != dst2:
        problem("CreateReplicationConfiguration retry: destination %s, want %s" % (r["Destinations"][0]["FileSystemId"], dst2))
    expect("ReplicationAlreadyExists", east.create_replication_configuration, SourceFileSystemId=fs2, Destinations=[{"Region": "us-west-2", "FileSystemId": dst3}])
    expect("FileSystemNotFound", east.create_replication_configuration, SourceFileSystemId="fs-0123456789abcdef0", Destinations=[{"Region": "us-west-2"}])
    expect(["BadRequest", "ValidationException"], east.create_replication_configuration, SourceFileSystemId=fs1, Destinations=[{"Region": "us-west-2"}, {"Region": "us-west-2"}])
    expect(["BadRequest", "ValidationException", "UnsupportedAvailabilityZone"], east.create_replication_configuration, SourceFileSystemId=fs1, Destinations=[{"Region": "eu-north-9"}])
    expect(["BadRequest", "ValidationException"], east.create_replication_configuration, SourceFileSystemId=fs1, Destinations=[])
    expect("ReplicationNotFound", east.delete_replication_configuration, SourceFileSystemId=fs1)
    expect("FileSystemNotFound", east.delete_replication_configuration, SourceFileSystemId="fs-0123456789abcdef0")
    expect(["BadRequest", "FileSystemInUse", "ReplicationAlreadyExists"], east.delete_file_system, FileSystemId=fs2)
    after = efs_snapshot(east, [fs1, fs2, fs3])
    if before != after:
        problem("failed replication calls changed state: %s -> %s" % (before, after))
    if len(east.describe_replication_configurations(FileSystemId=fs2)["Replications"]) != 1:
        problem("replication of %s changed" % fs2)

    # The failover step: the destination region deletes the configuration,
    # named by its source file system's id.
    current[0] = "efs/replication-delete"
    west.delete_replication_configuration(SourceFileSystemId=fs3)
    wait("replication of %s gone" % fs3, lambda: _no_replication(east, fs3) and _no_replication(west, dst3))
    for c, fs in ((west, dst3), (east, fs3)):
        prot = c.describe_file_systems(FileSystemId=fs)["FileSystems"][0].get("FileSystemProtection", {}).get("ReplicationOverwriteProtection")
        if prot != "ENABLED":
            problem("%s after the delete: protection %r, want ENABLED" % (fs, prot))
    expect("ReplicationNotFound", east.delete_replication_configuration, SourceFileSystemId=fs3)
    expect(["ReplicationNotFound", "FileSystemNotFound"], west.delete_replication_configuration, SourceFileSystemId=fs3)


def _no_replication(c, fs):
    try:
        c.describe_replication_configurations(FileSystemId=fs)
        return False
    except ClientError as e:
        return e.response["Error"]["Code"] == "ReplicationNotFound"


def efs_errors(east, raw, st):
    current[0] = "efs/errors"
    fs1, fs2, fs3 = st["fss"]
    mt0 = st["mts"][0]
    ap0 = st["aps"][0]
    nofs, nomt, noap = "fs-0123456789abcdef0", "fsmt-0123456789abcdef0", "fsap-0123456789abcdef0"
    before = efs_snapshot(east, st["fss"])
    e = expect("FileSystemAlreadyExists", east.create_file_system, CreationToken="conf-%s-0" % RUN)
    if e is not None and e.response.get("FileSystemId") != fs1:
        problem("FileSystemAlreadyExists: FileSystemId %r, want %s" % (e.response.get("FileSystemId"), fs1))
    e = expect("AccessPointAlreadyExists", east.create_access_point, ClientToken="ap-%s-0" % RUN, FileSystemId=fs1)
    if e is not None and e.response.get("AccessPointId") != ap0:
        problem("AccessPointAlreadyExists: AccessPointId %r, want %s" % (e.response.get("AccessPointId"), ap0))
    expect("FileSystemInUse", east.delete_file_system, FileSystemId=fs1)
    expect("MountTargetConflict", east.create_mount_target, FileSystemId=fs1, SubnetId=st["subnets"][sorted(st["subnets"])[0]], SecurityGroups=[st["sg"]])
    expect("SubnetNotFound", east.create_mount_target, FileSystemId=fs2, SubnetId="subnet-0123456789abcdef0")
    expect("SecurityGroupNotFound", east.create_mount_target, FileSystemId=fs2, SubnetId=st["subnets"][sorted(st["subnets"])[0]], SecurityGroups=["sg-0123456789abcdef0"])
    expect("SecurityGroupNotFound", east.modify_mount_target_security_groups, MountTargetId=mt0, SecurityGroups=["sg-0123456789abcdef0"])
    expect("SecurityGroupLimitExceeded", raw.modify_mount_target_security_groups, MountTargetId=mt0, SecurityGroups=["sg-0123456789abcdef%d" % i for i in range(6)])
    expect("IpAddressInUse", east.create_mount_target, FileSystemId=fs2, SubnetId=st["subnets"][sorted(st["subnets"])[0]],
           IpAddress=east.describe_mount_targets(MountTargetId=mt0)["MountTargets"][0]["IpAddress"])
    expect("BadRequest", east.create_mount_target, FileSystemId=fs2, SubnetId=st["subnets"][sorted(st["subnets"])[0]], IpAddress="10.9.9.9")
    # unknown ids of each kind, in every operation that takes one
    for fn, kw in ((east.describe_file_systems, {"FileSystemId": nofs}), (east.update_file_system, {"FileSystemId": nofs, "ThroughputMode": "elastic"}),
                   (east.delete_file_system, {"FileSystemId": nofs}), (east.update_file_system_protection, {"FileSystemId": nofs, "ReplicationOverwriteProtection": "ENABLED"}),
                   (east.create_mount_target, {"FileSystemId": nofs, "SubnetId": st["subnets"][sorted(st["subnets"])[0]]}),
                   (east.describe_mount_targets, {"FileSystemId": nofs}), (east.put_lifecycle_configuration, {"FileSystemId": nofs, "LifecyclePolicies": []}),
                   (east.describe_lifecycle_configuration, {"FileSystemId": nofs}), (east.put_backup_policy, {"FileSystemId": nofs, "BackupPolicy": {"Status": "ENABLED"}}),
                   (east.describe_backup_policy, {"FileSystemId": nofs}), (east.put_file_system_policy, {"FileSystemId": nofs, "Policy": st["policy"]}),
                   (east.describe_file_system_policy, {"FileSystemId": nofs}), (east.delete_file_system_policy, {"FileSystemId": nofs}),
                   (east.tag_resource, {"ResourceId": nofs, "Tags": [{"Key": "a", "Value": "b"}]}), (east.untag_resource, {"ResourceId": nofs, "TagKeys": ["a"]}),
                   (east.list_tags_for_resource, {"ResourceId": nofs}), (east.create_tags, {"FileSystemId": nofs, "Tags": [{"Key": "a", "Value": "b"}]}),
                   (east.delete_tags, {"FileSystemId": nofs, "TagKeys": ["a"]}), (east.describe_tags, {"FileSystemId": nofs}),
                   (east.create_access_point, {"FileSystemId": nofs, "ClientToken": "x" + RUN}), (east.describe_access_points, {"FileSystemId": nofs})):
        expect("FileSystemNotFound", fn, **kw)
    for fn, kw in ((east.describe_mount_targets, {"MountTargetId": nomt}), (east.delete_mount_target, {"MountTargetId": nomt}),
                   (east.describe_mount_target_security_groups, {"MountTargetId": nomt}),
                   (east.modify_mount_target_security_groups, {"MountTargetId": nomt, "SecurityGroups": [st["sg"]]})):
        expect("MountTargetNotFound", fn, **kw)
    for fn, kw in ((east.describe_access_points, {"AccessPointId": noap}), (east.delete_access_point, {"AccessPointId": noap}),
                   (east.describe_mount_targets, {"AccessPointId": noap}), (east.tag_resource, {"ResourceId": noap, "Tags": [{"Key": "a", "Value": "b"}]}),
                   (east.untag_resource, {"ResourceId": noap, "TagKeys": ["a"]}), (east.list_tags_for_resource, {"ResourceId": noap})):
        expect("AccessPointNotFound", fn, **kw)
    # invalid combinations and values the client does not check
    expect("BadRequest", raw.describe_mount_targets)
    expect("BadRequest", raw.describe_mount_targets, FileSystemId=fs1, MountTargetId=mt0)
    expect("BadRequest", raw.describe_access_points, FileSystemId=fs1, AccessPointId=ap0)
    expect("BadRequest", raw.describe_file_systems, Marker="not-a-marker")
    expect("BadRequest", raw.describe_mount_targets, FileSystemId=fs1, Marker="not-a-marker")
    expect("BadRequest", raw.describe_access_points, NextToken="not-a-token")
    expect("BadRequest", raw.list_tags_for_resource, ResourceId=fs1, NextToken="not-a-token")
    expect("BadRequest", raw.describe_replication_configurations, NextToken="not-a-token")
    expect("BadRequest", raw.update_file_system, FileSystemId=fs1, ThroughputMode="provisioned")
    expect("BadRequest", raw.create_file_system, CreationToken="p" + RUN, ThroughputMode="provisioned")
    expect("BadRequest", raw.create_file_system, CreationToken="b" + RUN, ThroughputMode="bursting", ProvisionedThroughputInMibps=10.0)
    expect("BadRequest", raw.tag_resource, ResourceId=fs1, Tags=[{"Key": "aws:reserved", "Value": "x"}])
    expect("BadRequest", raw.put_lifecycle_configuration, FileSystemId=fs1, LifecyclePolicies=[{"TransitionToIA": "AFTER_30_DAYS", "TransitionToPrimaryStorageClass": "AFTER_1_ACCESS"}])
    expect("InvalidPolicyException", raw.put_file_system_policy, FileSystemId=fs1, Policy="{not json")
    after = efs_snapshot(east, st["fss"])
    if before != after:
        problem("failed calls changed state:\n  before %s\n  after  %s" % (before, after))


def efs_valid_inputs(st):
    fs1 = st["fss"][0]
    sub = st["subnets"][sorted(st["subnets"])[0]]
    tag = [{"Key": "m", "Value": "v"}]
    return {
        "CreateAccessPoint": {"ClientToken": "mut-" + RUN, "FileSystemId": fs1, "Tags": tag, "PosixUser": {"Uid": 1, "Gid": 1, "SecondaryGids": [2]},
                              "RootDirectory": {"Path": "/mut", "CreationInfo": {"OwnerUid": 1, "OwnerGid": 1, "Permissions": "0755"}}},
        "CreateFileSystem": {"CreationToken": "mut-" + RUN, "PerformanceMode": "generalPurpose", "Encrypted": False, "ThroughputMode": "bursting", "Tags": tag,
                             "Backup": False},
        "CreateMountTarget": {"FileSystemId": st["fss"][1], "SubnetId": sub, "SecurityGroups": [st["sg"]], "IpAddress": st["free_ip"], "IpAddressType": "IPV4_ONLY"},
        "CreateReplicationConfiguration": {"SourceFileSystemId": fs1, "Destinations": [{"Region": "us-west-2", "KmsKeyId": "alias/aws/elasticfilesystem",
                                                                                         "RoleArn": "arn:aws:iam::123456789012:role/r"}]},
        "CreateTags": {"FileSystemId": fs1, "Tags": tag},
        "DeleteAccessPoint": {"AccessPointId": "fsap-0123456789abcdef0"},
        "DeleteFileSystem": {"FileSystemId": "fs-0123456789abcdef0"},
        "DeleteFileSystemPolicy": {"FileSystemId": "fs-0123456789abcdef0"},
        "DeleteMountTarget": {"MountTargetId": "fsmt-0123456789abcdef0"},
        "DeleteReplicationConfiguration": {"SourceFileSystemId": "fs-0123456789abcdef0", "DeletionMode": "ALL_CONFIGURATIONS"},
        "DeleteTags": {"FileSystemId": fs1, "TagKeys": ["m"]},
        "DescribeAccessPoints": {"MaxResults": 10, "FileSystemId": fs1},
        "DescribeAccountPreferences": {"MaxResults": 10},
        "DescribeBackupPolicy": {"FileSystemId": fs1},
        "DescribeFileSystemPolicy": {"FileSystemId": fs1},
        "DescribeFileSystems": {"MaxItems": 10, "FileSystemId": fs1},
        "DescribeLifecycleConfiguration": {"FileSystemId": fs1},
        "DescribeMountTargetSecurityGroups": {"MountTargetId": st["mts"][0]},
        "DescribeMountTargets": {"MaxItems": 10, "FileSystemId": fs1},
        "DescribeReplicationConfigurations": {"FileSystemId": st["fss"][1], "MaxResults": 10},
        "DescribeTags": {"MaxItems": 10, "FileSystemId": fs1},
        "ListTagsForResource": {"ResourceId": fs1, "MaxResults": 10},
        "ModifyMountTargetSecurityGroups": {"MountTargetId": st["mts"][0], "SecurityGroups": [st["sg"]]},
        "PutAccountPreferences": {"ResourceIdType": "LONG_ID"},
        "PutBackupPolicy": {"FileSystemId": fs1, "BackupPolicy": {"Status": "ENABLED"}},
        "PutFileSystemPolicy": {"FileSystemId": fs1, "Policy": st["policy"], "BypassPolicyLockoutSafetyCheck": False},
        "PutLifecycleConfiguration": {"FileSystemId": fs1, "LifecyclePolicies": [{"TransitionToIA": "AFTER_30_DAYS"}]},
        "TagResource": {"ResourceId": fs1, "Tags": tag},
        "UntagResource": {"ResourceId": fs1, "TagKeys": ["m"]},
        "UpdateFileSystem": {"FileSystemId": fs1, "ThroughputMode": "bursting"},
        "UpdateFileSystemProtection": {"FileSystemId": fs1, "ReplicationOverwriteProtection": "ENABLED"},
    }


def bad_string(shape):
    """A value of shape's type that breaks one of its string rules, or None."""
    if shape.enum:
        yield "enum", "NOT_AN_ENUM_VALUE"
    mx = shape.metadata.get("max")
    if mx is not None and mx < 30000:
        yield "max", "a" * (mx + 1)
    mn = shape.metadata.get("min")
    if mn is not None and mn >= 2:
        yield "min", "a" * (mn - 1)
    pat = shape.metadata.get("pattern")
    if pat and re_ is not None:
        for cand in ("!!bad value!!", "bad\nvalue", "-", "zz"):
            try:
                if re_.search(pat, cand) is None and (mx is None or len(cand) <= mx) and (mn is None or len(cand) >= mn):
                    yield "pattern", cand
                    break
            except Exception:
                break


def mutations(shape, value, path, depth=0):
    """(description, mutate(value)->value) pairs that each break one rule."""
    out = []
    t = shape.type_name
    if t == "structure" and isinstance(value, dict):
        for name in shape.required_members:
            ms = shape.members[name]
            # botocore fills in a missing idempotency token; uri labels cannot be left out.
            if name in value and ms.serialization.get("location") != "uri" and not ms.metadata.get("idempotencyToken"):
                out.append(("%s.%s missing" % (path, name), lambda v, n=name: {k: x for k, x in v.items() if k != n}))
        for name, ms in shape.members.items():
            if name not in value or depth > 3:
                continue
            for desc, f in mutations(ms, value[name], path + "." + name, depth + 1):
                out.append((desc, lambda v, n=name, f=f: dict(v, **{n: f(v[n])})))
    elif t == "list" and isinstance(value, list):
        mx, mn = shape.metadata.get("max"), shape.metadata.get("min")
        if mx is not None and value and mx < 1000:
            out.append(("%s over max %d" % (path, mx), lambda v, mx=mx: [v[0]] * (mx + 1)))
        if mn is not None and mn >= 1:
            out.append(("%s under min %d" % (path, mn), lambda v: []))
        if value:
            for desc, f in mutations(shape.member, value[0], path + "[0]", depth + 1):
                out.append((desc, lambda v, f=f: [f(v[0])] + v[1:]))
    elif t == "string":
        for kind, bad in bad_string(shape):
            out.append(("%s %s %r" % (path, kind, bad[:20]), lambda v, bad=bad: bad))
    elif t in ("integer", "long", "double", "float"):
        mn, mx = shape.metadata.get("min"), shape.metadata.get("max")
        if mn is not None:
            out.append(("%s below min %s" % (path, mn), lambda v, mn=mn: type(v)(mn - 1)))
        if mx is not None and mx < 2 ** 40:
            out.append(("%s above max %s" % (path, mx), lambda v, mx=mx: type(v)(mx + 1)))
    return out


# Members whose value names something that exists (or is JSON, an
# expression, a token): padding them to their bound makes a value that is
# refused for another reason.
NOT_PADDED = {"FileSystemId", "SourceFileSystemId", "MountTargetId", "AccessPointId", "SubnetId", "SecurityGroups", "KmsKeyId", "ResourceId",
              "ResourceARN", "RoleArn", "Region", "AvailabilityZoneName", "IpAddress", "Ipv6Address", "Policy", "Path", "Permissions", "NextToken",
              "Marker", "StateReasonData", "Expression", "AlarmNames", "AlarmName", "TagKeys", "Id", "Stat", "Statistic", "ExtendedStatistic",
              "Unit", "RecentlyActive", "AlarmActions", "OKActions", "InsufficientDataActions", "ThresholdMetricId", "Namespace", "MetricName",
              "AlarmNamePrefix", "HistoryItemType", "ActionPrefix", "TreatMissingData", "EvaluateLowSampleCountPercentile", "ChildrenOfAlarmName", "ParentsOfAlarmName", "AccountId", "Label"}


def at_bounds(shape, value, path, name="", depth=0):
    """(description, change) pairs that set one member to the largest value
    its shape allows: a server must take it."""
    out = []
    t = shape.type_name
    if name in NOT_PADDED:
        return out
    if t == "structure" and isinstance(value, dict) and depth < 8:
        for n, ms in shape.members.items():
            if n in value:
                for desc, f in at_bounds(ms, value[n], path + "." + n, n, depth + 1):
                    out.append((desc, lambda v, n=n, f=f: dict(v, **{n: f(v[n])})))
    elif t == "list" and isinstance(value, list) and value and depth < 8:
        for desc, f in at_bounds(shape.member, value[0], path + "[0]", name, depth + 1):
            out.append((desc, lambda v, f=f: [f(v[0])] + v[1:]))
    elif t == "string" and isinstance(value, str) and not shape.enum:
        mx = shape.metadata.get("max")
        if mx is not None and len(value) < mx <= 25000:
            padded = value + "a" * (mx - len(value))
            pat = shape.metadata.get("pattern")
            if not pat or (re_ is not None and re_.search(pat, padded)):
                out.append(("%s at its max length %d" % (path, mx), lambda v, padded=padded: padded))
    elif t in ("integer", "long") and isinstance(value, int):
        mx = shape.metadata.get("max")
        if mx is not None and mx != value:
            out.append(("%s at its max %d" % (path, mx), lambda v, mx=mx: int(mx)))
    return out


def run_at_bounds(svc_client, service_model, valid, refused_codes, ops):
    n = 0
    for op in ops:
        om = service_model.operation_model(op)
        fn = getattr(svc_client, botocore.xform_name(op))
        for desc, f in at_bounds(om.input_shape, valid[op], op):
            n += 1
            kw = f(valid[op])
            for tok in ("ClientToken", "CreationToken"):
                if tok in kw and kw[tok] == valid[op].get(tok):
                    kw[tok] = "%s-b%d" % (kw[tok], n)  # a new resource, not a retry of the last
            try:
                fn(**kw)
            except ClientError as e:
                code = e.response["Error"].get("Code")
                if code in refused_codes:
                    problem("%s: refused with %s %r" % (desc, code, e.response["Error"].get("Message")))
    return n


def run_mutations(svc_client, service_model, valid, want_codes, skip=()):
    n = 0
    for op in service_model.operation_names:
        if op not in valid:
            continue
        om = service_model.operation_model(op)
        if om.input_shape is None:
            continue
        fn = getattr(svc_client, botocore.xform_name(op))
        for desc, f in mutations(om.input_shape, valid[op], op):
            if any(s in desc for s in skip):
                continue
            n += 1
            kw = f(valid[op])
            try:
                fn(**kw)
            except ClientError as e:
                code = e.response["Error"].get("Code")
                status = e.response["ResponseMetadata"]["HTTPStatusCode"]
                if code not in want_codes or status != 400:
                    problem("%s: got %s (HTTP %d) %r, want %s 400" % (desc, code, status, e.response["Error"].get("Message"), "/".join(want_codes)))
            except Exception as e:
                problem("%s: client failed: %r" % (desc, e))
            else:
                problem("%s: accepted" % desc)
    return n


def efs_at_bounds(east, st, valid):
    """Values at the model's bounds are taken; what they made is removed."""
    n = run_at_bounds(east, east.meta.service_model, valid, {"BadRequest", "ValidationException"},
                      ["CreateAccessPoint", "CreateFileSystem", "CreateTags", "TagResource"])
    made = [f["FileSystemId"] for f in pages(east.describe_file_systems, "FileSystems", "Marker", "NextMarker", None, 0)
            if f["CreationToken"].startswith("mut-" + RUN)]
    for fs in made:
        wait(fs + " available", lambda: fs_state(east, fs) == "available")
        east.delete_file_system(FileSystemId=fs)
    for ap in east.describe_access_points(FileSystemId=st["fss"][0])["AccessPoints"]:
        if ap["AccessPointId"] not in st["aps"]:
            east.delete_access_point(AccessPointId=ap["AccessPointId"])
    fs1 = st["fss"][0]
    extra = [t["Key"] for t in east.list_tags_for_resource(ResourceId=fs1)["Tags"] if t["Key"] not in ("Name", "k0", "k1")]
    if extra:
        east.untag_resource(ResourceId=fs1, TagKeys=extra)
    wait("file systems at the bounds gone", lambda: all(fs_state(east, fs) == "FileSystemNotFound" for fs in made))
    return n


def efs_confirm_valid(east, west, valid):
    """Each input the mutations started from is valid: it answers."""
    not_found = {"DeleteAccessPoint": "AccessPointNotFound", "DeleteFileSystem": "FileSystemNotFound", "DeleteFileSystemPolicy": "FileSystemNotFound",
                 "DeleteMountTarget": "MountTargetNotFound", "DeleteReplicationConfiguration": "FileSystemNotFound"}
    for op, kw in sorted(valid.items()):
        fn = getattr(east, botocore.xform_name(op))
        if op in not_found:
            expect(not_found[op], fn, **kw)
            continue
        try:
            r = fn(**kw)
        except ClientError as e:
            problem("%s(%s): %s %s" % (op, short(kw), e.response["Error"]["Code"], e.response["Error"].get("Message")))
            continue
        if op == "CreateAccessPoint":
            east.delete_access_point(AccessPointId=r["AccessPointId"])
        elif op == "CreateMountTarget":
            mt = r["MountTargetId"]
            if r.get("IpAddress") != kw["IpAddress"]:
                problem("CreateMountTarget: IpAddress %s, want %s" % (r.get("IpAddress"), kw["IpAddress"]))
            wait(mt + " available", lambda: mt_state(east, mt) == "available")
            east.delete_mount_target(MountTargetId=mt)
            wait(mt + " gone", lambda: mt_state(east, mt) == "MountTargetNotFound")
        elif op == "CreateFileSystem":
            fs = r["FileSystemId"]
            wait(fs + " available", lambda: fs_state(east, fs) == "available")
            east.delete_file_system(FileSystemId=fs)
        elif op == "CreateReplicationConfiguration":
            src, dst = kw["SourceFileSystemId"], r["Destinations"][0]["FileSystemId"]
            # Deleted at once, whether or not the initial sync is done: AWS
            # allows it while ENABLING (the destination becomes writable).
            east.delete_replication_configuration(SourceFileSystemId=src)
            wait("replication of %s gone" % src, lambda: _no_replication(east, src) and _no_replication(west, dst))
            west.delete_file_system(FileSystemId=dst)


def efs_cleanup(east, west, st):
    current[0] = "efs/cleanup"
    fs1, fs2, fs3 = st["fss"]
    east.delete_replication_configuration(SourceFileSystemId=fs2)
    wait("replication of %s gone" % fs2, lambda: _no_replication(east, fs2))
    for ap in st["aps"]:
        east.delete_access_point(AccessPointId=ap)
    for mt in st["mts"]:
        east.delete_mount_target(MountTargetId=mt)
    wait("mount targets gone", lambda: all(mt_state(east, mt) == "MountTargetNotFound" for mt in st["mts"]))
    for fs in st["fss"]:
        east.delete_file_system(FileSystemId=fs)
    for fs in st.get("dsts", []):
        west.delete_file_system(FileSystemId=fs)
    wait("file systems gone", lambda: all(fs_state(east, fs) == "FileSystemNotFound" for fs in st["fss"]))
    wait("destinations gone", lambda: all(fs_state(west, fs) == "FileSystemNotFound" for fs in st.get("dsts", [])))


# ---------------------------------------------------------------- CloudWatch

CW_SERVED = ["GetMetricStatistics", "GetMetricData", "ListMetrics", "PutMetricData", "PutMetricAlarm", "DescribeAlarms", "DescribeAlarmsForMetric",
             "DeleteAlarms", "SetAlarmState", "DescribeAlarmHistory", "EnableAlarmActions", "DisableAlarmActions", "TagResource", "UntagResource",
             "ListTagsForResource"]
# Served, and called with valid input by their own tests (monitor, api/cloudwatch,
# test/e2e/monitoring), not by this script's mutation section.
CW_SERVED_ELSEWHERE = ["PutCompositeAlarm", "PutDashboard", "GetDashboard", "ListDashboards", "DeleteDashboards"]
CW_INVALID = {"InvalidParameterValue", "MissingParameter", "InvalidParameterCombination", "ValidationError"}


def utc(minutes_ago=0):
    return datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0) - datetime.timedelta(minutes=minutes_ago)


def alarm_snapshot(cw, prefix):
    out = {}
    for a in pages(cw.describe_alarms, "MetricAlarms", "NextToken", "NextToken", "MaxRecords", 100, AlarmNamePrefix=prefix):
        out[a["AlarmName"]] = (a["ActionsEnabled"], a.get("Threshold"), a.get("Period"), a.get("AlarmConfigurationUpdatedTimestamp"),
                               sorted((t["Key"], t["Value"]) for t in cw.list_tags_for_resource(ResourceARN=a["AlarmArn"])["Tags"]))
    return out


def cloudwatch(cw, raw, efs_state):
    current[0] = "cloudwatch/valid"
    ns = "Conf/" + RUN
    dim = [{"Name": "Host", "Value": "h1"}]
    # 520 metrics: ListMetrics pages at 500
    names = ["m%03d" % i for i in range(520)]
    for i in range(0, len(names), 260):
        cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": n, "Dimensions": dim, "Value": 1.0, "Unit": "Count"} for n in names[i:i + 260]])
    got = [m["MetricName"] for m in pages(cw.list_metrics, "Metrics", "NextToken", "NextToken", None, 0, Namespace=ns)]
    exactly_once("ListMetrics (520 metrics)", got, names)
    p = cw.get_paginator("list_metrics")
    exactly_once("list_metrics paginator", [m["MetricName"] for page in p.paginate(Namespace=ns) for m in page["Metrics"]], names)
    r = cw.list_metrics(Namespace=ns, MetricName="m001", Dimensions=[{"Name": "Host", "Value": "h1"}])["Metrics"]
    if [m["MetricName"] for m in r] != ["m001"]:
        problem("ListMetrics(MetricName, Dimensions): %s" % r)
    # 30 minutes of one value a minute
    start = utc(40)
    data = [{"MetricName": "lat", "Dimensions": dim, "Timestamp": start + datetime.timedelta(minutes=i), "Value": float(i), "Unit": "Seconds"} for i in range(30)]
    cw.put_metric_data(Namespace=ns, MetricData=data)
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "stat", "Dimensions": dim, "Timestamp": start,
                                                  "StatisticValues": {"SampleCount": 4, "Sum": 10, "Minimum": 1, "Maximum": 4}, "Unit": "Count"}])
    r = cw.get_metric_statistics(Namespace=ns, MetricName="lat", Dimensions=dim, StartTime=start, EndTime=start + datetime.timedelta(minutes=30),
                                 Period=60, Statistics=["Average", "Maximum", "Minimum", "Sum", "SampleCount"])
    if len(r["Datapoints"]) != 30:
        problem("GetMetricStatistics: %d datapoints, want 30" % len(r["Datapoints"]))
    r = cw.get_metric_statistics(Namespace=ns, MetricName="lat", Dimensions=dim, StartTime=start, EndTime=start + datetime.timedelta(minutes=30),
                                 Period=600, ExtendedStatistics=["p99", "p50"])
    if len(r["Datapoints"]) != 3 or any("p99" not in d.get("ExtendedStatistics", {}) for d in r["Datapoints"]):
        problem("GetMetricStatistics p99: %s" % r["Datapoints"])
    q = [{"Id": "a", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "lat", "Dimensions": dim}, "Period": 60, "Stat": "Average"}, "ReturnData": True},
         {"Id": "b", "Expression": "a * 2", "Label": "double"}]
    ts = {"a": [], "b": []}
    tok, npages = None, 0
    while True:
        kw = {"MetricDataQueries": q, "StartTime": start, "EndTime": start + datetime.timedelta(minutes=30), "MaxDatapoints": 7, "ScanBy": "TimestampAscending"}
        if tok:
            kw["NextToken"] = tok
        r = cw.get_metric_data(**kw)
        npages += 1
        for res in r["MetricDataResults"]:
            if len(res.get("Timestamps", [])) != len(res.get("Values", [])):
                problem("GetMetricData: %d timestamps, %d values" % (len(res.get("Timestamps", [])), len(res.get("Values", []))))
            ts.setdefault(res["Id"], []).extend(res.get("Timestamps", []))
        tok = r.get("NextToken")
        if not tok or npages > 50:
            break
    for k in ("a", "b"):
        exactly_once("GetMetricData MaxDatapoints=7 %s" % k, [t.isoformat() for t in ts[k]], [(start + datetime.timedelta(minutes=i)).isoformat() for i in range(30)])
    p = cw.get_paginator("get_metric_data")
    n = sum(len(res.get("Values", [])) for page in p.paginate(MetricDataQueries=q[:1], StartTime=start, EndTime=start + datetime.timedelta(minutes=30),
                                                                 PaginationConfig={"PageSize": 5}) for res in page["MetricDataResults"])
    if n != 30:
        problem("get_metric_data paginator: %d values, want 30" % n)

    # replication lag metric of the EFS scenario's live replication
    if efs_state:
        fs2, dst2 = efs_state["fss"][1], efs_state["dsts"][0]
        def lag_listed():
            ms = cw.list_metrics(Namespace="AWS/EFS", MetricName="TimeSinceLastSync", Dimensions=[{"Name": "FileSystemId", "Value": fs2}])["Metrics"]
            return any(sorted((d["Name"], d["Value"]) for d in m["Dimensions"]) == [("DestinationFileSystemId", dst2), ("FileSystemId", fs2)] for m in ms)
        wait("TimeSinceLastSync of %s listed" % fs2, lag_listed, 15)
        r = cw.get_metric_statistics(Namespace="AWS/EFS", MetricName="TimeSinceLastSync", StartTime=utc(10), EndTime=utc(-2), Period=60,
                                     Statistics=["Maximum"], Dimensions=[{"Name": "FileSystemId", "Value": fs2}, {"Name": "DestinationFileSystemId", "Value": dst2}])
        if not r["Datapoints"]:
            problem("TimeSinceLastSync of %s: no datapoints" % fs2)
        elif any(d.get("Unit") != "Seconds" for d in r["Datapoints"]):
            problem("TimeSinceLastSync units: %s" % r["Datapoints"])

    # alarms
    pre = "conf-%s-" % RUN
    alarms = [pre + str(i) for i in range(5)]
    for i, a in enumerate(alarms):
        cw.put_metric_alarm(AlarmName=a, Namespace=ns, MetricName="lat", Dimensions=dim, Statistic="Maximum", Period=60, EvaluationPeriods=1,
                            Threshold=100.0 + i, ComparisonOperator="GreaterThanThreshold", TreatMissingData="missing", Tags=[{"Key": "k", "Value": str(i)}])
    cw.put_metric_alarm(AlarmName=pre + "math", EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold",
                        Metrics=[{"Id": "a", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "lat"}, "Period": 60, "Stat": "Sum"}, "ReturnData": False},
                                 {"Id": "e", "Expression": "a / 60", "ReturnData": True}])
    alarms.append(pre + "math")
    got = [a["AlarmName"] for a in pages(cw.describe_alarms, "MetricAlarms", "NextToken", "NextToken", "MaxRecords", 2, AlarmNamePrefix=pre)]
    exactly_once("DescribeAlarms MaxRecords=2", got, alarms)
    p = cw.get_paginator("describe_alarms")
    exactly_once("describe_alarms paginator", [a["AlarmName"] for page in p.paginate(AlarmNamePrefix=pre, PaginationConfig={"PageSize": 4}) for a in page["MetricAlarms"]], alarms)
    got = [a["AlarmName"] for a in cw.describe_alarms(AlarmNames=alarms[:2] + ["nope-" + RUN])["MetricAlarms"]]
    exactly_once("DescribeAlarms(AlarmNames)", got, alarms[:2])
    for a in cw.describe_alarms(AlarmNamePrefix=pre)["MetricAlarms"]:
        if a["StateValue"] != "INSUFFICIENT_DATA" and a["AlarmName"] != pre + "math":
            problem("new alarm %s in %s" % (a["AlarmName"], a["StateValue"]))
    cw.set_alarm_state(AlarmName=alarms[0], StateValue="ALARM", StateReason="conformance", StateReasonData='{"x": 1}')
    a0 = cw.describe_alarms(AlarmNames=[alarms[0]])["MetricAlarms"][0]
    if a0["StateValue"] != "ALARM" or a0.get("StateReason") != "conformance":
        problem("SetAlarmState: %s %s" % (a0["StateValue"], a0.get("StateReason")))
    got = [a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix=pre, StateValue="ALARM")["MetricAlarms"]]
    exactly_once("DescribeAlarms(StateValue=ALARM)", got, alarms[:1])
    got = [a["AlarmName"] for a in cw.describe_alarms_for_metric(Namespace=ns, MetricName="lat", Dimensions=dim, Statistic="Maximum", Period=60)["MetricAlarms"]]
    exactly_once("DescribeAlarmsForMetric", [x for x in got if x.startswith(pre)], alarms[:5])
    hist = [h for h in pages(cw.describe_alarm_history, "AlarmHistoryItems", "NextToken", "NextToken", "MaxRecords", 1, AlarmName=alarms[0])]
    if not any(h.get("HistoryItemType") == "StateUpdate" for h in hist):
        problem("DescribeAlarmHistory: no StateUpdate in %s" % hist)
    keys = [(h["AlarmName"], h["Timestamp"], h["HistorySummary"]) for h in hist]
    if len(set(keys)) != len(keys):
        problem("DescribeAlarmHistory MaxRecords=1 repeats items: %s" % keys)
    cw.disable_alarm_actions(AlarmNames=alarms[:2])
    if any(a["ActionsEnabled"] for a in cw.describe_alarms(AlarmNames=alarms[:2])["MetricAlarms"]):
        problem("DisableAlarmActions: actions still enabled")
    cw.enable_alarm_actions(AlarmNames=alarms[:2])
    arn = a0["AlarmArn"]
    cw.tag_resource(ResourceARN=arn, Tags=[{"Key": "t2", "Value": "v"}])
    exactly_once("alarm tags", [t["Key"] for t in cw.list_tags_for_resource(ResourceARN=arn)["Tags"]], ["k", "t2"])
    cw.untag_resource(ResourceARN=arn, TagKeys=["t2"])

    current[0] = "cloudwatch/errors"
    before = alarm_snapshot(cw, pre)
    expect("ResourceNotFound", cw.set_alarm_state, AlarmName="nope-" + RUN, StateValue="OK", StateReason="x")
    expect("InvalidFormat", cw.set_alarm_state, AlarmName=alarms[1], StateValue="OK", StateReason="x", StateReasonData="{not json")
    expect("ResourceNotFound", cw.delete_alarms, AlarmNames=[alarms[1], "nope-" + RUN])
    expect("ResourceNotFoundException", cw.list_tags_for_resource, ResourceARN=arn.replace(alarms[0], "nope-" + RUN))
    expect("ResourceNotFoundException", cw.tag_resource, ResourceARN=arn.replace(alarms[0], "nope-" + RUN), Tags=[{"Key": "a", "Value": "b"}])
    expect("InvalidNextToken", cw.describe_alarms, NextToken="not-a-token")
    expect("InvalidNextToken", cw.describe_alarm_history, NextToken="not-a-token")
    expect("InvalidNextToken", cw.get_metric_data, MetricDataQueries=q[:1], StartTime=start, EndTime=utc(), NextToken="not-a-token")
    expect(["InvalidParameterValue", "InvalidNextToken"], cw.list_metrics, Namespace=ns, NextToken="not-a-token")
    expect("InvalidParameterValue", cw.get_metric_statistics, Namespace=ns, MetricName="lat", StartTime=start, EndTime=utc(), Period=61, Statistics=["Average"])
    expect(["MissingParameter", "InvalidParameterCombination"], cw.get_metric_statistics, Namespace=ns, MetricName="lat", StartTime=start, EndTime=utc(), Period=60)
    expect("InvalidParameterCombination", cw.get_metric_statistics, Namespace=ns, MetricName="lat", StartTime=start, EndTime=utc(), Period=60,
           Statistics=["Average"], ExtendedStatistics=["p99"])
    expect("InvalidParameterValue", cw.get_metric_statistics, Namespace=ns, MetricName="lat", StartTime=utc(), EndTime=start, Period=60, Statistics=["Average"])
    expect(["ValidationError", "InvalidParameterValue"], cw.get_metric_data, MetricDataQueries=[{"Id": "a", "Expression": "b * 2"}], StartTime=start, EndTime=utc())
    expect(["ValidationError", "InvalidParameterValue"], cw.get_metric_data, MetricDataQueries=[{"Id": "A", "Expression": "1"}], StartTime=start, EndTime=utc())
    expect(["ValidationError", "InvalidParameterValue", "InvalidParameterCombination"], cw.put_metric_alarm, AlarmName=alarms[1], Namespace=ns, MetricName="lat",
           Statistic="Maximum", Period=61, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
    expect(["ValidationError", "InvalidParameterValue", "InvalidParameterCombination", "MissingParameter"], cw.put_metric_alarm, AlarmName=alarms[1], Namespace=ns, MetricName="lat",
           Period=60, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
    expect(["ValidationError", "InvalidParameterValue", "InvalidParameterCombination"], cw.put_metric_alarm, AlarmName=alarms[1], Namespace=ns, MetricName="lat",
           Statistic="Maximum", Period=60, EvaluationPeriods=2, DatapointsToAlarm=3, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
    expect("InvalidParameterValue", cw.put_metric_data, Namespace="AWS/EFS", MetricData=[{"MetricName": "x", "Value": 1.0}])
    expect("InvalidParameterCombination", cw.put_metric_data, Namespace=ns, MetricData=[{"MetricName": "x", "Value": 1.0, "Values": [1.0]}])
    current[0] = "cloudwatch/mutations"
    valid = {
        "PutMetricAlarm": {"AlarmName": alarms[1], "Namespace": ns, "MetricName": "lat", "Dimensions": dim, "Statistic": "Maximum", "Period": 60,
                           "EvaluationPeriods": 1, "DatapointsToAlarm": 1, "Threshold": 101.0, "ComparisonOperator": "GreaterThanThreshold",
                           "TreatMissingData": "missing", "Unit": "Seconds", "AlarmDescription": "d", "ActionsEnabled": True,
                           "Tags": [{"Key": "k", "Value": "1"}]},
        "SetAlarmState": {"AlarmName": alarms[2], "StateValue": "OK", "StateReason": "r", "StateReasonData": "{}"},
        "DescribeAlarms": {"AlarmNamePrefix": pre, "StateValue": "OK", "AlarmTypes": ["MetricAlarm"], "MaxRecords": 10},
        "DescribeAlarmHistory": {"AlarmName": alarms[0], "HistoryItemType": "StateUpdate", "MaxRecords": 10, "ScanBy": "TimestampDescending",
                                 "StartDate": start, "EndDate": utc(-5)},
        "DescribeAlarmsForMetric": {"Namespace": ns, "MetricName": "lat", "Dimensions": dim, "Statistic": "Maximum", "Period": 60, "Unit": "Seconds"},
        "DisableAlarmActions": {"AlarmNames": alarms[2:3]},
        "EnableAlarmActions": {"AlarmNames": alarms[2:3]},
        "DeleteAlarms": {"AlarmNames": ["nope-" + RUN]},
        "TagResource": {"ResourceARN": arn, "Tags": [{"Key": "k", "Value": "0"}]},
        "UntagResource": {"ResourceARN": arn, "TagKeys": ["zz"]},
        "ListTagsForResource": {"ResourceARN": arn},
        "GetMetricStatistics": {"Namespace": ns, "MetricName": "lat", "Dimensions": dim, "StartTime": start, "EndTime": utc(), "Period": 60,
                                "Statistics": ["Average"], "Unit": "Seconds"},
        "GetMetricData": {"MetricDataQueries": q, "StartTime": start, "EndTime": utc(), "MaxDatapoints": 100, "ScanBy": "TimestampDescending"},
        "ListMetrics": {"Namespace": ns, "MetricName": "lat", "Dimensions": [{"Name": "Host", "Value": "h1"}], "RecentlyActive": "PT3H"},
        "PutMetricData": {"Namespace": ns, "MetricData": [{"MetricName": "lat", "Dimensions": dim, "Value": 1.0, "Unit": "Seconds", "StorageResolution": 60}]},
    }
    counts = {"cloudwatch_mutations": run_mutations(raw, cw.meta.service_model, valid, CW_INVALID)}
    after = alarm_snapshot(cw, pre)
    current[0] = "cloudwatch/at-bounds"
    counts["cloudwatch_at_bounds"] = run_at_bounds(cw, cw.meta.service_model, valid, CW_INVALID,
                                                   ["PutMetricAlarm", "PutMetricData", "SetAlarmState", "TagResource", "DescribeAlarms",
                                                    "DescribeAlarmHistory", "GetMetricStatistics", "GetMetricData", "ListMetrics", "DescribeAlarmsForMetric"])
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            problem("rejected calls changed alarm %s: %s -> %s" % (name, before.get(name), after.get(name)))
    current[0] = "cloudwatch/valid-inputs"
    for op, kw in sorted(valid.items()):
        try:
            getattr(cw, botocore.xform_name(op))(**kw)
        except ClientError as e:
            if not (op == "DeleteAlarms" and e.response["Error"]["Code"] == "ResourceNotFound"):
                problem("%s(%s): %s %s" % (op, short(kw), e.response["Error"]["Code"], e.response["Error"].get("Message")))
    cw.delete_alarms(AlarmNames=alarms)
    if cw.describe_alarms(AlarmNamePrefix=pre)["MetricAlarms"]:
        problem("DeleteAlarms left alarms")
    for op in cw.meta.service_model.operation_names:
        if op in CW_SERVED and called.get("cloudwatch:" + op) != "ok":
            problems.append("cloudwatch: %s never answered a valid call" % op)
    # Accepted divergence: the rest of CloudWatch (insight rules, metric
    # streams, anomaly detectors, mute rules, OTel enrichment) is not served;
    # each answers an error every client parses.
    current[0] = "cloudwatch/not-served"
    unserved = {}
    for op in cw.meta.service_model.operation_names:
        if op in CW_SERVED or op in CW_SERVED_ELSEWHERE:
            continue
        try:
            getattr(raw, botocore.xform_name(op))()
            problem("%s: answered, but regionfs does not serve it" % op)
        except ClientError as e:
            code, status = e.response["Error"].get("Code"), e.response["ResponseMetadata"]["HTTPStatusCode"]
            unserved[op] = code
            if not code or code == str(status) or status >= 500:
                problem("%s: HTTP %d %r, want a 4xx error with a code" % (op, status, code))
    counts["not_served"] = sorted(set(unserved.values()))
    return counts


def main():
    east_url, west_url = os.environ["EAST"], os.environ["WEST"]
    east = client("efs", east_url, "us-east-1")
    raw = client("efs", east_url, "us-east-1", validate=False)
    west = client("efs", west_url, "us-west-2")
    ec2 = client("ec2", east_url, "us-east-1")
    parts = os.environ.get("PARTS", "efs,cloudwatch").split(",")
    counts = {}
    if "efs" in parts:
        st = efs_valid(east, west, ec2)
        efs_replication(east, west, st)
        efs_errors(east, raw, st)
        current[0] = "efs/mutations"
        before = efs_snapshot(east, st["fss"])
        sm = east.meta.service_model
        counts["efs_mutations"] = run_mutations(raw, sm, efs_valid_inputs(st), {"BadRequest", "ValidationException"})
        after = efs_snapshot(east, st["fss"])
        if before != after:
            problem("rejected calls changed state:\n  before %s\n  after  %s" % (before, after))
        current[0] = "efs/at-bounds"
        counts["efs_at_bounds"] = efs_at_bounds(east, st, efs_valid_inputs(st))
        current[0] = "efs/valid-inputs"
        efs_confirm_valid(east, west, efs_valid_inputs(st))
        if "cloudwatch" in parts:
            counts.update(cloudwatch(client("cloudwatch", east_url, "us-east-1"), client("cloudwatch", east_url, "us-east-1", validate=False), st))
        efs_cleanup(east, west, st)
        for op in sm.operation_names:
            if called.get("efs:" + op) != "ok":
                problems.append("efs: %s never answered a valid call" % op)
    elif "cloudwatch" in parts:
        counts.update(cloudwatch(client("cloudwatch", east_url, "us-east-1"), client("cloudwatch", east_url, "us-east-1", validate=False), None))
    print(json.dumps({"problems": problems, "called": called, "counts": counts}))


if __name__ == "__main__":
    main()
