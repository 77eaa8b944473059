package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// verifyResult is the answer of POST /2015-02-01/regionfs/verify.
type verifyResult struct {
	ReplicationID           string `json:"ReplicationId"`
	SourceFileSystemID      string `json:"SourceFileSystemId"`
	DestinationFileSystemID string `json:"DestinationFileSystemId"`
	Seq                     uint64
	Time                    *epochTime
	DurationSeconds         float64
	RangesCompared          int
	BlocksRead              int
	Match                   bool
	DifferingRanges         int
	Differ                  []struct{ From, To string }
	BadBlocks               int
	BadBlockIds             []string
	Repair                  string
	Summary                 string
	Status                  string
	StatusMessage           string
}

func newVerifyCmd() *cobra.Command {
	var region, endpoint string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify [--json] FILE_SYSTEM_ID",
		Short: "Compare a replica with its source now, and repair what differs",
		Long: `verify FILE_SYSTEM_ID (the source or the replica, in its region) runs one
verification pass of the replication configuration it takes part in: the
source and the replica compute range checksums of their metadata at one
common journal seq (replication goes on meanwhile), and every block the
replica references is read and checked. Differing ranges are listed and
repaired through a resync by range checksums, bad blocks are sent again from
the source. The status message and the regionfs_replication_verify_* metrics
show a mismatch until a clean pass. The exit status is 0 when everything
matched, 1 when the pass found (and started repairing) a difference or could
not run.

replicate.verify_interval in the source region's configuration runs a pass
every interval.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := newOpsClient(ctx, region, endpoint)
			if err != nil {
				return err
			}
			var r verifyResult
			if err := c.call(ctx, "POST", "/2015-02-01/regionfs/verify", nil, map[string]string{"FileSystemId": args[0]}, &r); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				b, err := json.MarshalIndent(r, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s\n", b)
			} else {
				writeVerify(out, r)
			}
			if !r.Match {
				return fmt.Errorf("verification of %s found differences (repair started: %s)", args[0], r.Repair)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&region, "region", "", "region of the file system (default: AWS_REGION)")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "API endpoint (default: AWS_ENDPOINT_URL_EFS)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func writeVerify(out interface{ Write([]byte) (int, error) }, r verifyResult) {
	fmt.Fprintf(out, "%s: %s → %s\n", r.ReplicationID, r.SourceFileSystemID, r.DestinationFileSystemID)
	d := time.Duration(r.DurationSeconds * float64(time.Second)).Round(time.Millisecond)
	if r.Match {
		fmt.Fprintf(out, "match at seq %d (%s): %s, %s compared in %s\n", r.Seq, r.Time, count(r.RangesCompared, "range"), count(r.BlocksRead, "block"), d)
	} else {
		fmt.Fprintf(out, "MISMATCH at seq %d (%s): %d of %s differ, %d of %s bad on the replica (%s)\n",
			r.Seq, r.Time, r.DifferingRanges, count(r.RangesCompared, "range"), r.BadBlocks, count(r.BlocksRead, "block"), d)
		for _, x := range r.Differ {
			fmt.Fprintf(out, "  range differs: from %s to %s\n", x.From, x.To)
		}
		if len(r.Differ) < r.DifferingRanges {
			fmt.Fprintf(out, "  … and %d more ranges\n", r.DifferingRanges-len(r.Differ))
		}
		for _, id := range r.BadBlockIds {
			fmt.Fprintf(out, "  bad block: %s\n", id)
		}
		if r.Repair != "" {
			fmt.Fprintf(out, "repair: %s\n", r.Repair)
		}
	}
	fmt.Fprintf(out, "status: %s", r.Status)
	if r.StatusMessage != "" {
		fmt.Fprintf(out, " (%s)", r.StatusMessage)
	}
	fmt.Fprintln(out)
}

// count is "1 range", "2 ranges".
func count(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
