package ec2

import (
	"encoding/xml"
	"regexp"
	"slices"
	"strconv"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
)

var subnetIDRe = regexp.MustCompile(`^subnet-[0-9a-f]{8,40}$`)

type describeSubnetsResponse struct {
	XMLName   xml.Name     `xml:"DescribeSubnetsResponse"`
	Xmlns     string       `xml:"xmlns,attr"`
	RequestID string       `xml:"requestId"`
	Subnets   []subnetItem `xml:"subnetSet>item"`
	NextToken string       `xml:"nextToken,omitempty"`
}

type subnetItem struct {
	SubnetID                string `xml:"subnetId"`
	SubnetArn               string `xml:"subnetArn"`
	State                   string `xml:"state"`
	OwnerID                 string `xml:"ownerId"`
	VpcID                   string `xml:"vpcId"`
	CidrBlock               string `xml:"cidrBlock"`
	AvailableIPAddressCount int    `xml:"availableIpAddressCount"`
	AvailabilityZone        string `xml:"availabilityZone"`
	AvailabilityZoneID      string `xml:"availabilityZoneId"`
	DefaultForAz            bool   `xml:"defaultForAz"`
	MapPublicIPOnLaunch     bool   `xml:"mapPublicIpOnLaunch"`
	AssignIpv6OnCreation    bool   `xml:"assignIpv6AddressOnCreation"`
	Tags                    []tag  `xml:"tagSet>item"`
}

func (h *Handler) describeSubnets(p params) (any, error) {
	if err := p.checkKnown("SubnetId", "Filter", "MaxResults", "NextToken"); err != nil {
		return nil, err
	}
	ids, err := p.list("SubnetId")
	if err != nil {
		return nil, err
	}
	filters, err := p.filters()
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if !subnetIDRe.MatchString(id) {
			return nil, errorf(awserr.ErrEC2MalformedSubnetID, "Invalid id: \"%s\"", awsproto.Clip(id))
		}
		if h.subnet(id) == nil {
			return nil, errorf(awserr.ErrEC2SubnetNotFound, "The subnet ID '%s' does not exist", id)
		}
	}
	var all []subnetItem
	for _, s := range h.r.Subnets {
		if len(ids) == 0 || slices.Contains(ids, s.ID) {
			all = append(all, h.subnetItem(s))
		}
	}
	items, err := filtered(all, filters, subnetMatches)
	if err != nil {
		return nil, err
	}
	lo, hi, next, err := p.page(len(items))
	if err != nil {
		return nil, err
	}
	return describeSubnetsResponse{Xmlns: Namespace, RequestID: p.reqID, Subnets: items[lo:hi], NextToken: next}, nil
}

func (h *Handler) subnet(id string) *Subnet {
	for i := range h.r.Subnets {
		if h.r.Subnets[i].ID == id {
			return &h.r.Subnets[i]
		}
	}
	return nil
}

func (h *Handler) subnetItem(s Subnet) subnetItem {
	// AWS reserves the first four and the last address of every subnet.
	free := 1<<(32-s.CIDR.Bits()) - 5
	if h.r.UsedAddresses != nil {
		free -= h.r.UsedAddresses(s.ID)
	}
	return subnetItem{
		SubnetID:                s.ID,
		SubnetArn:               "arn:aws:ec2:" + h.r.Name + ":" + h.r.AccountID + ":subnet/" + s.ID,
		State:                   "available",
		OwnerID:                 h.r.AccountID,
		VpcID:                   h.r.VPC.ID,
		CidrBlock:               s.CIDR.String(),
		AvailableIPAddressCount: max(free, 0),
		AvailabilityZone:        s.AvailabilityZone,
		AvailabilityZoneID:      s.AvailabilityZoneID,
		Tags:                    nameTags(s.Name),
	}
}

func subnetMatches(s subnetItem, filters []filter) (bool, error) {
	return matchFilters(filters, s.Tags, func(f filter) (ok, known bool) {
		switch f.name {
		case "subnet-id":
			ok = anyMatch(f.values, s.SubnetID)
		case "subnet-arn":
			ok = anyMatch(f.values, s.SubnetArn)
		case "availability-zone", "availabilityZone":
			ok = anyMatch(f.values, s.AvailabilityZone)
		case "availability-zone-id", "availabilityZoneId":
			ok = anyMatch(f.values, s.AvailabilityZoneID)
		case "vpc-id":
			ok = anyMatch(f.values, s.VpcID)
		case "cidr-block", "cidr", "cidrBlock":
			ok = anyMatch(f.values, s.CidrBlock)
		case "state":
			ok = anyMatch(f.values, s.State)
		case "owner-id":
			ok = anyMatch(f.values, s.OwnerID)
		case "default-for-az", "defaultForAz":
			ok = anyMatch(f.values, boolString(s.DefaultForAz))
		case "available-ip-address-count":
			ok = anyMatch(f.values, strconv.Itoa(s.AvailableIPAddressCount))
		case "map-public-ip-on-launch":
			ok = anyMatch(f.values, boolString(s.MapPublicIPOnLaunch))
		default:
			return false, false
		}
		return ok, true
	})
}
