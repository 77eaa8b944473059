package main

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/regionfs/regionfs/internal/api/efs"
	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/network"
)

// controlPlane is the region's EFS control plane as the commands use it:
// the EFS API handler and what the EC2 subset needs from it.
type controlPlane struct {
	region        *control.Region
	efs           http.Handler
	usedAddresses func(subnetID string) int
	net           *network.Network
}

// openControl opens the control plane of n: it resumes half-done
// transitions and restarts the mount targets through n.targets.
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
	// The configured groups admit NFS (TCP on the NFS port) from their
	// ingress CIDRs; they are created at the first start and managed
	// through the EC2 API afterwards.
	var seed []network.Group
	for _, g := range cfg.SecurityGroups {
		ng := network.Group{ID: g.ID, Name: g.Name, Description: g.Description, VPCID: cfg.VPC.ID,
			Rules: []network.Rule{{Egress: true, Protocol: "-1", FromPort: -1, ToPort: -1, CIDRv4: "0.0.0.0/0"}}}
		if ng.Description == "" {
			ng.Description = g.Name
		}
		for _, c := range g.Ingress {
			r := network.Rule{Protocol: "tcp", FromPort: cfg.NFS.Port, ToPort: cfg.NFS.Port, Description: "NFS"}
			if netip.MustParsePrefix(c).Addr().Is4() {
				r.CIDRv4 = c
			} else {
				r.CIDRv6 = c
			}
			ng.Rules = append(ng.Rules, r)
		}
		seed = append(seed, ng)
	}
	nw, err := network.Open(network.Options{Region: cfg.Region, AccountID: cfg.AccountID, VPCID: cfg.VPC.ID, KV: n.store,
		NFSPort: cfg.NFS.Port, Seed: seed, Logger: n.log})
	if err != nil {
		return nil, fmt.Errorf("security groups: %w", err)
	}
	r, err := control.Open(ctx, control.Options{
		SecurityGroups:  groupSource{nw},
		Region:          info,
		KV:              n.store,
		Engine:          n.engine,
		Keyring:         n.keyring,
		MountTargets:    n.mountTargets(),
		NFSPort:         cfg.NFS.Port,
		TransitionDelay: cfg.TransitionDelayOrDefault(),
		Logger:          n.log,
		Storage:         n.space.Status,
	})
	if err != nil {
		return nil, err
	}
	nw.Watch(func(ids []string) { r.SecurityGroupsChanged(context.Background(), ids) })
	return &controlPlane{region: r, efs: efs.NewHandler(r, n.log), usedAddresses: r.UsedAddresses, net: nw}, nil
}

// groupSource gives the control plane the security groups of the
// network domain.
type groupSource struct{ n *network.Network }

func (g groupSource) SecurityGroup(id string) (control.SecurityGroup, bool) {
	ng, ok := g.n.Group(id)
	if !ok {
		return control.SecurityGroup{}, false
	}
	return control.SecurityGroup{ID: ng.ID, Name: ng.Name, Description: ng.Description, VPCID: ng.VPCID,
		Ingress: g.n.Ingress([]string{id})}, true
}

func (g groupSource) DefaultSecurityGroup(vpc string) (string, bool) { return g.n.DefaultGroup(vpc) }

func (c *controlPlane) close() error { return c.region.Close() }
