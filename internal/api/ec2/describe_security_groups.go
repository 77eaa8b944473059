package ec2

import (
	"encoding/xml"
	"net/http"
	"regexp"
)

var groupIDRe = regexp.MustCompile(`^sg-[0-9a-f]{8,40}$`)

type describeSecurityGroupsResponse struct {
	XMLName   xml.Name    `xml:"DescribeSecurityGroupsResponse"`
	Xmlns     string      `xml:"xmlns,attr"`
	RequestID string      `xml:"requestId"`
	Groups    []groupItem `xml:"securityGroupInfo>item"`
	NextToken string      `xml:"nextToken,omitempty"`
}

type groupItem struct {
	OwnerID        string         `xml:"ownerId"`
	GroupID        string         `xml:"groupId"`
	GroupName      string         `xml:"groupName"`
	Description    string         `xml:"groupDescription"`
	VpcID          string         `xml:"vpcId"`
	IPPermissions  []ipPermission `xml:"ipPermissions>item"`
	IPPermissionsE []ipPermission `xml:"ipPermissionsEgress>item"`
	Tags           []tag          `xml:"tagSet>item"`
	Arn            string         `xml:"securityGroupArn"`
}

type ipPermission struct {
	IPProtocol string      `xml:"ipProtocol"`
	FromPort   *int        `xml:"fromPort,omitempty"`
	ToPort     *int        `xml:"toPort,omitempty"`
	IPRanges   []ipRange   `xml:"ipRanges>item"`
	IPv6Ranges []ipv6Range `xml:"ipv6Ranges>item"`
}

type ipRange struct {
	CidrIP      string `xml:"cidrIp"`
	Description string `xml:"description,omitempty"`
}

type ipv6Range struct {
	CidrIPv6    string `xml:"cidrIpv6"`
	Description string `xml:"description,omitempty"`
}

func (h *Handler) describeSecurityGroups(p params) (any, error) {
	if err := p.checkKnown("GroupId", "GroupName", "Filter", "MaxResults", "NextToken"); err != nil {
		return nil, err
	}
	ids, err := p.list("GroupId")
	if err != nil {
		return nil, err
	}
	names, err := p.list("GroupName")
	if err != nil {
		return nil, err
	}
	filters, err := p.filters()
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if !groupIDRe.MatchString(id) {
			return nil, errorf(http.StatusBadRequest, "InvalidGroupId.Malformed", "Invalid id: \"%s\" (expecting \"sg-...\")", clip(id))
		}
		if h.groupBy(func(g SecurityGroup) bool { return g.ID == id }) == nil {
			return nil, errorf(http.StatusBadRequest, "InvalidGroup.NotFound", "The security group '%s' does not exist", id)
		}
	}
	for _, n := range names {
		if h.groupBy(func(g SecurityGroup) bool { return g.Name == n }) == nil {
			return nil, errorf(http.StatusBadRequest, "InvalidGroup.NotFound", "The security group '%s' does not exist in default VPC '%s'", clip(n), h.r.VPC.ID)
		}
	}
	var items []groupItem
	for _, g := range h.r.Groups {
		if len(ids) > 0 && !contains(ids, g.ID) || len(names) > 0 && !contains(names, g.Name) {
			continue
		}
		it := h.groupItem(g)
		ok, err := groupMatches(it, filters)
		if err != nil {
			return nil, err
		}
		if ok {
			items = append(items, it)
		}
	}
	lo, hi, next, err := p.page(len(items))
	if err != nil {
		return nil, err
	}
	return describeSecurityGroupsResponse{Xmlns: Namespace, RequestID: p.reqID, Groups: items[lo:hi], NextToken: next}, nil
}

func (h *Handler) groupBy(pred func(SecurityGroup) bool) *SecurityGroup {
	for i := range h.r.Groups {
		if pred(h.r.Groups[i]) {
			return &h.r.Groups[i]
		}
	}
	return nil
}

func (h *Handler) groupItem(g SecurityGroup) groupItem {
	port := g.NFSPort
	if port == 0 {
		port = 2049
	}
	in := ipPermission{IPProtocol: "tcp", FromPort: &port, ToPort: &port}
	for _, c := range g.Ingress {
		if c.Addr().Is4() {
			in.IPRanges = append(in.IPRanges, ipRange{CidrIP: c.String(), Description: "NFS"})
		} else {
			in.IPv6Ranges = append(in.IPv6Ranges, ipv6Range{CidrIPv6: c.String(), Description: "NFS"})
		}
	}
	it := groupItem{
		OwnerID:        h.r.AccountID,
		GroupID:        g.ID,
		GroupName:      g.Name,
		Description:    g.Description,
		VpcID:          h.r.VPC.ID,
		IPPermissionsE: []ipPermission{{IPProtocol: "-1", IPRanges: []ipRange{{CidrIP: "0.0.0.0/0"}}}},
		Tags:           nameTags(g.Name),
		Arn:            "arn:aws:ec2:" + h.r.Name + ":" + h.r.AccountID + ":security-group/" + g.ID,
	}
	if len(g.Ingress) > 0 {
		it.IPPermissions = []ipPermission{in}
	}
	return it
}

func groupMatches(g groupItem, filters []filter) (bool, error) {
	for _, f := range filters {
		var ok bool
		switch f.name {
		case "group-id":
			ok = anyMatch(f.values, g.GroupID)
		case "group-name":
			ok = anyMatch(f.values, g.GroupName)
		case "description":
			ok = anyMatch(f.values, g.Description)
		case "vpc-id":
			ok = anyMatch(f.values, g.VpcID)
		case "owner-id":
			ok = anyMatch(f.values, g.OwnerID)
		case "ip-permission.cidr":
			for _, p := range g.IPPermissions {
				for _, r := range p.IPRanges {
					ok = ok || anyMatch(f.values, r.CidrIP)
				}
			}
		case "ip-permission.ipv6-cidr":
			for _, p := range g.IPPermissions {
				for _, r := range p.IPv6Ranges {
					ok = ok || anyMatch(f.values, r.CidrIPv6)
				}
			}
		case "ip-permission.protocol":
			for _, p := range g.IPPermissions {
				ok = ok || anyMatch(f.values, p.IPProtocol)
			}
		default:
			m, isTag := tagFilter(f, g.Tags)
			if !isTag {
				return false, invalidFilter(f.name)
			}
			ok = m
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}
