package cloudwatch

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwschemas "github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/regionfs/regionfs/internal/testkit"
)

// clients are aws-sdk-go-v2 CloudWatch clients in each protocol it
// speaks: Smithy RPC v2 CBOR (its default), awsJson1_0 and awsQuery.
func clients(url string) map[string]*cloudwatch.Client {
	cfg := testkit.AWSConfig(url, "us-east-1", akid, secret)
	return map[string]*cloudwatch.Client{
		"cbor": cloudwatch.NewFromConfig(cfg),
		"json": cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.Protocol = awsjson.New10(cwschemas.GraniteServiceVersion20100801) }),
		"query": cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
			o.Protocol = awsquery.New(cwschemas.GraniteServiceVersion20100801)
		}),
	}
}

func dims(kv ...string) []types.Dimension {
	var out []types.Dimension
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, types.Dimension{Name: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestSDKEveryOperation runs every CloudWatch operation with
// aws-sdk-go-v2 in each of its three protocols against the same region.
func TestSDKEveryOperation(t *testing.T) {
	s := start(t)
	for name, c := range clients(s.url) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			ns := "Test/" + name
			now := time.Now().UTC().Truncate(time.Second)
			// PutMetricData: high-resolution values and a standard statistic set.
			_, err := c.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(ns), MetricData: []types.MetricDatum{
				{MetricName: aws.String("Lag"), Dimensions: dims("FileSystemId", "fs-1"), Timestamp: aws.Time(now.Add(-20 * time.Second)),
					Values: []float64{1, 2, 3, 4, 100}, Unit: types.StandardUnitSeconds, StorageResolution: aws.Int32(1)},
				{MetricName: aws.String("Ops"), Timestamp: aws.Time(now.Add(-time.Minute)), Unit: types.StandardUnitCount,
					StatisticValues: &types.StatisticSet{SampleCount: aws.Float64(3), Sum: aws.Float64(30), Minimum: aws.Float64(5), Maximum: aws.Float64(15)}},
			}})
			if err != nil {
				t.Fatalf("PutMetricData: %v", err)
			}
			gs, err := c.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String(ns), MetricName: aws.String("Lag"),
				Dimensions: dims("FileSystemId", "fs-1"), StartTime: aws.Time(now.Add(-time.Minute)), EndTime: aws.Time(now.Add(time.Minute)),
				Period: aws.Int32(60), Statistics: []types.Statistic{types.StatisticMaximum, types.StatisticSampleCount, types.StatisticAverage},
				ExtendedStatistics: nil})
			if err != nil || len(gs.Datapoints) != 1 || aws.ToFloat64(gs.Datapoints[0].Maximum) != 100 || aws.ToFloat64(gs.Datapoints[0].SampleCount) != 5 ||
				aws.ToFloat64(gs.Datapoints[0].Average) != 22 || gs.Datapoints[0].Unit != types.StandardUnitSeconds || aws.ToString(gs.Label) != "Lag" {
				t.Fatalf("GetMetricStatistics: %+v %v", gs, err)
			}
			ps, err := c.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String(ns), MetricName: aws.String("Lag"),
				Dimensions: dims("FileSystemId", "fs-1"), StartTime: aws.Time(now.Add(-time.Minute)), EndTime: aws.Time(now.Add(time.Minute)),
				Period: aws.Int32(10), ExtendedStatistics: []string{"p50", "p99"}})
			if err != nil || len(ps.Datapoints) != 1 || ps.Datapoints[0].ExtendedStatistics["p50"] != 3 || ps.Datapoints[0].ExtendedStatistics["p99"] != 100 {
				t.Fatalf("percentiles: %+v %v", ps, err)
			}
			// GetMetricData: a statistic and metric math over it.
			md, err := c.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(now.Add(-5 * time.Minute)), EndTime: aws.Time(now.Add(time.Minute)),
				MetricDataQueries: []types.MetricDataQuery{
					{Id: aws.String("m1"), ReturnData: aws.Bool(false), MetricStat: &types.MetricStat{Metric: &types.Metric{Namespace: aws.String(ns),
						MetricName: aws.String("Lag"), Dimensions: dims("FileSystemId", "fs-1")}, Period: aws.Int32(60), Stat: aws.String("Sum")}},
					{Id: aws.String("m2"), MetricStat: &types.MetricStat{Metric: &types.Metric{Namespace: aws.String(ns), MetricName: aws.String("Ops")},
						Period: aws.Int32(60), Stat: aws.String("Sum")}},
					{Id: aws.String("e1"), Expression: aws.String("SUM([m1, m2]) / 2"), Label: aws.String("half")},
				}})
			if err != nil || len(md.MetricDataResults) != 2 {
				t.Fatalf("GetMetricData: %+v %v", md, err)
			}
			e1 := md.MetricDataResults[1]
			if aws.ToString(e1.Id) != "e1" || aws.ToString(e1.Label) != "half" || e1.StatusCode != types.StatusCodeComplete || len(e1.Values) == 0 {
				t.Fatalf("expression: %+v", e1)
			}
			total := 0.0
			for _, v := range e1.Values {
				total += v
			}
			if total != (110+30)/2.0 {
				t.Fatalf("SUM([m1,m2])/2 over the range: %v %v", e1.Values, e1.Timestamps)
			}
			lm, err := c.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String(ns)})
			if err != nil || len(lm.Metrics) != 2 {
				t.Fatalf("ListMetrics: %+v %v", lm, err)
			}
			lm, err = c.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String(ns), Dimensions: []types.DimensionFilter{{Name: aws.String("FileSystemId")}},
				RecentlyActive: types.RecentlyActivePt3h})
			if err != nil || len(lm.Metrics) != 1 || aws.ToString(lm.Metrics[0].MetricName) != "Lag" || aws.ToString(lm.Metrics[0].Dimensions[0].Value) != "fs-1" {
				t.Fatalf("ListMetrics filtered: %+v %v", lm, err)
			}
			// Alarms.
			alarm := "lag-" + name
			_, err = c.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String(alarm), AlarmDescription: aws.String("replication lag"),
				Namespace: aws.String(ns), MetricName: aws.String("Lag"), Dimensions: dims("FileSystemId", "fs-1"), Statistic: types.StatisticMaximum,
				Period: aws.Int32(10), EvaluationPeriods: aws.Int32(3), DatapointsToAlarm: aws.Int32(2), Threshold: aws.Float64(20),
				ComparisonOperator: types.ComparisonOperatorGreaterThanThreshold, TreatMissingData: aws.String("notBreaching"),
				AlarmActions: []string{"arn:aws:sns:us-east-1:123456789012:dr"}, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("dr")}}})
			if err != nil {
				t.Fatalf("PutMetricAlarm: %v", err)
			}
			da, err := c.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{alarm}})
			if err != nil || len(da.MetricAlarms) != 1 {
				t.Fatalf("DescribeAlarms: %+v %v", da, err)
			}
			a := da.MetricAlarms[0]
			if aws.ToString(a.AlarmArn) != "arn:aws:cloudwatch:us-east-1:123456789012:alarm:"+alarm || aws.ToInt32(a.Period) != 10 || aws.ToFloat64(a.Threshold) != 20 ||
				a.StateValue == "" || a.AlarmConfigurationUpdatedTimestamp == nil || len(a.AlarmActions) != 1 || aws.ToString(a.Dimensions[0].Value) != "fs-1" {
				t.Fatalf("alarm: %+v", a)
			}
			fm, err := c.DescribeAlarmsForMetric(ctx, &cloudwatch.DescribeAlarmsForMetricInput{Namespace: aws.String(ns), MetricName: aws.String("Lag"),
				Dimensions: dims("FileSystemId", "fs-1")})
			if err != nil || len(fm.MetricAlarms) != 1 {
				t.Fatalf("DescribeAlarmsForMetric: %+v %v", fm, err)
			}
			if _, err := c.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String(alarm), StateValue: types.StateValueAlarm,
				StateReason: aws.String("drill"), StateReasonData: aws.String(`{"drill":true}`)}); err != nil {
				t.Fatalf("SetAlarmState: %v", err)
			}
			h, err := c.DescribeAlarmHistory(ctx, &cloudwatch.DescribeAlarmHistoryInput{AlarmName: aws.String(alarm), HistoryItemType: types.HistoryItemTypeStateUpdate})
			// Any item: the evaluator may already have judged the alarm
			// again (7 < 20) on a slow machine.
			if err != nil || !slices.ContainsFunc(h.AlarmHistoryItems, func(i types.AlarmHistoryItem) bool {
				return strings.Contains(aws.ToString(i.HistorySummary), "to ALARM")
			}) {
				t.Fatalf("DescribeAlarmHistory: %+v %v", h, err)
			}
			if _, err := c.DisableAlarmActions(ctx, &cloudwatch.DisableAlarmActionsInput{AlarmNames: []string{alarm}}); err != nil {
				t.Fatal(err)
			}
			if da, _ := c.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{alarm}}); aws.ToBool(da.MetricAlarms[0].ActionsEnabled) {
				t.Fatal("actions still enabled")
			}
			if _, err := c.EnableAlarmActions(ctx, &cloudwatch.EnableAlarmActionsInput{AlarmNames: []string{alarm}}); err != nil {
				t.Fatal(err)
			}
			arn := aws.ToString(a.AlarmArn)
			if _, err := c.TagResource(ctx, &cloudwatch.TagResourceInput{ResourceARN: aws.String(arn), Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.UntagResource(ctx, &cloudwatch.UntagResourceInput{ResourceARN: aws.String(arn), TagKeys: []string{"team"}}); err != nil {
				t.Fatal(err)
			}
			tags, err := c.ListTagsForResource(ctx, &cloudwatch.ListTagsForResourceInput{ResourceARN: aws.String(arn)})
			if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "env" {
				t.Fatalf("ListTagsForResource: %+v %v", tags, err)
			}
			if _, err := c.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{alarm}}); err != nil {
				t.Fatal(err)
			}
			// Errors, as the modeled exceptions.
			_, err = c.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{alarm}})
			var rnf *types.ResourceNotFound
			if !errors.As(err, &rnf) || apiCode(err) != "ResourceNotFound" {
				t.Errorf("DeleteAlarms of an absent alarm: %v", err)
			}
			_, err = c.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String(ns), MetricName: aws.String("Lag"),
				StartTime: aws.Time(now.Add(-time.Minute)), EndTime: aws.Time(now), Period: aws.Int32(60), Statistics: []types.Statistic{"Median"}})
			var ipv *types.InvalidParameterValueException
			if !errors.As(err, &ipv) || (apiCode(err) != "InvalidParameterValue" && apiCode(err) != "InvalidParameterValueException") {
				t.Errorf("unknown statistic: %v", err)
			}
			_, err = c.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String(ns), MetricName: aws.String("Lag"),
				StartTime: aws.Time(now.Add(-48 * time.Hour)), EndTime: aws.Time(now), Period: aws.Int32(60), Statistics: []types.Statistic{"Sum"}})
			var ipc *types.InvalidParameterCombinationException
			if !errors.As(err, &ipc) || !strings.Contains(err.Error(), "exceeds the limit of 1,440") {
				t.Errorf("too many datapoints: %v", err)
			}
			_, err = c.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/EFS"), MetricData: []types.MetricDatum{{MetricName: aws.String("x"), Value: aws.Float64(1)}}})
			if !errors.As(err, &ipv) {
				t.Errorf("PutMetricData into AWS/: %v", err)
			}
			_, err = c.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(ns), MetricData: []types.MetricDatum{{MetricName: aws.String("x"), Value: aws.Float64(math.Inf(1))}}})
			if !errors.As(err, &ipv) {
				t.Errorf("PutMetricData of +Inf: %v", err)
			}
			_, err = c.ListTagsForResource(ctx, &cloudwatch.ListTagsForResourceInput{ResourceARN: aws.String(arn)})
			var rnfe *types.ResourceNotFoundException
			if !errors.As(err, &rnfe) {
				t.Errorf("tags of a deleted alarm: %v", err)
			}
		})
	}
}
