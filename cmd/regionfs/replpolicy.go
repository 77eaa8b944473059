package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newReplicationCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replication",
		Short: "Replication settings regionfs adds to EFS's",
	}
	cmd.AddCommand(newReplicationPolicyCmd())
	return cmd
}

func newReplicationPolicyCmd() *cobra.Command {
	var region, endpoint string
	var maxLag, autoAfter time.Duration
	cmd := &cobra.Command{
		Use:   "policy [--max-lag DURATION] [--auto-failover-after DURATION] FILE_SYSTEM_ID",
		Short: "Set the promotion guard and automatic failover of a replication configuration",
		Long: `replication policy --max-lag DURATION FILE_SYSTEM_ID, in the destination
region, stores the promotion guard with the replication configuration
FILE_SYSTEM_ID takes part in: regionfs failover then refuses to promote a
replica more than DURATION behind its source, printing its recovery point and
what would be lost, unless --force. --max-lag 0 removes the guard. regionfs
status shows it. DeleteReplicationConfiguration keeps AWS's semantics: it
always promotes.

replication policy --auto-failover-after DURATION FILE_SYSTEM_ID, in the
destination region, opts the configuration into automatic failover: once the
source region has sent nothing for DURATION, its hard-fencing lease
(replicate.lease, needed) has certainly expired so it takes no more writes,
and it does not answer a direct call either, the destination promotes itself
(as regionfs failover would), records why (the reason a returning source
learns), counts it in regionfs_replication_auto_failovers_total and notifies
replicate.auto_failover_topic_arn. --auto-failover-after 0 turns it off.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			setLag, setAuto := cmd.Flags().Changed("max-lag"), cmd.Flags().Changed("auto-failover-after")
			if !setLag && !setAuto {
				return fmt.Errorf("--max-lag or --auto-failover-after is required")
			}
			if maxLag < 0 {
				return fmt.Errorf("--max-lag %s is negative", maxLag)
			}
			if autoAfter < 0 {
				return fmt.Errorf("--auto-failover-after %s is negative", autoAfter)
			}
			ctx := cmd.Context()
			c, err := newOpsClient(ctx, region, endpoint)
			if err != nil {
				return err
			}
			var r struct {
				ReplicationID            string `json:"ReplicationId"`
				MaxPromotionLagSeconds   float64
				AutoFailoverAfterSeconds float64
			}
			body := map[string]any{"FileSystemId": args[0]}
			if setLag {
				body["MaxPromotionLagSeconds"] = maxLag.Seconds()
			}
			if setAuto {
				body["AutoFailoverAfterSeconds"] = autoAfter.Seconds()
			}
			if err := c.call(ctx, "POST", "/2015-02-01/regionfs/replication-policy", nil, body, &r); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if setLag {
				if r.MaxPromotionLagSeconds == 0 {
					fmt.Fprintf(out, "%s (%s): no promotion guard: failover promotes whatever the lag\n", r.ReplicationID, args[0])
				} else {
					fmt.Fprintf(out, "%s (%s): failover refuses to promote a replica more than %s behind, unless --force\n",
						r.ReplicationID, args[0], time.Duration(r.MaxPromotionLagSeconds*float64(time.Second)))
				}
			}
			if setAuto {
				if r.AutoFailoverAfterSeconds == 0 {
					fmt.Fprintf(out, "%s (%s): no automatic failover\n", r.ReplicationID, args[0])
				} else {
					fmt.Fprintf(out, "%s (%s): promotes itself once the source region has been out of reach for %s and its lease has expired\n",
						r.ReplicationID, args[0], time.Duration(r.AutoFailoverAfterSeconds*float64(time.Second)))
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&region, "region", "", "region of the file system (default: AWS_REGION)")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "API endpoint (default: AWS_ENDPOINT_URL_EFS)")
	cmd.Flags().DurationVar(&maxLag, "max-lag", 0, "largest lag a failover may promote without --force (0: no guard)")
	cmd.Flags().DurationVar(&autoAfter, "auto-failover-after", 0, "promote automatically after the source region is out of reach this long (0: off; needs replicate.lease)")
	return cmd
}
