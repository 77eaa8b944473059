package ec2

import (
	"encoding/xml"
	"regexp"
	"slices"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
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
	IPProtocol    string         `xml:"ipProtocol"`
	FromPort      *int           `xml:"fromPort,omitempty"`
	ToPort        *int           `xml:"toPort,omitempty"`
	Groups        []groupPair    `xml:"groups>item"`
	IPRanges      []ipRange      `xml:"ipRanges>item"`
	IPv6Ranges    []ipv6Range    `xml:"ipv6Ranges>item"`
	PrefixListIDs []prefixListID `xml:"prefixListIds>item"`
}

type groupPair struct {
	GroupID     string `xml:"groupId"`
	UserID      string `xml:"userId"`
	Description string `xml:"description,omitempty"`
}

type prefixListID struct {
	ID          string `xml:"prefixListId"`
	Description string `xml:"description,omitempty"`
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
	all := h.allGroupItems()
	for _, id := range ids {
		if !groupIDRe.MatchString(id) {
			return nil, errorf(awserr.ErrEC2MalformedGroupID, "Invalid id: \"%s\" (expecting \"sg-...\")", awsproto.Clip(id))
		}
		if !slices.ContainsFunc(all, func(g groupItem) bool { return g.GroupID == id }) {
			return nil, errorf(awserr.ErrEC2SecurityGroupAbsent, "The security group '%s' does not exist", id)
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(all, func(g groupItem) bool { return g.GroupName == n }) {
			return nil, errorf(awserr.ErrEC2SecurityGroupAbsent, "The security group '%s' does not exist in default VPC '%s'", awsproto.Clip(n), h.r.VPC.ID)
		}
	}
	all = slices.DeleteFunc(all, func(it groupItem) bool {
		return len(ids) > 0 && !slices.Contains(ids, it.GroupID) || len(names) > 0 && !slices.Contains(names, it.GroupName)
	})
	items, err := filtered(all, filters, groupMatches)
	if err != nil {
		return nil, err
	}
	lo, hi, next, err := p.page(len(items))
	if err != nil {
		return nil, err
	}
	return describeSecurityGroupsResponse{Xmlns: Namespace, RequestID: p.reqID, Groups: items[lo:hi], NextToken: next}, nil
}

// allGroupItems describes every group: the network's when it is set, else
// the configured ones.
func (h *Handler) allGroupItems() []groupItem {
	var out []groupItem
	if h.net == nil {
		for _, g := range h.r.Groups {
			out = append(out, h.groupItem(g))
		}
		return out
	}
	for _, g := range h.net.Groups() {
		it := groupItem{OwnerID: h.r.AccountID, GroupID: g.ID, GroupName: g.Name, Description: g.Description, VpcID: g.VPCID,
			Arn: h.groupArn(g.ID), IPPermissions: []ipPermission{}, IPPermissionsE: []ipPermission{}}
		for _, t := range g.Tags {
			it.Tags = append(it.Tags, tag{t.Key, t.Value})
		}
		type key struct {
			egress   bool
			proto    string
			from, to int
		}
		idx := map[key]int{}
		for _, r := range g.Rules {
			k := key{r.Egress, r.Protocol, r.FromPort, r.ToPort}
			list := &it.IPPermissions
			if r.Egress {
				list = &it.IPPermissionsE
			}
			i, ok := idx[k]
			if !ok {
				p := ipPermission{IPProtocol: r.Protocol}
				if r.Protocol != "-1" {
					from, to := r.FromPort, r.ToPort
					p.FromPort, p.ToPort = &from, &to
				}
				*list = append(*list, p)
				i = len(*list) - 1
				idx[k] = i
			}
			p := &(*list)[i]
			switch {
			case r.CIDRv4 != "":
				p.IPRanges = append(p.IPRanges, ipRange{CidrIP: r.CIDRv4, Description: r.Description})
			case r.CIDRv6 != "":
				p.IPv6Ranges = append(p.IPv6Ranges, ipv6Range{CidrIPv6: r.CIDRv6, Description: r.Description})
			case r.PrefixListID != "":
				p.PrefixListIDs = append(p.PrefixListIDs, prefixListID{ID: r.PrefixListID, Description: r.Description})
			case r.RefGroupID != "":
				p.Groups = append(p.Groups, groupPair{GroupID: r.RefGroupID, UserID: h.r.AccountID, Description: r.Description})
			}
		}
		out = append(out, it)
	}
	return out
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
	return matchFilters(filters, g.Tags, func(f filter) (ok, known bool) {
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
			return false, false
		}
		return ok, true
	})
}
