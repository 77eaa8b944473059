package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/regionfs/regionfs/internal/engine"
)

// version is set at link time (-ldflags "-X main.version=…"); otherwise it
// comes from the module build information.
var version = ""

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of regionfs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := version
			rev := ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				if v == "" {
					v = bi.Main.Version
				}
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						rev = s.Value
					}
				}
			}
			if v == "" || v == "(devel)" {
				v = "devel"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "regionfs %s", v)
			if rev != "" {
				fmt.Fprintf(cmd.OutOrStdout(), " (%.12s)", rev)
			}
			fmt.Fprintf(cmd.OutOrStdout(), " %s %s/%s storage-format %d journal-format %d\n",
				runtime.Version(), runtime.GOOS, runtime.GOARCH, engine.FormatVersion, engine.JournalFormatVersion)
			return nil
		},
	}
}
