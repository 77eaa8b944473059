package ec2

import "net/netip"

// Region is what the EC2 subset describes: one VPC, its subnets and its
// security groups.
type Region struct {
	Name      string
	AccountID string
	VPC       VPC
	Subnets   []Subnet
	Groups    []SecurityGroup
	// UsedAddresses, when set, returns how many addresses of a subnet are
	// taken by mount targets (for availableIpAddressCount).
	UsedAddresses func(subnetID string) int
	// Endpoint is this region's API address (DescribeRegions); Peers are
	// the regions it replicates with.
	Endpoint string
	Peers    []RegionInfo
}

// RegionInfo is another region as DescribeRegions lists it.
type RegionInfo struct {
	Name     string
	Endpoint string // its API address, when known
}

// VPC is the region's VPC.
type VPC struct {
	ID   string
	CIDR netip.Prefix
}

// Subnet is one subnet.
type Subnet struct {
	ID                 string
	AvailabilityZone   string
	AvailabilityZoneID string
	CIDR               netip.Prefix
	Name               string // the Name tag; none when empty
}

// SecurityGroup is one security group; Ingress are the CIDR blocks allowed
// to the NFS port.
type SecurityGroup struct {
	ID          string
	Name        string
	Description string
	Ingress     []netip.Prefix
	NFSPort     int
}

// Zone is an availability zone, derived from the subnets.
type Zone struct {
	Name, ID string
}

// Zones returns the region's availability zones in name order.
func (r *Region) Zones() []Zone {
	seen := map[string]bool{}
	var zs []Zone
	for _, s := range r.Subnets {
		if !seen[s.AvailabilityZone] {
			seen[s.AvailabilityZone] = true
			zs = append(zs, Zone{Name: s.AvailabilityZone, ID: s.AvailabilityZoneID})
		}
	}
	for i := 1; i < len(zs); i++ {
		for j := i; j > 0 && zs[j].Name < zs[j-1].Name; j-- {
			zs[j], zs[j-1] = zs[j-1], zs[j]
		}
	}
	return zs
}
