package nfs

import (
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procReadDirPlus serves READDIRPLUS: entries with their attributes and
// handles, within the client's dircount and maxcount.
func procReadDirPlus(r *request) (proto.Message, error) {
	var a proto.ReadDirPlusArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	res := r.readDir("READDIRPLUS", a.FH, a.Cookie, a.Verf, a.MaxCount, int(a.DirCount), true)
	return (*proto.ReadDirPlusRes)(res), nil
}
