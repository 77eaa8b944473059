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
	var maxLag time.Duration
	cmd := &cobra.Command{
		Use:   "policy --max-lag DURATION FILE_SYSTEM_ID",
		Short: "Set the promotion guard of a replication configuration",
		Long: `replication policy --max-lag DURATION FILE_SYSTEM_ID, in the destination
region, stores the promotion guard with the replication configuration
FILE_SYSTEM_ID takes part in: regionfs failover then refuses to promote a
replica more than DURATION behind its source, printing its recovery point and
what would be lost, unless --force. --max-lag 0 removes the guard. regionfs
status shows it. DeleteReplicationConfiguration keeps AWS's semantics: it
always promotes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("max-lag") {
				return fmt.Errorf("--max-lag is required")
			}
			if maxLag < 0 {
				return fmt.Errorf("--max-lag %s is negative", maxLag)
			}
			ctx := cmd.Context()
			c, err := newOpsClient(ctx, region, endpoint)
			if err != nil {
				return err
			}
			var r struct {
				ReplicationID          string `json:"ReplicationId"`
				MaxPromotionLagSeconds float64
			}
			body := map[string]any{"FileSystemId": args[0], "MaxPromotionLagSeconds": maxLag.Seconds()}
			if err := c.call(ctx, "POST", "/2015-02-01/regionfs/replication-policy", nil, body, &r); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if r.MaxPromotionLagSeconds == 0 {
				fmt.Fprintf(out, "%s (%s): no promotion guard: failover promotes whatever the lag\n", r.ReplicationID, args[0])
				return nil
			}
			fmt.Fprintf(out, "%s (%s): failover refuses to promote a replica more than %s behind, unless --force\n",
				r.ReplicationID, args[0], time.Duration(r.MaxPromotionLagSeconds*float64(time.Second)))
			return nil
		},
	}
	cmd.Flags().StringVar(&region, "region", "", "region of the file system (default: AWS_REGION)")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "API endpoint (default: AWS_ENDPOINT_URL_EFS)")
	cmd.Flags().DurationVar(&maxLag, "max-lag", 0, "largest lag a failover may promote without --force (0: no guard)")
	return cmd
}
