package cloudwatch

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/middleware"
)

// TestModelBoundsRefused: values the model forbids and the client does not
// check are refused in every protocol, and nothing changes (qa10's
// model-driven conformance pass). An integer member given as 0 below the
// model's minimum 1 was taken for an absent one (the default); a Tag
// without its required Value was stored with an empty one; a NextToken the
// service never issued answered a page; a too-long alarm name was
// ResourceNotFound or accepted; GetMetricStatistics answered both
// Statistics and ExtendedStatistics, which its documentation forbids.
func TestModelBoundsRefused(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	// Without the SDK's own check of required members, as other clients.
	noCheck := func(o *cloudwatch.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			st.Initialize.Remove("OperationInputValidation") // absent from operations without required members
			return nil
		})
	}
	for name, c := range clients(s.url) {
		c := cloudwatch.New(c.Options(), noCheck)
		t.Run(name, func(t *testing.T) {
			ns := "Bounds/" + name
			alarm := "bounds-" + name
			put := func(mod func(*cloudwatch.PutMetricAlarmInput)) error {
				in := &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String(alarm), Namespace: aws.String(ns), MetricName: aws.String("m"),
					Statistic: types.StatisticMaximum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(2), Threshold: aws.Float64(1),
					ComparisonOperator: types.ComparisonOperatorGreaterThanThreshold, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}
				if mod != nil {
					mod(in)
				}
				_, err := c.PutMetricAlarm(ctx, in)
				return err
			}
			if err := put(nil); err != nil {
				t.Fatal(err)
			}
			before, err := c.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{alarm}})
			if err != nil || len(before.MetricAlarms) != 1 {
				t.Fatalf("%v %v", before, err)
			}
			arn := before.MetricAlarms[0].AlarmArn
			long := strings.Repeat("a", 256)
			start := time.Now().Add(-time.Hour)
			for _, tc := range []struct {
				what, code string
				call       func() error
			}{
				{"PutMetricAlarm DatapointsToAlarm 0", "InvalidParameterValue", func() error {
					return put(func(in *cloudwatch.PutMetricAlarmInput) { in.DatapointsToAlarm = aws.Int32(0) })
				}},
				{"PutMetricAlarm tag without Value", "MissingParameter", func() error {
					return put(func(in *cloudwatch.PutMetricAlarmInput) { in.Tags = []types.Tag{{Key: aws.String("k")}} })
				}},
				{"TagResource tag without Value", "MissingParameter", func() error {
					_, err := c.TagResource(ctx, &cloudwatch.TagResourceInput{ResourceARN: arn, Tags: []types.Tag{{Key: aws.String("k2")}}})
					return err
				}},
				{"PutMetricData StorageResolution 0", "InvalidParameterValue", func() error {
					_, err := c.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(ns), MetricData: []types.MetricDatum{
						{MetricName: aws.String("zero"), Value: aws.Float64(1), StorageResolution: aws.Int32(0)}}})
					return err
				}},
				{"DescribeAlarms MaxRecords 0", "InvalidParameterValue", func() error {
					_, err := c.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{MaxRecords: aws.Int32(0)})
					return err
				}},
				{"DescribeAlarmHistory MaxRecords 0", "InvalidParameterValue", func() error {
					_, err := c.DescribeAlarmHistory(ctx, &cloudwatch.DescribeAlarmHistoryInput{MaxRecords: aws.Int32(0)})
					return err
				}},
				{"DescribeAlarmsForMetric Period 0", "InvalidParameterValue", func() error {
					_, err := c.DescribeAlarmsForMetric(ctx, &cloudwatch.DescribeAlarmsForMetricInput{Namespace: aws.String(ns), MetricName: aws.String("m"), Period: aws.Int32(0)})
					return err
				}},
				{"DescribeAlarms forged NextToken", "InvalidNextToken", func() error {
					_, err := c.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{NextToken: aws.String("not-a-token")})
					return err
				}},
				{"DescribeAlarmHistory forged NextToken", "InvalidNextToken", func() error {
					_, err := c.DescribeAlarmHistory(ctx, &cloudwatch.DescribeAlarmHistoryInput{NextToken: aws.String("not-a-token")})
					return err
				}},
				{"ListMetrics forged NextToken", "InvalidNextToken", func() error {
					_, err := c.ListMetrics(ctx, &cloudwatch.ListMetricsInput{NextToken: aws.String("not-a-token")})
					return err
				}},
				{"DeleteAlarms name too long", "InvalidParameterValue", func() error {
					_, err := c.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{alarm, long}})
					return err
				}},
				{"DisableAlarmActions name too long", "InvalidParameterValue", func() error {
					_, err := c.DisableAlarmActions(ctx, &cloudwatch.DisableAlarmActionsInput{AlarmNames: []string{alarm, long}})
					return err
				}},
				{"GetMetricStatistics both kinds of statistics", "InvalidParameterCombination", func() error {
					_, err := c.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String(ns), MetricName: aws.String("m"),
						StartTime: aws.Time(start), EndTime: aws.Time(time.Now()), Period: aws.Int32(60),
						Statistics: []types.Statistic{types.StatisticAverage}, ExtendedStatistics: []string{"p99"}})
					return err
				}},
			} {
				// The Go SDK names the error by its shape in JSON and CBOR.
				if err := tc.call(); apiCode(err) != tc.code && apiCode(err) != tc.code+"Exception" {
					t.Errorf("%s: %v, want %s", tc.what, err, tc.code)
				}
			}
			after, err := c.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{alarm}})
			if err != nil || len(after.MetricAlarms) != 1 {
				t.Fatalf("%v %v", after, err)
			}
			b, a := before.MetricAlarms[0], after.MetricAlarms[0]
			if *a.DatapointsToAlarm != *b.DatapointsToAlarm || !a.AlarmConfigurationUpdatedTimestamp.Equal(*b.AlarmConfigurationUpdatedTimestamp) || *a.ActionsEnabled != *b.ActionsEnabled {
				t.Errorf("a refused call changed the alarm: %+v -> %+v", b, a)
			}
			tags, err := c.ListTagsForResource(ctx, &cloudwatch.ListTagsForResourceInput{ResourceARN: arn})
			if err != nil || len(tags.Tags) != 1 || *tags.Tags[0].Value != "v" {
				t.Errorf("tags after refused calls: %+v %v", tags, err)
			}
			ms, err := c.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String(ns)})
			if err != nil || len(ms.Metrics) != 0 {
				t.Errorf("metrics after refused calls: %+v %v", ms, err)
			}
		})
	}
}
