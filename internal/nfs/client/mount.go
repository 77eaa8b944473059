package client

import (
	"context"

	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// Mount asks for the handle of an export path (MOUNT MNT).
func (c *Client) Mount(ctx context.Context, path string) (proto.FH, []uint32, error) {
	var res proto.MntRes
	if err := c.Call(ctx, proto.ProgMount, proto.VersMount, proto.MountProcMnt, &proto.DirPathArgs{Path: path}, &res); err != nil {
		return nil, nil, err
	}
	if res.Status != proto.MountOK {
		return nil, nil, res.Status
	}
	return append(proto.FH(nil), res.FH...), res.Flavors, nil
}

// Unmount tells the server a mount is gone (MOUNT UMNT).
func (c *Client) Unmount(ctx context.Context, path string) error {
	return c.Call(ctx, proto.ProgMount, proto.VersMount, proto.MountProcUmnt, &proto.DirPathArgs{Path: path}, proto.Void{})
}

// UnmountAll tells the server all mounts of this client are gone.
func (c *Client) UnmountAll(ctx context.Context) error {
	return c.Call(ctx, proto.ProgMount, proto.VersMount, proto.MountProcUmntAll, proto.Void{}, proto.Void{})
}

// Dump lists the server's mount list (MOUNT DUMP).
func (c *Client) Dump(ctx context.Context) ([]proto.MountEntry, error) {
	var res proto.DumpRes
	err := c.Call(ctx, proto.ProgMount, proto.VersMount, proto.MountProcDump, proto.Void{}, &res)
	return res.Entries, err
}

// Exports lists the server's exports (MOUNT EXPORT).
func (c *Client) Exports(ctx context.Context) ([]proto.ExportEntry, error) {
	var res proto.ExportRes
	err := c.Call(ctx, proto.ProgMount, proto.VersMount, proto.MountProcExport, proto.Void{}, &res)
	return res.Entries, err
}

// GetPort asks the portmapper for the TCP port of a program.
func (c *Client) GetPort(ctx context.Context, prog, vers uint32) (uint32, error) {
	var res proto.Uint32Res
	err := c.Call(ctx, proto.ProgPortmap, proto.VersPortmap, proto.PmapProcGetPort,
		&proto.Mapping{Prog: prog, Vers: vers, Prot: proto.IPProtoTCP}, &res)
	return res.V, err
}

// Null calls procedure 0 of a program.
func (c *Client) Null(ctx context.Context, prog, vers uint32) error {
	return c.Call(ctx, prog, vers, 0, proto.Void{}, proto.Void{})
}
