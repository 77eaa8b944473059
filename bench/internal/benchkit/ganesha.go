package benchkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
)

// Export is one directory nfs-ganesha exports.
type Export struct {
	Pseudo string // the NFSv4 pseudo path, e.g. /bench
	Path   string // the directory, also the NFSv3 MOUNT path
}

// Ganesha is nfs-ganesha with the VFS FSAL exporting directories over
// NFSv3/TCP on loopback only.
type Ganesha struct {
	NFSPort, MntPort int
	Exports          []Export
	// Extra is configuration text put before the exports.
	Extra string
}

// Prepare picks the ports, makes the export directories and writes
// dir/ganesha.conf; it returns the command line that runs the server in
// the foreground, logging to dir/ganesha.log.
func (g *Ganesha) Prepare(dir string) ([]string, error) {
	var err error
	if g.NFSPort, err = FreePort(); err != nil {
		return nil, err
	}
	if g.MntPort, err = FreePort(); err != nil {
		return nil, err
	}
	for _, e := range g.Exports {
		if err := os.MkdirAll(e.Path, 0o755); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(dir, "ganesha.conf")
	if err := os.WriteFile(conf, []byte(g.conf()), 0o644); err != nil {
		return nil, err
	}
	return []string{"ganesha.nfsd", "-F", "-L", filepath.Join(dir, "ganesha.log"), "-f", conf, "-p", filepath.Join(dir, "ganesha.pid")}, nil
}

func (g *Ganesha) conf() string {
	var b strings.Builder
	fmt.Fprintf(&b, `NFS_CORE_PARAM {
  NFS_Port = %d;
  MNT_Port = %d;
  Enable_NLM = false;
  Enable_RQUOTA = false;
  Protocols = 3;
  Bind_addr = 127.0.0.1;
}
NFSV4 { Graceless = true; }
%s`, g.NFSPort, g.MntPort, g.Extra)
	for i, e := range g.Exports {
		fmt.Fprintf(&b, `EXPORT {
  Export_Id = %d;
  Path = %s;
  Pseudo = %s;
  Access_Type = RW;
  Squash = No_Root_Squash;
  Protocols = 3;
  Transports = TCP;
  SecType = sys;
  FSAL { Name = VFS; }
}
`, i+1, e.Path, e.Pseudo)
	}
	b.WriteString("LOG { Default_Log_Level = WARN; }\n")
	return b.String()
}

// NFSAddr and MountAddr are where NFS and MOUNT listen.
func (g *Ganesha) NFSAddr() string   { return fmt.Sprintf("127.0.0.1:%d", g.NFSPort) }
func (g *Ganesha) MountAddr() string { return fmt.Sprintf("127.0.0.1:%d", g.MntPort) }

// Ready waits up to 60 s until NFS accepts and MOUNT of every export
// answers (ganesha accepts before its exports are ready). exited is as
// for WaitPort.
func (g *Ganesha) Ready(ctx context.Context, exited func() error) error {
	if err := WaitPort(g.NFSAddr(), exited, 60*time.Second); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, e := range g.Exports {
		for {
			mc, err := client.Dial(ctx, g.MountAddr())
			if err == nil {
				_, _, err = mc.WithAuth(client.Unix("bench", 0, 0)).Mount(ctx, e.Path)
				mc.Close()
			}
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("ganesha MOUNT %s not ready: %w", e.Path, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}

// GaneshaServer runs a Ganesha exporting one fresh directory.
type GaneshaServer struct {
	Ganesha
	cmd *exec.Cmd
}

// Start runs nfs-ganesha exporting dir/export as /bench and waits until
// it serves.
func (s *GaneshaServer) Start(ctx context.Context, dir string) error {
	s.Exports = []Export{{Pseudo: "/bench", Path: filepath.Join(dir, "export")}}
	argv, err := s.Prepare(dir)
	if err != nil {
		return err
	}
	s.cmd = exec.Command(argv[0], argv[1:]...)
	DieWithHarness(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	return s.Ready(ctx, CmdExited(s.cmd))
}

// Stop stops the server.
func (s *GaneshaServer) Stop() error { return StopProcess(s.cmd) }

// PID is the running ganesha.nfsd's process id.
func (s *GaneshaServer) PID() int { return s.cmd.Process.Pid }

// Export is the exported directory (its MOUNT path).
func (s *GaneshaServer) Export() string { return s.Exports[0].Path }
