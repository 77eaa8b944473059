"""Every CloudWatch operation through boto3, in the protocol its model says.

Run by clients_test.go with AWS_DATA_PATH pointing at a copy of botocore's
CloudWatch model whose protocol list is the one under test (json, query or
smithy-rpc-v2-cbor). Exits non-zero with a message on the first surprise.
"""
import datetime
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
ns = "Boto/" + want
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
ago = lambda s: now - datetime.timedelta(seconds=s)


def check(cond, what):
    if not cond:
        sys.exit("FAIL " + what)


cw.put_metric_data(Namespace=ns, MetricData=[
    {"MetricName": "Lag", "Dimensions": [{"Name": "FileSystemId", "Value": "fs-1"}], "Timestamp": ago(20),
     "Values": [1, 2, 3, 4, 100], "Unit": "Seconds", "StorageResolution": 1},
    {"MetricName": "Ops", "Timestamp": ago(60), "Unit": "Count",
     "StatisticValues": {"SampleCount": 3, "Sum": 30, "Minimum": 5, "Maximum": 15}},
])
r = cw.get_metric_statistics(Namespace=ns, MetricName="Lag", Dimensions=[{"Name": "FileSystemId", "Value": "fs-1"}],
                             StartTime=ago(60), EndTime=now + datetime.timedelta(minutes=1), Period=60,
                             Statistics=["Maximum", "SampleCount"])
check(len(r["Datapoints"]) == 1 and r["Datapoints"][0]["Maximum"] == 100 and r["Datapoints"][0]["SampleCount"] == 5, f"GetMetricStatistics {r}")
r = cw.get_metric_statistics(Namespace=ns, MetricName="Lag", Dimensions=[{"Name": "FileSystemId", "Value": "fs-1"}],
                             StartTime=ago(60), EndTime=now + datetime.timedelta(minutes=1), Period=10, ExtendedStatistics=["p50"])
check(r["Datapoints"][0]["ExtendedStatistics"]["p50"] == 3, f"percentile {r}")
r = cw.get_metric_data(StartTime=ago(300), EndTime=now + datetime.timedelta(minutes=1), MetricDataQueries=[
    {"Id": "m1", "ReturnData": False, "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Lag",
     "Dimensions": [{"Name": "FileSystemId", "Value": "fs-1"}]}, "Period": 60, "Stat": "Sum"}},
    {"Id": "e1", "Expression": "m1 * 2", "Label": "double"}])
check(len(r["MetricDataResults"]) == 1 and sum(r["MetricDataResults"][0]["Values"]) == 220, f"GetMetricData {r}")
r = cw.list_metrics(Namespace=ns)
check(len(r["Metrics"]) == 2, f"ListMetrics {r}")
alarm = "boto-" + want
cw.put_metric_alarm(AlarmName=alarm, Namespace=ns, MetricName="Lag", Dimensions=[{"Name": "FileSystemId", "Value": "fs-1"}],
                    Statistic="Maximum", Period=10, EvaluationPeriods=3, DatapointsToAlarm=2, Threshold=20,
                    ComparisonOperator="GreaterThanThreshold", TreatMissingData="ignore",
                    AlarmActions=["arn:aws:sns:us-east-1:123456789012:dr"], Tags=[{"Key": "team", "Value": "dr"}])
r = cw.describe_alarms(AlarmNames=[alarm])
a = r["MetricAlarms"][0]
check(a["Threshold"] == 20 and a["Period"] == 10 and a["AlarmArn"].endswith(":alarm:" + alarm) and
      isinstance(a["StateUpdatedTimestamp"], datetime.datetime), f"DescribeAlarms {a}")
r = cw.describe_alarms_for_metric(Namespace=ns, MetricName="Lag", Dimensions=[{"Name": "FileSystemId", "Value": "fs-1"}])
check(len(r["MetricAlarms"]) == 1, f"DescribeAlarmsForMetric {r}")
cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="drill")
r = cw.describe_alarm_history(AlarmName=alarm, HistoryItemType="StateUpdate")
check(any("to ALARM" in i["HistorySummary"] for i in r["AlarmHistoryItems"]), f"DescribeAlarmHistory {r}")
cw.disable_alarm_actions(AlarmNames=[alarm])
check(not cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["ActionsEnabled"], "DisableAlarmActions")
cw.enable_alarm_actions(AlarmNames=[alarm])
arn = a["AlarmArn"]
cw.tag_resource(ResourceARN=arn, Tags=[{"Key": "env", "Value": "prod"}])
cw.untag_resource(ResourceARN=arn, TagKeys=["team"])
r = cw.list_tags_for_resource(ResourceARN=arn)
check(r["Tags"] == [{"Key": "env", "Value": "prod"}], f"ListTagsForResource {r}")
cw.delete_alarms(AlarmNames=[alarm])
# SEARCH, as a failover function watching every file system writes it: one
# result per metric found, all under the query's Id, with dynamic labels.
cw.put_metric_data(Namespace=ns, MetricData=[
    {"MetricName": "Lag", "Dimensions": [{"Name": "FileSystemId", "Value": "fs-2"}], "Timestamp": ago(20), "Value": 7, "Unit": "Seconds"}])
r = cw.get_metric_data(StartTime=ago(300), EndTime=now + datetime.timedelta(minutes=1), MetricDataQueries=[
    {"Id": "lags", "Expression": "SEARCH('{%s,FileSystemId} MetricName=\"Lag\"', 'Maximum', 60)" % ns,
     "Label": "${PROP('Dim.FileSystemId')} max ${MAX}"},
    {"Id": "worst", "Expression": "MAX(SEARCH('{%s,FileSystemId} Lag', 'Maximum', 60))" % ns}])
got = sorted((x["Id"], x["Label"], x["Values"]) for x in r["MetricDataResults"])
check(got == [("lags", "fs-1 max 100", [100.0]), ("lags", "fs-2 max 7", [7.0]), ("worst", "worst", [100.0])], f"GetMetricData SEARCH {got}")
errors = {}
for name, call in [
    ("absent alarm", lambda: cw.delete_alarms(AlarmNames=[alarm])),
    ("unknown statistic", lambda: cw.get_metric_statistics(Namespace=ns, MetricName="Lag", StartTime=ago(60), EndTime=now, Period=60, Statistics=["Median"])),
    ("too many datapoints", lambda: cw.get_metric_statistics(Namespace=ns, MetricName="Lag", StartTime=ago(172800), EndTime=now, Period=60, Statistics=["Sum"])),
    ("reserved namespace", lambda: cw.put_metric_data(Namespace="AWS/EFS", MetricData=[{"MetricName": "x", "Value": 1}])),
    ("huge dimensions", lambda: cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "d%d" % i} for i in range(11)])),
    ("bad period", lambda: cw.put_metric_alarm(AlarmName="x", Namespace=ns, MetricName="Lag", Statistic="Maximum", Period=15,
                                                EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")),
    ("10000 datapoints", lambda: cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "x", "Value": i} for i in range(10000)])),
    ("alarm on SEARCH", lambda: cw.put_metric_alarm(AlarmName="x", EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
                                                    Metrics=[{"Id": "e1", "Expression": "MAX(SEARCH('{%s,FileSystemId} Lag', 'Maximum', 60))" % ns}])),
    ("bad SEARCH", lambda: cw.get_metric_data(StartTime=ago(300), EndTime=now, MetricDataQueries=[
        {"Id": "e1", "Expression": "SEARCH('{%s,FileSystemId Lag', 'Maximum', 60)" % ns}])),
]:
    try:
        call()
        sys.exit("FAIL no error for " + name)
    except botocore.exceptions.ClientError as e:
        errors[name] = [e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]]
print(json.dumps(errors))
