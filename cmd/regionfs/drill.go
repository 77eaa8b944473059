package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/spf13/cobra"

	"github.com/regionfs/regionfs/internal/drill"
)

type drillOptions struct {
	region, endpoint, subnet, check, notify, html string
	groups                                        []string
	keep, json                                    bool
	checkTimeout, maxRPO, maxRTO                  time.Duration
}

func newDrillCmd() *cobra.Command {
	var o drillOptions
	cmd := &cobra.Command{
		Use:   "drill [--region R] [--subnet-id S] [--keep] [--json] FILE_SYSTEM_ID",
		Short: "Rehearse a failover on a writable clone of a replica, without stopping replication; report RPO and RTO",
		Long: `drill FILE_SYSTEM_ID (the replica, or its source) runs a disaster-recovery
drill in the replica's region while replication goes on:

  RPO now   a canary transaction committed on the source, timed until the
            replica has applied it (if the source region does not answer,
            the drill says so and gives the age of the replica's recovery
            point instead)
  RTO       from the start to the first acknowledged NFS write on a writable
            clone of the replica (its current consistent prefix) through a
            new mount target in --subnet-id

then runs --check against the clone (a shell command, with REGIONFS_DRILL_IP,
REGIONFS_DRILL_NFS_PORT, REGIONFS_DRILL_NFS_URL, REGIONFS_DRILL_FILE_SYSTEM_ID
… in its environment; exit status 0 passes), compares --max-rpo/--max-rto,
and deletes the clone and its mount target unless --keep. The replica stays
read-only and keeps replicating throughout; the report shows its lag and
applied seq during the drill. Without --region the drill finds the replica's
region from the replication configuration. The report is text (default),
JSON (--json: rpo_seconds, rto_seconds, clone_file_system_id,
clone_ip_address, …) and, with --html FILE, a self-contained HTML page with
the timeline. The exit status is 1 when the drill fails.

The drill is the API operation StartDrill (POST /2015-02-01/regionfs/drills,
SigV4 with the elasticfilesystem service) that boto3 can call with the model
in docs/botocore; 'regionfs drill history' lists the region's past drills.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDrill(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o, args[0], cmd.Flags().Changed("region"))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.region, "region", "", "region of the replica (default: found from the replication configuration of AWS_REGION)")
	f.StringVar(&o.endpoint, "endpoint", "", "API endpoint (default: AWS_ENDPOINT_URL_EFS)")
	f.StringVar(&o.subnet, "subnet-id", "", "subnet of the clone's mount target (default: a subnet of the replica's zone)")
	f.StringSliceVar(&o.groups, "security-groups", nil, "security groups of the clone's mount target (default: the VPC's default group)")
	f.BoolVar(&o.keep, "keep", false, "keep the clone and its mount target after the drill")
	f.BoolVar(&o.json, "json", false, "print the report as JSON")
	f.StringVar(&o.html, "html", "", "also write the report as a self-contained HTML page to this file")
	f.StringVar(&o.check, "check", "", "shell command to run against the clone (its address in REGIONFS_DRILL_IP, …)")
	f.DurationVar(&o.checkTimeout, "check-timeout", drill.DefaultCheckTimeout, "how long the check may run")
	f.DurationVar(&o.maxRPO, "max-rpo", 0, "RPO objective: the drill fails above it (0: none)")
	f.DurationVar(&o.maxRTO, "max-rto", 0, "RTO objective: the drill fails above it (0: none)")
	f.StringVar(&o.notify, "notify", "", "SNS topic ARN (of the replica's region) notified at the end")
	cmd.AddCommand(newDrillHistoryCmd(), newDrillShowCmd())
	return cmd
}

func runDrill(ctx context.Context, out, errOut io.Writer, o drillOptions, fsID string, regionGiven bool) error {
	c, err := newOpsClient(ctx, o.region, o.endpoint)
	if err != nil {
		return err
	}
	if !regionGiven {
		c = drillRegion(ctx, errOut, c, fsID)
	}
	req := map[string]any{"FileSystemId": fsID, "Keep": o.keep}
	if o.subnet != "" {
		req["SubnetId"] = o.subnet
	}
	if len(o.groups) > 0 {
		req["SecurityGroups"] = o.groups
	}
	if o.check != "" {
		req["HoldSeconds"] = (o.checkTimeout + time.Minute).Seconds()
	}
	if o.maxRPO > 0 {
		req["MaxRPOSeconds"] = o.maxRPO.Seconds()
	}
	if o.maxRTO > 0 {
		req["MaxRTOSeconds"] = o.maxRTO.Seconds()
	}
	if o.notify != "" {
		req["NotificationTopicArn"] = o.notify
	}
	var d drill.Drill
	if err := c.call(ctx, "POST", "/2015-02-01/regionfs/drills", nil, req, &d); err != nil {
		return err
	}
	fmt.Fprintf(errOut, "drill %s of %s in %s: started\n", d.DrillID, d.FileSystemID, c.cfg.Region)
	shown, checked := 0, false
	for !d.Done() {
		select {
		case <-ctx.Done():
			fmt.Fprintf(errOut, "interrupted: drill %s goes on in %s (regionfs drill show %s --region %s)\n", d.DrillID, c.cfg.Region, d.DrillID, c.cfg.Region)
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if err := c.call(ctx, "GET", "/2015-02-01/regionfs/drills/"+d.DrillID, nil, nil, &d); err != nil {
			return err
		}
		shown = showEvents(errOut, d, shown)
		if d.State == drill.StateChecking && o.check != "" && !checked {
			checked = true
			res := runClientCheck(ctx, errOut, o, d)
			body := map[string]any{"Passed": res.Passed, "ExitCode": res.ExitCode, "Output": res.Output, "Command": res.Command, "Seconds": res.Seconds}
			if err := c.call(ctx, "POST", "/2015-02-01/regionfs/drills/"+d.DrillID+"/check", nil, body, &d); err != nil {
				return fmt.Errorf("report the check: %w", err)
			}
		}
	}
	showEvents(errOut, d, shown)
	if err := writeDrill(out, d, o.json, o.html); err != nil {
		return err
	}
	if d.State == drill.StateFailed {
		return fmt.Errorf("drill %s FAILED: %s", d.DrillID, d.Failure)
	}
	return nil
}

// drillRegion returns the client for the region of fsID's replica: c's
// region, or the destination region of the configuration whose source or
// destination fsID is, when that is another region.
func drillRegion(ctx context.Context, errOut io.Writer, c *opsClient, fsID string) *opsClient {
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := c.efs.DescribeReplicationConfigurations(tctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(fsID)})
	if err != nil || len(r.Replications) == 0 || len(r.Replications[0].Destinations) == 0 {
		return c // the server says what is wrong
	}
	rep := r.Replications[0]
	dst := rep.Destinations[0]
	named := aws.ToString(rep.SourceFileSystemId) == fsID || aws.ToString(dst.FileSystemId) == fsID
	if named && aws.ToString(dst.Region) != c.cfg.Region {
		fmt.Fprintf(errOut, "%s replicates to %s in %s: the drill runs there\n", fsID, aws.ToString(dst.FileSystemId), aws.ToString(dst.Region))
		return c.inRegion(aws.ToString(dst.Region))
	}
	return c
}

// showEvents prints the timeline events after the first shown.
func showEvents(w io.Writer, d drill.Drill, shown int) int {
	for _, e := range d.Timeline[min(shown, len(d.Timeline)):] {
		mark := " "
		if e.Failed {
			mark = "!"
		}
		fmt.Fprintf(w, "  %s+%.3fs %-18s %s\n", mark, e.Seconds, e.Step, e.Message)
	}
	return len(d.Timeline)
}

// runClientCheck runs --check against the drill's clone, here.
func runClientCheck(ctx context.Context, errOut io.Writer, o drillOptions, d drill.Drill) drill.CheckResult {
	ip := ""
	if d.Clone != nil {
		ip = d.Clone.IPAddress
	}
	fmt.Fprintf(errOut, "  running the check against the clone at %s: %s\n", ip, o.check)
	res := drill.RunCheck(ctx, o.check, o.checkTimeout, drill.CheckEnv(d))
	res.By = "client"
	if s := strings.TrimSpace(res.Output); s != "" {
		for _, l := range strings.Split(s, "\n") {
			fmt.Fprintf(errOut, "    | %s\n", l)
		}
	}
	return res
}

// writeDrill prints a drill's report: text or JSON, and the HTML page.
func writeDrill(out io.Writer, d drill.Drill, asJSON bool, html string) error {
	if html != "" {
		f, err := os.Create(html)
		if err != nil {
			return err
		}
		if err := drill.WriteHTML(f, d); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if asJSON {
		e := json.NewEncoder(out)
		e.SetIndent("", "  ")
		e.SetEscapeHTML(false)
		return e.Encode(drill.Summarize(d))
	}
	drill.WriteText(out, d)
	return nil
}

func newDrillHistoryCmd() *cobra.Command {
	var region, endpoint string
	var asJSON bool
	var max int
	cmd := &cobra.Command{
		Use:   "history [--region R] [--json] [FILE_SYSTEM_ID]",
		Short: "List the region's drills, newest first (of one file system: its replica's or its source's id)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := newOpsClient(ctx, region, endpoint)
			if err != nil {
				return err
			}
			q := url.Values{"MaxItems": {fmt.Sprint(max)}}
			if len(args) == 1 {
				if !cmd.Flags().Changed("region") {
					c = drillRegion(ctx, cmd.ErrOrStderr(), c, args[0])
				}
				q.Set("FileSystemId", args[0])
			}
			var r struct{ Drills []drill.Drill }
			if err := c.call(ctx, "GET", "/2015-02-01/regionfs/drills", q, nil, &r); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				sums := make([]drill.Summary, 0, len(r.Drills))
				for _, d := range r.Drills {
					sums = append(sums, drill.Summarize(d))
				}
				e := json.NewEncoder(out)
				e.SetIndent("", "  ")
				e.SetEscapeHTML(false)
				return e.Encode(sums)
			}
			return writeDrillHistory(out, c.cfg.Region, r.Drills)
		},
	}
	cmd.Flags().StringVar(&region, "region", "", "region of the drills (default: AWS_REGION, or the replica's region of FILE_SYSTEM_ID)")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "API endpoint (default: AWS_ENDPOINT_URL_EFS)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&max, "max", 50, "list at most this many drills")
	return cmd
}

func writeDrillHistory(out io.Writer, region string, ds []drill.Drill) error {
	if len(ds) == 0 {
		fmt.Fprintf(out, "no drills in %s\n", region)
		return nil
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DRILL\tSTARTED\tFILE SYSTEM\tTRIGGER\tSTATE\tRPO\tRTO\tSOURCE\tCLONE\tREMARK")
	for _, d := range ds {
		rpo, rto := "-", "-"
		if d.RPOSeconds != nil {
			rpo = fmt.Sprintf("%.3fs", *d.RPOSeconds)
			if d.RPOMethod != drill.RPOCanary {
				rpo += "*"
			}
		}
		if d.RTOSeconds != nil {
			rto = fmt.Sprintf("%.3fs", *d.RTOSeconds)
		}
		src := "reachable"
		switch {
		case d.SourceReachable:
		case d.SourceMessage != "":
			src = "UNREACHABLE"
		default:
			src = "-" // the drill ended before it asked the source
		}
		clone := "-"
		if d.Clone != nil {
			clone = d.Clone.FileSystemID
			if !d.Clone.Deleted {
				clone += " (kept)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.DrillID, d.StartTime.Local().Format("2006-01-02 15:04:05"),
			d.FileSystemID, d.Trigger, d.State, rpo, rto, src, clone, d.Failure)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "(* RPO not measured with a canary: the source region did not answer, or the canary was late)")
	return nil
}

func newDrillShowCmd() *cobra.Command {
	var region, endpoint, html string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show [--region R] [--json] [--html FILE] DRILL_ID",
		Short: "Print the report of a drill (one that runs, or one of the history)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if !drill.ValidDrillID(args[0]) {
				return errors.New("a drill id is drill- and 17 hex digits (see regionfs drill history)")
			}
			c, err := newOpsClient(ctx, region, endpoint)
			if err != nil {
				return err
			}
			var d drill.Drill
			if err := c.call(ctx, "GET", "/2015-02-01/regionfs/drills/"+args[0], nil, nil, &d); err != nil {
				return err
			}
			return writeDrill(cmd.OutOrStdout(), d, asJSON, html)
		},
	}
	cmd.Flags().StringVar(&region, "region", "", "region of the drill (default: AWS_REGION)")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "API endpoint (default: AWS_ENDPOINT_URL_EFS)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().StringVar(&html, "html", "", "also write the report as a self-contained HTML page to this file")
	return cmd
}
