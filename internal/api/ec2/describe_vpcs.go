package ec2

import (
	"encoding/xml"
	"regexp"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
)

var vpcIDRe = regexp.MustCompile(`^vpc-[0-9a-f]{8,40}$`)

type describeVpcsResponse struct {
	XMLName   xml.Name  `xml:"DescribeVpcsResponse"`
	Xmlns     string    `xml:"xmlns,attr"`
	RequestID string    `xml:"requestId"`
	Vpcs      []vpcItem `xml:"vpcSet>item"`
	NextToken string    `xml:"nextToken,omitempty"`
}

type vpcItem struct {
	VpcID           string           `xml:"vpcId"`
	OwnerID         string           `xml:"ownerId"`
	State           string           `xml:"state"`
	CidrBlock       string           `xml:"cidrBlock"`
	Associations    []cidrAssocation `xml:"cidrBlockAssociationSet>item"`
	DhcpOptionsID   string           `xml:"dhcpOptionsId"`
	InstanceTenancy string           `xml:"instanceTenancy"`
	IsDefault       bool             `xml:"isDefault"`
	Tags            []tag            `xml:"tagSet>item"`
}

type cidrAssocation struct {
	AssociationID string `xml:"associationId"`
	CidrBlock     string `xml:"cidrBlock"`
	State         string `xml:"cidrBlockState>state"`
}

func (h *Handler) describeVpcs(p params) (any, error) {
	if err := p.checkKnown("VpcId", "Filter", "MaxResults", "NextToken"); err != nil {
		return nil, err
	}
	ids, err := p.list("VpcId")
	if err != nil {
		return nil, err
	}
	filters, err := p.filters()
	if err != nil {
		return nil, err
	}
	v := h.r.VPC
	for _, id := range ids {
		if !vpcIDRe.MatchString(id) {
			return nil, errorf(awserr.ErrEC2MalformedVPCID, "Invalid id: \"%s\"", awsproto.Clip(id))
		}
		if id != v.ID {
			return nil, errorf(awserr.ErrEC2VPCNotFound, "The vpc ID '%s' does not exist", id)
		}
	}
	it := vpcItem{
		VpcID: v.ID, OwnerID: h.r.AccountID, State: "available", CidrBlock: v.CIDR.String(),
		Associations:  []cidrAssocation{{AssociationID: "vpc-cidr-assoc-" + v.ID[len("vpc-"):], CidrBlock: v.CIDR.String(), State: "associated"}},
		DhcpOptionsID: "default", InstanceTenancy: "default", IsDefault: true,
	}
	ok, err := vpcMatches(it, filters)
	if err != nil {
		return nil, err
	}
	var items []vpcItem
	if ok {
		items = append(items, it)
	}
	lo, hi, next, err := p.page(len(items))
	if err != nil {
		return nil, err
	}
	return describeVpcsResponse{Xmlns: Namespace, RequestID: p.reqID, Vpcs: items[lo:hi], NextToken: next}, nil
}

func vpcMatches(v vpcItem, filters []filter) (bool, error) {
	return matchFilters(filters, v.Tags, func(f filter) (ok, known bool) {
		switch f.name {
		case "vpc-id":
			ok = anyMatch(f.values, v.VpcID)
		case "cidr", "cidr-block-association.cidr-block":
			ok = anyMatch(f.values, v.CidrBlock)
		case "state":
			ok = anyMatch(f.values, v.State)
		case "owner-id":
			ok = anyMatch(f.values, v.OwnerID)
		case "is-default", "isDefault":
			ok = anyMatch(f.values, boolString(v.IsDefault))
		case "dhcp-options-id":
			ok = anyMatch(f.values, v.DhcpOptionsID)
		default:
			return false, false
		}
		return ok, true
	})
}
