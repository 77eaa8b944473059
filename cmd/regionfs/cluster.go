package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/regionfs/regionfs/internal/cluster"
	"github.com/regionfs/regionfs/internal/config"
	"github.com/regionfs/regionfs/internal/engine/kv/pgkv"
)

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "The nodes of a region on a shared PostgreSQL store: list them, drain one",
	}
	cmd.AddCommand(newClusterNodesCmd(), newClusterDrainCmd())
	return cmd
}

// withClusterStore runs f with the config at path and the region's
// PostgreSQL store, closed when f returns (no lease is taken: nothing is
// written but node flags).
func withClusterStore(ctx context.Context, path string, f func(cfg *config.Config, s *pgkv.Store) error) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if cfg.Metadata == "" {
		return errors.New("the region keeps its metadata in data_dir (no metadata: postgres://… in the config): it has one node")
	}
	s, err := pgkv.Open(ctx, pgkv.Options{URL: cfg.Metadata, RetryFor: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("metadata store (PostgreSQL): %w", err)
	}
	defer s.Close()
	return f(cfg, s)
}

func newClusterNodesCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "nodes --config FILE",
		Short: "List the region's nodes: which owns the region, which are drained, when each was last heard of",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClusterStore(cmd.Context(), path, func(cfg *config.Config, s *pgkv.Store) error {
				return printNodes(cmd.Context(), cmd.OutOrStdout(), s, cfg)
			})
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "region config file (YAML)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func printNodes(ctx context.Context, out io.Writer, s *pgkv.Store, cfg *config.Config) error {
	nodes, err := s.Nodes(ctx)
	if err != nil {
		return err
	}
	leases, err := s.Leases(ctx, cluster.RegionLeaseName(cfg.Region))
	if err != nil {
		return err
	}
	owner := ""
	for _, l := range leases {
		if l.Name == cluster.RegionLeaseName(cfg.Region) && !l.Expired {
			owner = l.Holder
		}
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tDRAINED\tLAST HEARD\tHOST")
	for _, n := range nodes {
		role := "standby"
		switch {
		case n.Name == owner:
			role = "owner"
		case n.Age > 2*cfg.Cluster.Lease:
			role = "gone"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s ago\t%s\n", n.Name, role, n.Draining, n.Age.Round(100*time.Millisecond), n.Addr)
	}
	return tw.Flush()
}

func newClusterDrainCmd() *cobra.Command {
	var path, name string
	var undo bool
	cmd := &cobra.Command{
		Use:   "drain --config FILE --node NAME [--undo]",
		Short: "Drain a node: it takes no region over, and the owner, drained, stops and hands the region to a live standby",
		Long: `drain marks a node of the region as drained (the flag is kept in the
database, across restarts of the node). A drained standby does not take the
region over. A drained owner, once another node that is not drained is
alive, stops cleanly (exit status 0) and releases the region's lease, so
that the standby takes the region over at once; without such a node it keeps
the region and says so in its log. --undo lifts the flag.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return withClusterStore(ctx, path, func(cfg *config.Config, s *pgkv.Store) error {
				if name == "" {
					name = cfg.Cluster.Node
				}
				ok, err := s.SetDraining(ctx, name, !undo)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("no node %q has run in region %s (regionfs cluster nodes --config %s lists them)", name, cfg.Region, path)
				}
				return printNodes(ctx, cmd.OutOrStdout(), s, cfg)
			})
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "region config file (YAML)")
	cmd.Flags().StringVar(&name, "node", "", "node to drain (default: cluster.node of the config)")
	cmd.Flags().BoolVar(&undo, "undo", false, "lift the drain")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
