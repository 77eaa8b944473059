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

// versionLine is what `regionfs version` and `regionfs --version` print:
// the release, the commit, the Go toolchain and platform, and the storage
// and journal format versions this binary writes (docs/production.md says
// what they promise).
func versionLine() string {
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
	s := "regionfs " + v
	if rev != "" {
		s += fmt.Sprintf(" (%.12s)", rev)
	}
	return s + fmt.Sprintf(" %s %s/%s storage-format %d journal-format %d",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, engine.FormatVersion, engine.JournalFormatVersion)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of regionfs (also: regionfs --version)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionLine())
			return err
		},
	}
}
