package control

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/regionfs/regionfs/internal/engine"
)

// CreateMountTargetInput are the parameters of CreateMountTarget.
type CreateMountTargetInput struct {
	FileSystemID string
	SubnetID     string
	// IPAddress, when set, is the address to use (else the lowest free
	// one of the subnet).
	IPAddress string
	// IPv6Address and IPAddressType: the subnets here are IPv4 only.
	IPv6Address   string
	IPAddressType string
	// SecurityGroups (at most MaxSecurityGroups, of the subnet's VPC);
	// empty means the VPC's default group.
	SecurityGroups []string
}

// CreateMountTarget creates a mount target for an available file system
// in a subnet: it gets an address of the subnet (or IPAddress) and serves
// NFS there on the region's NFS port. A file system has at most one mount
// target per availability zone, all in one VPC; a One Zone file system
// only in its zone.
func (r *Region) CreateMountTarget(ctx context.Context, in CreateMountTargetInput) (MountTarget, error) {
	if err := r.checkSpace(); err != nil {
		return MountTarget{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkLocked(); err != nil {
		return MountTarget{}, err
	}
	f, err := r.lookupFSLocked(in.FileSystemID)
	if err != nil {
		return MountTarget{}, err
	}
	if f.State != StateAvailable {
		return MountTarget{}, wrongFSState(f.ID, f.State)
	}
	s, ok := r.subnet(in.SubnetID)
	if !ok {
		return MountTarget{}, errorf(ErrSubnetNotFound, "The subnet ID '%s' does not exist.", clip(in.SubnetID))
	}
	switch in.IPAddressType {
	case "", "IPV4_ONLY":
	case "IPV6_ONLY", "DUAL_STACK":
		return MountTarget{}, badRequest("Subnet '%s' has no IPv6 CIDR block; IpAddressType %s is not possible.", s.ID, in.IPAddressType)
	default:
		return MountTarget{}, oneOf("IpAddressType", in.IPAddressType, []string{"IPV4_ONLY", "IPV6_ONLY", "DUAL_STACK"})
	}
	if in.IPv6Address != "" {
		return MountTarget{}, badRequest("Subnet '%s' has no IPv6 CIDR block; Ipv6Address cannot be given.", s.ID)
	}
	sgs, err := r.checkSecurityGroups(s.VPCID, in.SecurityGroups)
	if err != nil {
		return MountTarget{}, err
	}
	if f.AZ != "" && f.AZ != s.AvailabilityZone {
		return MountTarget{}, errorf(ErrAvailabilityZonesMismatch, "File system '%s' is a One Zone file system in %s; subnet '%s' is in %s.", f.ID, f.AZ, s.ID, s.AvailabilityZone)
	}
	for _, m := range sortedValues(r.mts) {
		if m.FileSystemID != f.ID {
			continue
		}
		if m.VPC != s.VPCID {
			return MountTarget{}, errorf(ErrMountTargetConflict, "File system '%s' has mount targets in VPC '%s'; subnet '%s' is in VPC '%s'.", f.ID, m.VPC, s.ID, s.VPCID)
		}
		if m.AZ == s.AvailabilityZone {
			return MountTarget{}, errorf(ErrMountTargetConflict, "File system '%s' already has mount target '%s' in availability zone %s.", f.ID, m.ID, m.AZ)
		}
	}
	if len(r.mts) >= r.o.MaxNetworkInterfaces {
		return MountTarget{}, errorf(ErrNetworkInterfaceLimitExceeded, "The account has reached the limit of %d network interfaces in region %s.", r.o.MaxNetworkInterfaces, r.o.Region.Name)
	}
	ip, err := r.allocateAddressLocked(s, in.IPAddress)
	if err != nil {
		return MountTarget{}, err
	}
	now := r.now()
	m := &mtRecord{
		ID: r.newIDLocked(mtPrefix), FileSystemID: f.ID, SubnetID: s.ID, Created: now, State: StateCreating, Since: now,
		IP: ip, ENI: r.newIDLocked(eniPrefix), AZ: s.AvailabilityZone, AZID: s.AvailabilityZoneID, VPC: s.VPCID, SecurityGroups: sgs,
	}
	started := false
	if r.o.MountTargets != nil {
		spec, err := r.specLocked(m)
		if err != nil {
			return MountTarget{}, err
		}
		if err := r.o.MountTargets.Start(ctx, spec); err != nil {
			switch {
			case errors.Is(err, ErrIPAddressInUse):
				return MountTarget{}, errorf(ErrIPAddressInUse, "IP address %s of subnet '%s' cannot be used: %v", ip, s.ID, err)
			case errors.Is(err, ErrNoFreeAddresses):
				return MountTarget{}, errorf(ErrNoFreeAddresses, "Subnet '%s' has no free address for another mount target: %v", s.ID, err)
			}
			return MountTarget{}, fmt.Errorf("control: serve mount target %s on %s: %w", m.ID, spec.Addr, err)
		}
		started = true
	}
	t := r.begin()
	t.putMT(m)
	if err := t.commit(); err != nil {
		if started {
			if serr := r.o.MountTargets.Stop(context.WithoutCancel(ctx), m.ID); serr != nil {
				r.log.Error("mount target not stopped after a failed create", "mount_target", m.ID, "err", serr)
			}
		}
		return MountTarget{}, err
	}
	r.log.Info("mount target created", "mount_target", m.ID, "fs_id", f.ID, "subnet", s.ID, "ip", ip.String())
	r.poke()
	return r.describeMT(m), nil
}

// checkSecurityGroups validates the groups of a mount target in vpc and
// returns them without repeats (the VPC's default group when none).
func (r *Region) checkSecurityGroups(vpc string, ids []string) ([]string, error) {
	if len(ids) == 0 && r.o.SecurityGroups != nil {
		def, ok := r.o.SecurityGroups.DefaultSecurityGroup(vpc)
		if !ok {
			return nil, errorf(ErrSecurityGroupNotFound, "VPC '%s' has no security group; give SecurityGroups.", vpc)
		}
		return []string{def}, nil
	}
	if len(ids) == 0 {
		var def string
		for _, g := range r.o.Region.SecurityGroups {
			if g.VPCID != vpc {
				continue
			}
			if def == "" || g.Name == "default" {
				def = g.ID
			}
		}
		if def == "" {
			return nil, errorf(ErrSecurityGroupNotFound, "VPC '%s' has no security group; give SecurityGroups.", vpc)
		}
		return []string{def}, nil
	}
	var out []string
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if len(out) > r.o.MaxSecurityGroups {
		return nil, errorf(ErrSecurityGroupLimitExceeded, "A mount target can have at most %d security groups; %d were given.", r.o.MaxSecurityGroups, len(out))
	}
	for _, id := range out {
		g, ok := r.securityGroup(id)
		if !ok {
			return nil, errorf(ErrSecurityGroupNotFound, "The security group '%s' does not exist.", clip(id))
		}
		if g.VPCID != vpc {
			return nil, errorf(ErrSecurityGroupNotFound, "The security group '%s' does not belong to VPC '%s'.", id, vpc)
		}
	}
	return out, nil
}

// usable reports whether ip can be given to a mount target of s: EC2
// reserves a subnet's first four addresses and its last one.
func usable(s Subnet, ip netip.Addr) bool {
	p := s.CIDR.Masked()
	if !p.Contains(ip) {
		return false
	}
	first := p.Addr()
	for range 4 {
		first = first.Next()
	}
	return ip.Compare(first) >= 0 && ip.Compare(lastAddr(p)) < 0
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	hostBits := 32 - p.Bits()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= uint32(uint64(1)<<hostBits - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (r *Region) allocateAddressLocked(s Subnet, want string) (netip.Addr, error) {
	used := map[netip.Addr]string{}
	for _, m := range r.mts {
		if m.SubnetID == s.ID {
			used[m.IP] = m.ID
		}
	}
	if want != "" {
		ip, err := netip.ParseAddr(want)
		if err != nil || !ip.Is4() {
			return netip.Addr{}, badRequest("IpAddress '%s' is not an IPv4 address.", clip(want))
		}
		if !usable(s, ip) {
			return netip.Addr{}, badRequest("IpAddress %s is not a usable address of subnet '%s' (%s).", ip, s.ID, s.CIDR)
		}
		if id, ok := used[ip]; ok {
			return netip.Addr{}, errorf(ErrIPAddressInUse, "IP address %s of subnet '%s' is in use by mount target '%s'.", ip, s.ID, id)
		}
		return ip, nil
	}
	p := s.CIDR.Masked()
	for ip := p.Addr(); p.Contains(ip); ip = ip.Next() {
		if usable(s, ip) {
			if _, taken := used[ip]; !taken {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, errorf(ErrNoFreeAddresses, "Subnet '%s' (%s) has no free address.", s.ID, s.CIDR)
}

// UsedAddresses is the number of addresses of a subnet that mount targets
// hold.
func (r *Region) UsedAddresses(subnetID string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.mts {
		if m.SubnetID == subnetID {
			n++
		}
	}
	return n
}

func (r *Region) describeMT(m *mtRecord) MountTarget {
	return MountTarget{
		ID: m.ID, FileSystemID: m.FileSystemID, OwnerID: r.o.Region.AccountID, SubnetID: m.SubnetID,
		LifeCycleState: m.State, IPAddress: m.IP.String(), NetworkInterfaceID: m.ENI,
		AvailabilityZoneName: m.AZ, AvailabilityZoneID: m.AZID, VPCID: m.VPC, SecurityGroups: slices.Clone(m.SecurityGroups),
	}
}

// specLocked is what mount target m serves now.
func (r *Region) specLocked(m *mtRecord) (MountTargetSpec, error) {
	f := r.fss[m.FileSystemID]
	if f == nil {
		return MountTargetSpec{}, fmt.Errorf("control: mount target %s: file system %s is gone", m.ID, m.FileSystemID)
	}
	efs, err := r.engineFS(f.ID)
	if err != nil && !errors.Is(err, engine.ErrElsewhere) {
		return MountTargetSpec{}, err
	}
	spec := MountTargetSpec{
		ID: m.ID, FileSystemID: f.ID, Addr: netip.AddrPortFrom(m.IP, uint16(r.o.NFSPort)), FS: efs,
		ReadOnly:   f.Protection != ProtectionEnabled || f.CopyOf != "",
		RequireTLS: PolicyRequiresTLS(f.Policy),
	}
	for _, id := range m.SecurityGroups {
		g, ok := r.securityGroup(id)
		if !ok {
			r.log.Warn("mount target security group is no longer configured", "mount_target", m.ID, "security_group", id)
			continue
		}
		for _, p := range g.Ingress {
			if !slices.Contains(spec.Ingress, p) {
				spec.Ingress = append(spec.Ingress, p)
			}
		}
	}
	for _, a := range sortedValues(r.aps) {
		if a.FileSystemID == f.ID && a.State != StateDeleting {
			spec.AccessPoints = append(spec.AccessPoints, accessPointSpec(a))
		}
	}
	return spec, nil
}

func accessPointSpec(a *apRecord) AccessPointSpec {
	s := AccessPointSpec{ID: a.ID, Path: a.Root.Path}
	if u := a.PosixUser; u != nil {
		s.PosixUser = &engine.Cred{UID: u.UID, GID: u.GID, Groups: slices.Clone(u.SecondaryGIDs)}
	}
	if c := a.Root.CreationInfo; c != nil {
		mode, _ := strconv.ParseUint(c.Permissions, 8, 32) // validated at creation
		s.CreationInfo = &DirCreation{UID: c.OwnerUID, GID: c.OwnerGID, Mode: uint32(mode)}
	}
	return s
}

// updateMountTargetsLocked tells the mount-target server what the mount
// targets of a file system serve now.
func (r *Region) updateMountTargetsLocked(ctx context.Context, fsID string) {
	if r.o.MountTargets == nil {
		return
	}
	for _, m := range sortedValues(r.mts) {
		if m.FileSystemID != fsID || m.State == StateDeleting {
			continue
		}
		spec, err := r.specLocked(m)
		if err == nil {
			err = r.o.MountTargets.Update(ctx, spec)
		}
		if err != nil {
			r.log.Error("mount target not updated", "mount_target", m.ID, "fs_id", fsID, "err", err)
		}
	}
}

// MountTargetQuery selects mount targets: those of a file system, one by
// id, or those of an access point's file system. Exactly one is given.
type MountTargetQuery struct {
	FileSystemID, MountTargetID, AccessPointID string
	Page
}

// DescribeMountTargets lists mount targets, one page at a time (10 by
// default, 100 at most).
func (r *Region) DescribeMountTargets(_ context.Context, q MountTargetQuery) ([]MountTarget, string, error) {
	n := 0
	for _, s := range []string{q.FileSystemID, q.MountTargetID, q.AccessPointID} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, "", badRequest("Exactly one of FileSystemId, MountTargetId and AccessPointId must be given.")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var fsID string
	switch {
	case q.MountTargetID != "":
		m, err := r.lookupMTLocked(q.MountTargetID)
		if err != nil {
			return nil, "", err
		}
		return []MountTarget{r.describeMT(m)}, "", nil
	case q.AccessPointID != "":
		a, err := r.lookupAPLocked(q.AccessPointID)
		if err != nil {
			return nil, "", err
		}
		fsID = a.FileSystemID
	default:
		f, err := r.lookupFSLocked(q.FileSystemID)
		if err != nil {
			return nil, "", err
		}
		fsID = f.ID
	}
	var all []*mtRecord
	for _, m := range sortedValues(r.mts) {
		if m.FileSystemID == fsID {
			all = append(all, m)
		}
	}
	page, next, err := paginate(all, markerMountTargets, q.Page, 10, 100)
	if err != nil {
		return nil, "", err
	}
	out := make([]MountTarget, len(page))
	for i, m := range page {
		out[i] = r.describeMT(m)
	}
	return out, next, nil
}

// DeleteMountTarget stops serving a mount target and deletes it (deleting,
// then gone). Deleting one already being deleted succeeds.
func (r *Region) DeleteMountTarget(ctx context.Context, id string) error {
	stop, err := func() (bool, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := r.checkLocked(); err != nil {
			return false, err
		}
		m, err := r.lookupMTLocked(id)
		if err != nil {
			return false, err
		}
		if m.State == StateDeleting {
			return false, nil
		}
		n := *m
		n.State, n.Since = StateDeleting, r.now()
		t := r.begin()
		t.putMT(&n)
		if err := t.commit(); err != nil {
			return false, err
		}
		// Its address stays taken until its server has stopped.
		r.stopping[id] = true
		r.log.Info("mount target deleting", "mount_target", id, "fs_id", m.FileSystemID)
		return true, nil
	}()
	if err != nil || !stop {
		return err
	}
	if r.o.MountTargets != nil {
		if err := r.o.MountTargets.Stop(ctx, id); err != nil {
			r.log.Error("mount target not stopped", "mount_target", id, "err", err)
		}
	}
	r.mu.Lock()
	delete(r.stopping, id)
	r.mu.Unlock()
	r.poke()
	return nil
}

// DescribeMountTargetSecurityGroups returns a mount target's security
// groups.
func (r *Region) DescribeMountTargetSecurityGroups(_ context.Context, id string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.lookupMTLocked(id)
	if err != nil {
		return nil, err
	}
	if m.State == StateDeleting {
		return nil, errorf(ErrIncorrectMountTargetState, "Mount target '%s' is being deleted.", id)
	}
	return slices.Clone(m.SecurityGroups), nil
}

// ModifyMountTargetSecurityGroups replaces the security groups of an
// available mount target; its server admits clients by the new groups at
// once.
func (r *Region) ModifyMountTargetSecurityGroups(ctx context.Context, id string, groups []string) error {
	if err := r.checkSpace(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkLocked(); err != nil {
		return err
	}
	m, err := r.lookupMTLocked(id)
	if err != nil {
		return err
	}
	if m.State != StateAvailable {
		return errorf(ErrIncorrectMountTargetState, "Mount target '%s' is in the '%s' state; it must be available to change its security groups.", id, m.State)
	}
	if len(groups) == 0 {
		return badRequest("SecurityGroups must name at least one security group.")
	}
	sgs, err := r.checkSecurityGroups(m.VPC, groups)
	if err != nil {
		return err
	}
	n := *m
	n.SecurityGroups = sgs
	t := r.begin()
	t.putMT(&n)
	if err := t.commit(); err != nil {
		return err
	}
	r.log.Info("mount target security groups", "mount_target", id, "security_groups", sgs)
	if r.o.MountTargets != nil {
		spec, err := r.specLocked(&n)
		if err == nil {
			err = r.o.MountTargets.Update(ctx, spec)
		}
		if err != nil {
			r.log.Error("mount target not updated", "mount_target", id, "err", err)
		}
	}
	return nil
}
