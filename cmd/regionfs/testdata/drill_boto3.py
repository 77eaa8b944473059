"""A drill scripted with boto3 and regionfs's botocore model (AWS_DATA_PATH=docs/botocore):
start a held drill of the replica, run a check against its clone once it answers,
report the result, wait for the end, and print the drill as JSON."""
import json
import os
import sys
import time

import boto3

replica, region = sys.argv[1], sys.argv[2]
c = boto3.client("regionfs", region_name=region, endpoint_url=os.environ["AWS_ENDPOINT_URL_EFS"])
d = c.start_drill(FileSystemId=replica, HoldSeconds=60)
drill_id = d["DrillId"]
deadline = time.time() + 60
while d["State"] not in ("CHECKING", "SUCCEEDED", "FAILED"):
    if time.time() > deadline:
        sys.exit("drill %s still %s" % (drill_id, d["State"]))
    time.sleep(0.05)
    d = c.describe_drill(DrillId=drill_id)
if d["State"] != "CHECKING":
    sys.exit("drill %s ended without waiting for the check: %s" % (drill_id, d.get("Failure")))
ip = d["Clone"]["IpAddress"]
c.report_drill_check(DrillId=drill_id, Passed=True, ExitCode=0, Output="checked " + ip, Command="boto3 check", Seconds=0.01)
while d["State"] not in ("SUCCEEDED", "FAILED"):
    if time.time() > deadline:
        sys.exit("drill %s still %s" % (drill_id, d["State"]))
    time.sleep(0.05)
    d = c.describe_drill(DrillId=drill_id)
try:
    c.describe_drill(DrillId="drill-0000000000000000f")
    sys.exit("an unknown drill was described")
except c.exceptions.DrillNotFound as e:
    missing = e.response["Error"]["Message"]
listed = [x["DrillId"] for x in c.list_drills(FileSystemId=replica, MaxItems=50)["Drills"]]
print(json.dumps({"drill": d, "listed": listed, "missing": missing}, default=str))
