package efs

import (
	"net/http"

	"github.com/regionfs/regionfs/internal/control"
)

// createMountTarget: POST /2015-02-01/mount-targets → 200 MountTargetDescription.
func createMountTarget(c *call) error {
	b, err := c.bodyReader()
	if err != nil {
		return err
	}
	var in control.CreateMountTargetInput
	var ok bool
	in.FileSystemID, ok = b.str("FileSystemId")
	b.required("FileSystemId", ok)
	b.check("FileSystemId", in.FileSystemID, fileSystemIDRule)
	in.SubnetID, ok = b.str("SubnetId")
	b.required("SubnetId", ok)
	b.check("SubnetId", in.SubnetID, subnetIDRule)
	if in.IPAddress, ok = b.str("IpAddress"); ok {
		b.check("IpAddress", in.IPAddress, ipAddressRule)
	}
	if in.IPv6Address, ok = b.str("Ipv6Address"); ok {
		b.check("Ipv6Address", in.IPv6Address, ipv6AddressRule)
	}
	in.IPAddressType, _ = b.str("IpAddressType")
	in.SecurityGroups = securityGroups(b)
	if err := *b.err; err != nil {
		return err
	}
	mt, err := c.h.r.CreateMountTarget(c.req.Context(), in)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, mountTargetOut(mt))
}

// securityGroups reads a SecurityGroups member (at most 100 ids).
func securityGroups(b *reader) []string {
	sgs, ok := b.strings("SecurityGroups")
	if !ok {
		return nil
	}
	if len(sgs) > maxSecurityGroups {
		b.fail("1 validation error detected: Value at 'securityGroups' failed to satisfy constraint: Member must have length less than or equal to %d.", maxSecurityGroups)
	}
	for _, sg := range sgs {
		b.check("SecurityGroups", sg, securityGroupRule)
	}
	return sgs
}
