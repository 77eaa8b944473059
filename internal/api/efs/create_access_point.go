package efs

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/regionfs/regionfs/internal/control"
)

// createAccessPoint: POST /2015-02-01/access-points → 200 AccessPointDescription.
func createAccessPoint(c *call) error {
	b, err := c.bodyReader()
	if err != nil {
		return err
	}
	var in control.CreateAccessPointInput
	var ok bool
	in.ClientToken, ok = b.str("ClientToken")
	b.required("ClientToken", ok)
	b.check("ClientToken", in.ClientToken, tokenRule)
	in.Tags, _ = b.tags("Tags")
	in.FileSystemID, ok = b.str("FileSystemId")
	b.required("FileSystemId", ok)
	b.check("FileSystemId", in.FileSystemID, fileSystemIDRule)
	if u, ok := b.objectAt("PosixUser"); ok {
		in.PosixUser = posixUser(u)
	}
	if d, ok := b.objectAt("RootDirectory"); ok {
		if in.RootDirectory.Path, ok = d.str("Path"); ok {
			d.check("Path", in.RootDirectory.Path, pathRule)
		}
		if ci, ok := d.objectAt("CreationInfo"); ok {
			var info control.CreationInfo
			uid, hasUID := ci.integer("OwnerUid", 0, maxID)
			gid, hasGID := ci.integer("OwnerGid", 0, maxID)
			perms, hasPerms := ci.str("Permissions")
			ci.required("OwnerUid", hasUID)
			ci.required("OwnerGid", hasGID)
			ci.required("Permissions", hasPerms)
			ci.check("Permissions", perms, permissionsRule)
			info.OwnerUID, info.OwnerGID, info.Permissions = uint32(uid), uint32(gid), perms
			in.RootDirectory.CreationInfo = &info
		}
	}
	if err := *b.err; err != nil {
		return err
	}
	ap, err := c.h.r.CreateAccessPoint(c.req.Context(), in)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, accessPointOut(ap))
}

func posixUser(u *reader) *control.PosixUser {
	uid, hasUID := u.integer("Uid", 0, maxID)
	gid, hasGID := u.integer("Gid", 0, maxID)
	u.required("Uid", hasUID)
	u.required("Gid", hasGID)
	p := &control.PosixUser{UID: uint32(uid), GID: uint32(gid)}
	l, ok := u.list("SecondaryGids")
	if !ok {
		return p
	}
	if len(l) > maxSecondaryGIDs {
		u.fail("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have length less than or equal to %d.", u.name("SecondaryGids"), maxSecondaryGIDs)
		return p
	}
	for i, v := range l {
		one := &reader{obj: object{"Gid": json.RawMessage(v)}, path: fmt.Sprintf("%s.%d", u.name("SecondaryGids"), i+1), err: u.err}
		g, _ := one.integer("Gid", 0, maxID)
		p.SecondaryGIDs = append(p.SecondaryGIDs, uint32(g))
	}
	return p
}
