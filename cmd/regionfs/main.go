// Command regionfs is a self-hosted elastic file system with continuous
// cross-region replication. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	if isMountHelper(os.Args[0]) {
		err = mountEFSHelper(ctx, os.Args[1:], os.Stdout)
	} else {
		err = newRootCmd().ExecuteContext(ctx)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "regionfs:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "regionfs",
		Short:         "Elastic file system with continuous cross-region replication",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionLine(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(newVersionCmd())
	root.AddCommand(newNFSCmd())
	root.AddCommand(newServeCmd(), newDevCmd(), newEdgeCmd(), newKeygenCmd())
	root.AddCommand(newStatusCmd(), newFailoverCmd(), newFailbackCmd(), newDrillCmd(), newClusterCmd(), newReplicationCmd())
	root.AddCommand(newMountCmd(), newUmountCmd(), newInstallMountHelperCmd())
	return root
}
