"""Composite alarms and dashboards through boto3, in the protocol its model says.

Run by composite_cli_test.go like boto3_all.py (AWS_DATA_PATH selects json,
query or smithy-rpc-v2-cbor). Prints the error codes of the refused calls
as JSON on its last line; exits non-zero on the first surprise.
"""
import json
import os
import sys

import boto3
import botocore.exceptions

cw = boto3.client("cloudwatch", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1")
proto = cw.meta.service_model.resolved_protocol
want = os.environ["WANT_PROTOCOL"]
if proto != want:
    sys.exit(f"boto3 speaks {proto}, want {want}")
p = want.replace("-", "")
topic = "arn:aws:sns:us-east-1:123456789012:dr"


def check(cond, what):
    if not cond:
        sys.exit("FAIL " + what)


for child in ("lag", "health"):
    cw.put_metric_alarm(AlarmName=f"{p}-{child}", Namespace="Boto", MetricName=child, Statistic="Maximum", Period=86400,
                        EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold")
name = f"{p}-failover"
cw.put_composite_alarm(AlarmName=name, AlarmRule=f'ALARM("{p}-lag") AND ALARM({p}-health)', AlarmActions=[topic], OKActions=[topic],
                       AlarmDescription="fail over", ActionsEnabled=True, Tags=[{"Key": "team", "Value": "dr"}],
                       ActionsSuppressor=f"{p}-health", ActionsSuppressorWaitPeriod=60, ActionsSuppressorExtensionPeriod=120)


def composite():
    r = cw.describe_alarms(AlarmNames=[name], AlarmTypes=["CompositeAlarm"])
    check(len(r["CompositeAlarms"]) == 1 and r["MetricAlarms"] == [], f"describe_alarms {r}")
    return r["CompositeAlarms"][0]


c = composite()
check(c["StateValue"] == "OK" and c["AlarmRule"].startswith("ALARM(") and c["ActionsSuppressorWaitPeriod"] == 60
      and c["AlarmActions"] == [topic] and c["AlarmConfigurationUpdatedTimestamp"].year > 2000, f"new composite {c}")
cw.set_alarm_state(AlarmName=f"{p}-lag", StateValue="ALARM", StateReason="drill")
check(composite()["StateValue"] == "OK", "one child in ALARM")
cw.set_alarm_state(AlarmName=f"{p}-health", StateValue="ALARM", StateReason="drill")
c = composite()
check(c["StateValue"] == "ALARM" and "transitioned to ALARM" in c["StateReason"] and c["ActionsSuppressedBy"] == "Alarm", f"both in ALARM {c}")
r = cw.describe_alarms(ChildrenOfAlarmName=name)
check(sorted(a["AlarmName"] for a in r["MetricAlarms"]) == [f"{p}-health", f"{p}-lag"], f"children {r}")
r = cw.describe_alarms(ParentsOfAlarmName=f"{p}-lag")
check([a["AlarmName"] for a in r["CompositeAlarms"]] == [name], f"parents {r}")
h = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate")["AlarmHistoryItems"]
check(h and h[0]["AlarmType"] == "CompositeAlarm" and h[0]["HistorySummary"] == "Alarm updated from OK to ALARM", f"history {h}")

body = json.dumps({"widgets": [{"type": "metric", "x": 0, "y": 0, "width": 12, "height": 6, "properties": {
    "metrics": [["AWS/EFS", "TimeSinceLastSync", "FileSystemId", "fs-1"]], "region": "us-east-1", "stat": "Maximum", "period": 60}},
    {"type": "alarm", "properties": {"alarms": [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"]}}]})
r = cw.put_dashboard(DashboardName=f"{p}-dr", DashboardBody=body)
check(r.get("DashboardValidationMessages", []) == [], f"put_dashboard {r}")
r = cw.put_dashboard(DashboardName=f"{p}-west", DashboardBody=json.dumps({"widgets": [{"type": "text", "properties": {"markdown": "x"}, "colour": "red"}]}))
check(r["DashboardValidationMessages"][0]["DataPath"] == "/widgets/0/colour", f"warnings {r}")
r = cw.get_dashboard(DashboardName=f"{p}-dr")
check(r["DashboardBody"] == body and r["DashboardArn"] == f"arn:aws:cloudwatch::123456789012:dashboard/{p}-dr", f"get_dashboard {r}")
r = cw.list_dashboards(DashboardNamePrefix=p)
check([d["DashboardName"] for d in r["DashboardEntries"]] == [f"{p}-dr", f"{p}-west"] and r["DashboardEntries"][0]["Size"] == len(body)
      and r["DashboardEntries"][0]["LastModified"].year > 2000, f"list_dashboards {r}")
pages = list(cw.get_paginator("list_dashboards").paginate(DashboardNamePrefix=p))
check(sum(len(pg["DashboardEntries"]) for pg in pages) == 2, f"paginator {pages}")

errors = {}
for label, call in [
    ("bad rule", lambda: cw.put_composite_alarm(AlarmName="x", AlarmRule="ALARM(a) AND")),
    ("absent child", lambda: cw.put_composite_alarm(AlarmName="x", AlarmRule="ALARM(nope)")),
    ("delete child", lambda: cw.delete_alarms(AlarmNames=[f"{p}-lag"])),
    ("bad body", lambda: cw.put_dashboard(DashboardName="x", DashboardBody='{"widgets":{}}')),
    ("absent dashboard", lambda: cw.get_dashboard(DashboardName="nope")),
    ("delete absent dashboard", lambda: cw.delete_dashboards(DashboardNames=[f"{p}-dr", "nope"])),
]:
    try:
        call()
        sys.exit("FAIL no error for " + label)
    except botocore.exceptions.ClientError as e:
        errors[label] = [e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]]
cw.delete_dashboards(DashboardNames=[f"{p}-dr", f"{p}-west"])
check(cw.list_dashboards(DashboardNamePrefix=p)["DashboardEntries"] == [], "dashboards deleted")
cw.delete_alarms(AlarmNames=[name, f"{p}-lag", f"{p}-health"])
print(json.dumps(errors))
