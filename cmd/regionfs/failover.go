package main

import (
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

type recoveryPoint struct {
	Seq                     uint64
	Time                    *epochTime
	OldEpoch, NewEpoch      uint64
	SourceDurableSeq        uint64
	SourceLastHeard         *epochTime
	AtLeastLostTransactions uint64
	InitialSyncUnfinished   bool
	EmptyReason             string
	ResyncAbandoned         bool
	AbandonedReason         string
}

func newFailoverCmd() *cobra.Command {
	var region, endpoint string
	var planned, force, report bool
	var max int
	cmd := &cobra.Command{
		Use:   "failover FILE_SYSTEM_ID",
		Short: "Make a replica writable (failover), hand over without loss (--planned), or list what a failover lost (--report)",
		Long: `failover FILE_SYSTEM_ID, in the destination region, promotes the replica
FILE_SYSTEM_ID now (what DeleteReplicationConfiguration does there) and prints
the recovery point: the source's changes up to that point are on it, and the
number of later ones known to be missing.

failover --planned FILE_SYSTEM_ID, in the source region, hands the source's
role to its replica without losing a change: buffered writes are flushed, the
source stops taking writes (protection DISABLED, ready for a failback), the
replica catches up to zero lag and is promoted.

failover --report FILE_SYSTEM_ID, in the former source's region once it is
reachable again, lists exactly the changes (operation, paths, time) it made
after the recovery point of the replica that was promoted without it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := newOpsClient(ctx, region, endpoint)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if report {
				q := url.Values{"FileSystemId": {args[0]}, "MaxItems": {fmt.Sprint(max)}}
				var r struct {
					FileSystemID          string `json:"FileSystemId"`
					PromotedFileSystemID  string `json:"PromotedFileSystemId"`
					RecoverySeq           uint64
					RecoveryTime          *epochTime
					PromotedEpoch         uint64
					InitialSyncUnfinished bool
					Complete              bool
					Changes               []struct {
						Seq       uint64
						Time      epochTime
						Operation string
						Paths     []string
					}
				}
				if err := c.call(ctx, "GET", "/2015-02-01/regionfs/loss-report", q, nil, &r); err != nil {
					return err
				}
				fmt.Fprintf(out, "%s lost %d change(s) to the failover of %s (recovery point seq %d, %s; epoch %d)\n",
					r.FileSystemID, len(r.Changes), r.PromotedFileSystemID, r.RecoverySeq, r.RecoveryTime, r.PromotedEpoch)
				if r.InitialSyncUnfinished {
					fmt.Fprintf(out, "%s was promoted before its initial sync finished: it holds none of %s's changes\n", r.PromotedFileSystemID, r.FileSystemID)
				}
				if !r.Complete {
					fmt.Fprintln(out, "(incomplete: more changes than listed, or the journal no longer reaches back to the recovery point)")
				}
				tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tTIME\tOPERATION\tPATHS")
				for _, ch := range r.Changes {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", ch.Seq, ch.Time.String(), ch.Operation, strings.Join(ch.Paths, " → "))
				}
				return tw.Flush()
			}
			var r struct {
				RecoveryPoint recoveryPoint
				Seconds       float64
			}
			body := map[string]any{"FileSystemId": args[0], "Planned": planned, "Force": force}
			start := time.Now()
			if planned {
				// Shows the drain while it runs.
				if r.RecoveryPoint, r.Seconds, err = plannedFailover(ctx, out, c, args[0]); err != nil {
					return err
				}
			} else if err := c.call(ctx, "POST", "/2015-02-01/regionfs/failover", nil, body, &r); err != nil {
				return err
			}
			rp := r.RecoveryPoint
			kind := "failover"
			if planned {
				kind = "planned failover"
			}
			fmt.Fprintf(out, "%s of %s done in %s (server %.0f ms)\n", kind, args[0], time.Since(start).Round(time.Millisecond), r.Seconds*1000)
			if rp.InitialSyncUnfinished {
				fmt.Fprintf(out, "%s; %s is a new, empty file system (epoch %d)\n", rp.EmptyReason, args[0], rp.NewEpoch)
				if rp.SourceDurableSeq > 0 {
					fmt.Fprintf(out, "the source had %d transaction(s) when last heard (%s); none of them is on %s\n", rp.SourceDurableSeq, rp.SourceLastHeard, args[0])
				}
				return nil
			}
			if rp.ResyncAbandoned {
				fmt.Fprintf(out, "%s; epoch %d → %d\n", rp.AbandonedReason, rp.OldEpoch, rp.NewEpoch)
				fmt.Fprintln(out, "run `regionfs failover --report` against the source once it is reachable for the list of its changes that are not here")
				return nil
			}
			fmt.Fprintf(out, "recovery point: seq %d, committed at the source at %s; epoch %d → %d\n", rp.Seq, rp.Time, rp.OldEpoch, rp.NewEpoch)
			switch {
			case planned:
				fmt.Fprintln(out, "no change was lost: the source stopped taking writes and the replica caught up before it was promoted")
			case rp.AtLeastLostTransactions > 0:
				fmt.Fprintf(out, "at least %d source transaction(s) after the recovery point did not arrive (the source was at seq %d when last heard, %s);\n",
					rp.AtLeastLostTransactions, rp.SourceDurableSeq, rp.SourceLastHeard)
				fmt.Fprintln(out, "run `regionfs failover --report` against the former source once it is reachable for the exact list")
			default:
				fmt.Fprintf(out, "the replica had everything the source announced (seq %d, last heard %s)\n", rp.SourceDurableSeq, rp.SourceLastHeard)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&region, "region", "", "region of the file system (default: AWS_REGION)")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "API endpoint (default: AWS_ENDPOINT_URL_EFS)")
	cmd.Flags().BoolVar(&planned, "planned", false, "hand over from the source without losing a change")
	cmd.Flags().BoolVar(&force, "force", false, "promote a replica staler than the promotion guard allows; with hard fencing, do not wait for the source's lease to run out")
	cmd.Flags().BoolVar(&report, "report", false, "list the changes a former source lost to a failover")
	cmd.Flags().IntVar(&max, "max", 10000, "with --report: list at most this many changes")
	cmd.MarkFlagsMutuallyExclusive("planned", "report")
	cmd.MarkFlagsMutuallyExclusive("force", "report")
	return cmd
}
