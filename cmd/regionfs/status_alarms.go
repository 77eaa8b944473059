package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// alarmInfo is one CloudWatch alarm of a region as status shows it.
type alarmInfo struct {
	Name      string
	State     string
	Since     time.Time
	Metric    string
	Condition string
	Actions   bool
	Reason    string
}

// alarmsOf lists a region's alarms (the endpoint: AWS_ENDPOINT_URL_CLOUDWATCH,
// else the one status uses).
func alarmsOf(ctx context.Context, c *opsClient) ([]alarmInfo, error) {
	endpoint := firstNonEmpty(os.Getenv("AWS_ENDPOINT_URL_CLOUDWATCH"), c.endpoint)
	cw := cloudwatch.NewFromConfig(c.cfg, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(endpoint) })
	out := []alarmInfo{}
	for p := cloudwatch.NewDescribeAlarmsPaginator(cw, &cloudwatch.DescribeAlarmsInput{}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, err
		}
		for _, a := range page.MetricAlarms {
			out = append(out, alarmOf(a))
		}
	}
	return out, nil
}

func alarmOf(a types.MetricAlarm) alarmInfo {
	metric := aws.ToString(a.Namespace) + " " + aws.ToString(a.MetricName)
	var dims []string
	for _, d := range a.Dimensions {
		dims = append(dims, aws.ToString(d.Name)+"="+aws.ToString(d.Value))
	}
	if len(dims) > 0 {
		metric += " (" + strings.Join(dims, ",") + ")"
	}
	if a.Metrics != nil {
		metric = "metric math"
	}
	stat := string(a.Statistic)
	if stat == "" {
		stat = aws.ToString(a.ExtendedStatistic)
	}
	return alarmInfo{
		Name: aws.ToString(a.AlarmName), State: string(a.StateValue), Since: aws.ToTime(a.StateUpdatedTimestamp), Metric: metric,
		Condition: fmt.Sprintf("%s %s %g, %d of %d × %ds", stat, opSymbol(a.ComparisonOperator), aws.ToFloat64(a.Threshold),
			aws.ToInt32(a.DatapointsToAlarm), aws.ToInt32(a.EvaluationPeriods), aws.ToInt32(a.Period)),
		Actions: aws.ToBool(a.ActionsEnabled), Reason: aws.ToString(a.StateReason),
	}
}

// writeAlarms is the alarms section: state first, so that an ALARM shows
// at a glance.
func writeAlarms(w io.Writer, alarms []alarmInfo, d display) {
	if len(alarms) == 0 {
		return
	}
	fmt.Fprintln(w)
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ALARM\tSTATE\tSINCE\tCONDITION\tMETRIC")
	for _, a := range alarms {
		since := "-"
		if !a.Since.IsZero() {
			since = a.Since.Local().Format("2006-01-02 15:04:05")
		}
		cond := a.Condition
		if !a.Actions {
			cond += " (actions off)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Name, a.State, since, cond, a.Metric)
	}
	tw.Flush()
	for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		fmt.Fprintln(w, clipWidth(l, d.width))
	}
	for _, a := range alarms {
		if a.State == "ALARM" {
			for _, l := range wrap(a.Reason, "  "+a.Name+": ", "    ", d.width) {
				fmt.Fprintln(w, l)
			}
		}
	}
}

func opSymbol(op types.ComparisonOperator) string {
	switch op {
	case types.ComparisonOperatorGreaterThanThreshold:
		return ">"
	case types.ComparisonOperatorGreaterThanOrEqualToThreshold:
		return ">="
	case types.ComparisonOperatorLessThanThreshold:
		return "<"
	case types.ComparisonOperatorLessThanOrEqualToThreshold:
		return "<="
	}
	return string(op)
}
