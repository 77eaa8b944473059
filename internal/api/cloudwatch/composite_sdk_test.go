package cloudwatch

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// TestSDKCompositeAndDashboards runs the composite alarm and dashboard
// operations with aws-sdk-go-v2 in its three protocols (CBOR, its
// default; JSON 1.0; query): shapes both ways and the error codes.
func TestSDKCompositeAndDashboards(t *testing.T) {
	s := start(t)
	for name, c := range clients(s.url) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			p := "sdk-" + name
			for _, child := range []string{"lag", "health"} {
				if _, err := c.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String(p + "-" + child), Namespace: aws.String("Sdk"),
					MetricName: aws.String(child), Statistic: types.StatisticMaximum, Period: aws.Int32(86400), EvaluationPeriods: aws.Int32(1),
					Threshold: aws.Float64(5), ComparisonOperator: types.ComparisonOperatorGreaterThanThreshold}); err != nil {
					t.Fatal(err)
				}
			}
			rule := "ALARM(" + p + "-lag) AND ALARM(\"" + p + "-health\")"
			if _, err := c.PutCompositeAlarm(ctx, &cloudwatch.PutCompositeAlarmInput{AlarmName: aws.String(p), AlarmRule: aws.String(rule),
				AlarmActions: []string{"arn:aws:sns:us-east-1:123456789012:dr"}, ActionsSuppressor: aws.String(p + "-health"),
				ActionsSuppressorWaitPeriod: aws.Int32(60), ActionsSuppressorExtensionPeriod: aws.Int32(90),
				Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("dr")}}}); err != nil {
				t.Fatal(err)
			}
			for _, child := range []string{"lag", "health"} {
				if _, err := c.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String(p + "-" + child), StateValue: types.StateValueAlarm,
					StateReason: aws.String("drill")}); err != nil {
					t.Fatal(err)
				}
			}
			out, err := c.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{p}, AlarmTypes: []types.AlarmType{types.AlarmTypeCompositeAlarm}})
			if err != nil || len(out.CompositeAlarms) != 1 || len(out.MetricAlarms) != 0 {
				t.Fatalf("describe: %+v %v", out, err)
			}
			ca := out.CompositeAlarms[0]
			if aws.ToString(ca.AlarmRule) != rule || ca.StateValue != types.StateValueAlarm || ca.ActionsSuppressedBy != types.ActionsSuppressedByAlarm ||
				aws.ToInt32(ca.ActionsSuppressorExtensionPeriod) != 90 || ca.StateTransitionedTimestamp == nil || ca.AlarmConfigurationUpdatedTimestamp == nil ||
				aws.ToString(ca.AlarmArn) != "arn:aws:cloudwatch:us-east-1:123456789012:alarm:"+p {
				t.Fatalf("composite %+v", ca)
			}
			par, err := c.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{ParentsOfAlarmName: aws.String(p + "-lag")})
			if err != nil || len(par.CompositeAlarms) != 1 || aws.ToString(par.CompositeAlarms[0].AlarmName) != p {
				t.Fatalf("parents %+v %v", par, err)
			}
			if _, err := c.PutCompositeAlarm(ctx, &cloudwatch.PutCompositeAlarmInput{AlarmName: aws.String("x"), AlarmRule: aws.String("ALARM(")}); !validation(err) {
				t.Fatalf("bad rule: %v", err)
			}
			if _, err := c.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{p + "-lag"}}); !validation(err) {
				t.Fatalf("delete a child: %v", err)
			}
			if _, err := c.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{p, p + "-lag", p + "-health"}}); err != nil {
				t.Fatal(err)
			}

			body := `{"widgets":[{"type":"text","properties":{"markdown":"# DR"}}]}`
			pd, err := c.PutDashboard(ctx, &cloudwatch.PutDashboardInput{DashboardName: aws.String(p), DashboardBody: aws.String(body)})
			if err != nil || len(pd.DashboardValidationMessages) != 0 {
				t.Fatalf("put-dashboard %+v %v", pd, err)
			}
			pd, err = c.PutDashboard(ctx, &cloudwatch.PutDashboardInput{DashboardName: aws.String(p + "-w"), DashboardBody: aws.String(`{"widgets":[],"theme":1}`)})
			if err != nil || len(pd.DashboardValidationMessages) != 1 || aws.ToString(pd.DashboardValidationMessages[0].DataPath) != "/theme" {
				t.Fatalf("put-dashboard with a warning %+v %v", pd, err)
			}
			gd, err := c.GetDashboard(ctx, &cloudwatch.GetDashboardInput{DashboardName: aws.String(p)})
			if err != nil || aws.ToString(gd.DashboardBody) != body || aws.ToString(gd.DashboardArn) != "arn:aws:cloudwatch::123456789012:dashboard/"+p {
				t.Fatalf("get-dashboard %+v %v", gd, err)
			}
			ld, err := c.ListDashboards(ctx, &cloudwatch.ListDashboardsInput{DashboardNamePrefix: aws.String(p)})
			if err != nil || len(ld.DashboardEntries) != 2 || aws.ToInt64(ld.DashboardEntries[0].Size) != int64(len(body)) || ld.DashboardEntries[0].LastModified == nil {
				t.Fatalf("list-dashboards %+v %v", ld, err)
			}
			if _, err := c.PutDashboard(ctx, &cloudwatch.PutDashboardInput{DashboardName: aws.String("x"), DashboardBody: aws.String(`{}`)}); !codeIn(err, "InvalidParameterInput", "DashboardInvalidInputError") {
				t.Fatalf("bad body: %v", err)
			}
			if _, err := c.GetDashboard(ctx, &cloudwatch.GetDashboardInput{DashboardName: aws.String("nope")}); !codeIn(err, "ResourceNotFound", "DashboardNotFoundError") {
				t.Fatalf("absent dashboard: %v", err)
			}
			if _, err := c.DeleteDashboards(ctx, &cloudwatch.DeleteDashboardsInput{DashboardNames: []string{p, p + "-w"}}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// validation reports a ValidationError (see codeIn).
func validation(err error) bool { return codeIn(err, "ValidationError", "ValidationException") }

// codeIn reports whether err has the query code (which the JSON and CBOR
// clients read from x-amzn-query-error) or the name of the modeled shape
// (which the query client gives: DashboardInvalidInputError for
// InvalidParameterInput).
func codeIn(err error, code, shape string) bool {
	c := apiCode(err)
	return c == code || c == shape
}
