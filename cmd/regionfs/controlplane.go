package main

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/regionfs/regionfs/internal/api/efs"
	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/nfs"
)

// controlPlane is the region's EFS control plane as the commands use it:
// the EFS API handler and what the EC2 subset needs from it.
type controlPlane struct {
	region        *control.Region
	efs           http.Handler
	usedAddresses func(subnetID string) int
}

// openControl opens the control plane of n: it resumes half-done
// transitions and restarts the mount targets through n.mts.
func openControl(ctx context.Context, n *node) (*controlPlane, error) {
	cfg := n.cfg
	info := control.RegionInfo{Name: cfg.Region, AccountID: cfg.AccountID, VPCID: cfg.VPC.ID, DefaultKMSKey: control.DefaultKMSKey}
	for _, s := range cfg.Subnets {
		info.Subnets = append(info.Subnets, control.Subnet{ID: s.ID, AvailabilityZone: s.AvailabilityZone,
			AvailabilityZoneID: s.AvailabilityZoneID, VPCID: cfg.VPC.ID, CIDR: netip.MustParsePrefix(s.CIDR)})
	}
	for _, g := range cfg.SecurityGroups {
		sg := control.SecurityGroup{ID: g.ID, Name: g.Name, Description: g.Description, VPCID: cfg.VPC.ID}
		for _, c := range g.Ingress {
			sg.Ingress = append(sg.Ingress, netip.MustParsePrefix(c))
		}
		info.SecurityGroups = append(info.SecurityGroups, sg)
	}
	r, err := control.Open(ctx, control.Options{
		Region:          info,
		KV:              n.store,
		Engine:          n.engine,
		Keyring:         n.keyring,
		MountTargets:    controlMountTargets{n.mts},
		NFSPort:         cfg.NFS.Port,
		TransitionDelay: cfg.TransitionDelayOrDefault(),
		Logger:          n.baseLog, // control names the region itself
	})
	if err != nil {
		return nil, err
	}
	return &controlPlane{region: r, efs: efs.NewHandler(r, n.log), usedAddresses: r.UsedAddresses}, nil
}

func (c *controlPlane) close() error { return c.region.Close() }

// controlMountTargets implements control.MountTargetServer with package nfs.
type controlMountTargets struct{ m *mountTargets }

var _ control.MountTargetServer = controlMountTargets{}

func (c controlMountTargets) Start(ctx context.Context, mt control.MountTargetSpec) error {
	return c.m.start(ctx, fromSpec(mt))
}

func (c controlMountTargets) Update(ctx context.Context, mt control.MountTargetSpec) error {
	return c.m.update(ctx, fromSpec(mt))
}

func (c controlMountTargets) Stop(ctx context.Context, id string) error { return c.m.stop(ctx, id) }

func fromSpec(s control.MountTargetSpec) mountTarget {
	mt := mountTarget{ID: s.ID, FileSystemID: s.FileSystemID, Addr: s.Addr, FS: s.FS, Ingress: s.Ingress, ReadOnly: s.ReadOnly, RequireTLS: s.RequireTLS}
	for _, ap := range s.AccessPoints {
		a := accessPoint{ID: ap.ID, Path: ap.Path, PosixUser: ap.PosixUser}
		if ci := ap.CreationInfo; ci != nil {
			a.Create = &nfs.DirCreation{UID: ci.UID, GID: ci.GID, Mode: ci.Mode}
		}
		mt.AccessPoints = append(mt.AccessPoints, a)
	}
	return mt
}
