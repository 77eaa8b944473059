package testkit

import (
	"net/netip"
	"strconv"
	"strings"
)

// NFSURL is the libnfs URL (nfs-cat, nfs-cp, nfs-ls) of path on the NFS
// server at a, which serves MOUNT on the same port. libnfs mounts
// everything before the last "/" of the path; with its default
// auto-traverse-mounts=1 it refuses the empty export it derives for a file
// at the root ("/f"), so such a path goes through "/" with a double slash.
func NFSURL(a netip.AddrPort, path string) string {
	if strings.Count(path, "/") == 1 {
		path = "/" + path
	}
	port := strconv.Itoa(int(a.Port()))
	return "nfs://" + a.Addr().String() + path + "?nfsport=" + port + "&mountport=" + port + "&version=3"
}
