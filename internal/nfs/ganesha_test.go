package nfs

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/testkit"
)

// ganesha is nfs-ganesha 4.x with its VFS back end exporting a fresh
// directory over NFSv3/TCP on 127.0.0.1: the reference server of the
// differential conformance test. It needs root and a portmapper (rpcbind),
// which it registers with; it is started when none answers and stopped
// with the test.
type ganesha struct {
	nfsAddr, mountAddr string
	export             string // the exported directory: its MOUNT path
	squashed           string // a second export of a directory, with root squash
}

// startGanesha starts nfs-ganesha for the test, or skips it (fails under
// REGIONFS_REQUIRE_TOOLS=1) when nfs-ganesha, rpcbind or root are missing.
func startGanesha(t *testing.T) *ganesha {
	t.Helper()
	bin := testkit.NeedTool(t, "ganesha.nfsd")
	if os.Geteuid() != 0 {
		if os.Getenv(testkit.RequireToolsEnv) == "1" {
			t.Fatal("nfs-ganesha needs root (" + testkit.RequireToolsEnv + "=1)")
		}
		t.Skip("skipping: nfs-ganesha needs root")
	}
	dir := t.TempDir()
	if !listening("127.0.0.1:111") {
		rb := testkit.NeedTool(t, "rpcbind")
		startChild(t, dir, "rpcbind", rb, "-f")
		waitListening(t, "127.0.0.1:111")
	}
	g := &ganesha{export: filepath.Join(dir, "export"), squashed: filepath.Join(dir, "squashed")}
	for _, d := range []string{g.export, g.squashed} {
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	nfsPort, mntPort := freePort(t), freePort(t)
	g.nfsAddr, g.mountAddr = fmt.Sprintf("127.0.0.1:%d", nfsPort), fmt.Sprintf("127.0.0.1:%d", mntPort)
	var conf strings.Builder
	fmt.Fprintf(&conf, "NFS_CORE_PARAM { NFS_Port = %d; MNT_Port = %d; Enable_NLM = false; Enable_RQUOTA = false; Protocols = 3; Bind_addr = 127.0.0.1; }\n", nfsPort, mntPort)
	// NFSv4 recovery state in the test's directory, not /var/lib/nfs.
	fmt.Fprintf(&conf, "NFSV4 { Graceless = true; RecoveryBackend = fs; RecoveryRoot = %s; }\nLOG { Default_Log_Level = WARN; }\n", filepath.Join(dir, "recovery"))
	for i, e := range []struct{ path, squash string }{{g.export, "No_Root_Squash"}, {g.squashed, "Root_Squash"}} {
		fmt.Fprintf(&conf, "EXPORT { Export_Id = %d; Path = %s; Pseudo = /x%d; Access_Type = RW; Squash = %s; Anonymous_Uid = 65534; Anonymous_Gid = 65534; Protocols = 3; Transports = TCP; SecType = sys, none; FSAL { Name = VFS; } }\n",
			i+1, e.path, i+1, e.squash)
	}
	confPath := filepath.Join(dir, "ganesha.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	startChild(t, dir, "ganesha", bin, "-F", "-L", filepath.Join(dir, "ganesha.log"), "-f", confPath, "-p", filepath.Join(dir, "ganesha.pid"))
	waitListening(t, g.nfsAddr)
	// ganesha accepts before its exports are ready: wait for MOUNT.
	var err error
	ready := testkit.Until(60*time.Second, func() bool {
		var mc *client.Conn
		if mc, err = client.Dial(context.Background(), g.mountAddr); err != nil {
			return false
		}
		defer mc.Close()
		_, _, err = mc.WithAuth(client.Unix("qa", 0, 0)).Mount(context.Background(), g.export)
		return err == nil
	})
	if !ready {
		log, _ := os.ReadFile(filepath.Join(dir, "ganesha.log"))
		t.Fatalf("ganesha not ready: %v\n%s", err, log)
	}
	return g
}

// startChild runs a server process for the test's duration: it is
// stopped (SIGTERM, then SIGKILL) and waited for at cleanup.
func startChild(t *testing.T, dir, name, bin string, args ...string) {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, name+".out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	testkit.WaitFor(t, addr+" to listen", 60*time.Second, func() bool { return listening(addr) })
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// confServer returns the differential test's view of ganesha: export is
// the root-squash export when squash is set.
func (g *ganesha) confServer(t *testing.T, squash bool) *confServer {
	path := g.export
	if squash {
		path = g.squashed
	}
	return newConfServer(t, "ganesha", g.nfsAddr, g.mountAddr, path)
}
