package ec2

import (
	"sort"
	"strconv"
	"strings"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/control/network"
)

// nested groups the parameters under prefix by their index:
// prefix.N.rest → [N] rest → value, in index order.
func (p params) nested(prefix string) ([]map[string]string, error) {
	by := map[int]map[string]string{}
	for k, vs := range p.v {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		idx, field, _ := strings.Cut(rest, ".")
		i, err := strconv.Atoi(idx)
		if err != nil || i < 1 || i > 1000 {
			return nil, invalidParameter("The parameter %s has an invalid index", awsproto.Clip(k))
		}
		m := by[i]
		if m == nil {
			m = map[string]string{}
			by[i] = m
		}
		m[field] = vs[0]
	}
	return byIndex(by), nil
}

// sub groups the fields of one nested item under name.N.
func sub(m map[string]string, name string) []map[string]string {
	by := map[int]map[string]string{}
	for k, v := range m {
		rest, ok := strings.CutPrefix(k, name+".")
		if !ok {
			continue
		}
		idx, field, _ := strings.Cut(rest, ".")
		i, err := strconv.Atoi(idx)
		if err != nil {
			continue
		}
		if by[i] == nil {
			by[i] = map[string]string{}
		}
		by[i][field] = v
	}
	return byIndex(by)
}

// byIndex lists the items of by in the order of their indexes.
func byIndex(by map[int]map[string]string) []map[string]string {
	idx := make([]int, 0, len(by))
	for i := range by {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out := make([]map[string]string, len(idx))
	for j, i := range idx {
		out[j] = by[i]
	}
	return out
}

func port(s, name string) (int, error) {
	if s == "" {
		return -1, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < -1 || v > 65535 {
		return 0, invalidParameter("Invalid value '%s' for %s", awsproto.Clip(s), name)
	}
	return v, nil
}

// permissions reads IpPermissions.N (or the legacy top-level CidrIp form)
// as rules.
func (h *Handler) permissions(p params) ([]network.Rule, error) {
	perms, err := p.nested("IpPermissions")
	if err != nil {
		return nil, err
	}
	var rules []network.Rule
	for _, m := range perms {
		from, err := port(m["FromPort"], "fromPort")
		if err != nil {
			return nil, err
		}
		to, err := port(m["ToPort"], "toPort")
		if err != nil {
			return nil, err
		}
		base := network.Rule{Protocol: m["IpProtocol"], FromPort: from, ToPort: to}
		if base.Protocol == "" {
			return nil, errorf(awserr.ErrEC2MissingParameter, "The request must contain the parameter ipProtocol")
		}
		n := 0
		for _, r := range sub(m, "IpRanges") {
			x := base
			x.CIDRv4, x.Description = r["CidrIp"], r["Description"]
			rules, n = append(rules, x), n+1
		}
		for _, r := range sub(m, "Ipv6Ranges") {
			x := base
			x.CIDRv6, x.Description = r["CidrIpv6"], r["Description"]
			rules, n = append(rules, x), n+1
		}
		for _, r := range sub(m, "PrefixListIds") {
			x := base
			x.PrefixListID, x.Description = r["PrefixListId"], r["Description"]
			rules, n = append(rules, x), n+1
		}
		for _, r := range sub(m, "Groups") {
			x := base
			x.RefGroupID, x.RefGroupOwner, x.Description = r["GroupId"], r["UserId"], r["Description"]
			if x.RefGroupID == "" && r["GroupName"] != "" {
				id, ok := h.net.LookupByName(r["GroupName"])
				if !ok {
					return nil, errorf(awserr.ErrEC2SecurityGroupAbsent, "The security group '%s' does not exist", awsproto.Clip(r["GroupName"]))
				}
				x.RefGroupID = id
			}
			rules, n = append(rules, x), n+1
		}
		if n == 0 {
			return nil, errorf(network.ErrMalformed, "A permission needs at least one IP range, prefix list or group")
		}
	}
	if c := p.get("CidrIp"); c != "" || p.get("SourceSecurityGroupName") != "" {
		from, err := port(p.get("FromPort"), "fromPort")
		if err != nil {
			return nil, err
		}
		to, err := port(p.get("ToPort"), "toPort")
		if err != nil {
			return nil, err
		}
		r := network.Rule{Protocol: p.get("IpProtocol"), FromPort: from, ToPort: to, CIDRv4: c}
		if r.Protocol == "" {
			r.Protocol = "-1"
		}
		if name := p.get("SourceSecurityGroupName"); name != "" {
			id, ok := h.net.LookupByName(name)
			if !ok {
				return nil, errorf(awserr.ErrEC2SecurityGroupAbsent, "The security group '%s' does not exist", awsproto.Clip(name))
			}
			r.RefGroupID = id
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// tagSpecs reads TagSpecification.N for a resource type.
func tagSpecs(p params, resourceType string) ([]network.Tag, error) {
	specs, err := p.nested("TagSpecification")
	if err != nil {
		return nil, err
	}
	var tags []network.Tag
	for _, s := range specs {
		if s["ResourceType"] != resourceType {
			return nil, invalidParameter("'%s' is not a valid taggable resource type for this operation.", awsproto.Clip(s["ResourceType"]))
		}
		for _, t := range sub(s, "Tag") {
			tags = append(tags, network.Tag{Key: t["Key"], Value: t["Value"]})
		}
	}
	return tags, nil
}

func (h *Handler) needNetwork() error {
	if h.net == nil {
		return errorf(awserr.ErrEC2UnsupportedOperation, "Security groups of this region are read-only (configured).")
	}
	return nil
}

// groupID resolves GroupId or GroupName.
func (h *Handler) groupID(p params) (string, error) {
	id := p.get("GroupId")
	if id == "" && p.get("GroupName") != "" {
		var ok bool
		if id, ok = h.net.LookupByName(p.get("GroupName")); !ok {
			return "", errorf(awserr.ErrEC2SecurityGroupAbsent, "The security group '%s' does not exist in default VPC '%s'", awsproto.Clip(p.get("GroupName")), h.r.VPC.ID)
		}
	}
	if id == "" {
		return "", errorf(awserr.ErrEC2MissingParameter, "The request must contain the parameter groupId or groupName")
	}
	if !groupIDRe.MatchString(id) {
		return "", errorf(awserr.ErrEC2MalformedGroupID, "Invalid id: \"%s\" (expecting \"sg-...\")", awsproto.Clip(id))
	}
	return id, nil
}
