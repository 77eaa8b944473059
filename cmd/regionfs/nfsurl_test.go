package main

import (
	"net/netip"
	"strconv"
	"strings"
)

// nfsURL is a libnfs URL. libnfs mounts everything before the last "/" of
// the path; with its default auto-traverse-mounts=1 it refuses the empty
// export it derives for files at the root, so those go through "/" with a
// double slash.
func nfsURL(a netip.AddrPort, path string) string {
	if strings.Count(path, "/") == 1 {
		path = "/" + path
	}
	return "nfs://" + a.Addr().String() + path + "?nfsport=" + itoa(int(a.Port())) + "&mountport=" + itoa(int(a.Port())) + "&version=3"
}

func itoa(n int) string { return strconv.Itoa(n) }
