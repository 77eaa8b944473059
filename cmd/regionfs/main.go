// Command regionfs is a self-hosted elastic file system with continuous
// cross-region replication. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"
)

// stopSignals are the signals that stop regionfs cleanly: SIGINT,
// SIGTERM, and SIGHUP as SIGTERM (there is no configuration reload): left
// to Go's default it ended serve, edge and dev at once, without their
// clean stop (buffered NFS writes made durable, the store closed, exit
// code 0), when a terminal closed or a reload was tried. Not SIGHUP when
// the process was started with it ignored (nohup, a parent that
// detaches it): Notify would undo that, and the closed terminal nohup was
// for would stop the server.
func stopSignals() []os.Signal {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

func main() {
	if len(os.Args) > 1 && opensStores(os.Args[1]) {
		execWithHugePages()
	}
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals()...)
	stopProfile, err := startCPUProfile(os.Getenv("REGIONFS_CPUPROFILE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "regionfs:", err)
		os.Exit(1)
	}
	if isMountHelper(os.Args[0]) {
		err = mountEFSHelper(ctx, os.Args[1:], os.Stdout)
	} else {
		err = newRootCmd().ExecuteContext(ctx)
	}
	stop()
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "regionfs:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "regionfs",
		Short: "Elastic file system with continuous cross-region replication",
		Long: `regionfs is a self-hosted elastic file system with continuous cross-region
replication for disaster recovery. Clients mount it over NFSv3; operators
drive it with the AWS EFS API (the aws CLI, boto3, the SDKs with an endpoint
override) and fail over and back with the same calls as on AWS.

'regionfs dev' runs two regions and the edge on loopback, to try it;
'regionfs serve' runs one region of a real deployment and 'regionfs edge' its
client endpoint; status, failover and failback are the operator's commands.
'regionfs help production' summarises running it on two hosts
(docs/production.md in the source tree has the whole guide).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionLine(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(newVersionCmd())
	root.AddCommand(newNFSCmd())
	root.AddCommand(newServeCmd(), newDevCmd(), newEdgeCmd(), newKeygenCmd())
	root.AddCommand(newStatusCmd(), newFailoverCmd(), newFailbackCmd(), newDrillCmd(), newVerifyCmd(), newClusterCmd(), newReplicationCmd())
	root.AddCommand(newManCmd())
	root.AddCommand(helpTopics()...)
	root.AddCommand(newMountCmd(), newUmountCmd(), newInstallMountHelperCmd())
	return root
}

// startCPUProfile writes a CPU profile of the whole process to path
// (REGIONFS_CPUPROFILE, for benchmarks: bench/replication -cpuprofile)
// until the returned function is called; an empty path profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("REGIONFS_CPUPROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("REGIONFS_CPUPROFILE: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// opensStores says whether the command cmd (the first argument: the root
// command has no flags of its own) runs a server that opens the engine's
// stores, the only commands worth the huge-pages re-execution
// (hugepages_cgo.go); the others (the CLI, mount, edge) start once.
func opensStores(cmd string) bool {
	switch cmd {
	case "dev", "serve", "nfs":
		return true
	}
	return false
}
