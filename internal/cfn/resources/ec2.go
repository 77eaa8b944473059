package resources

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/regionfs/regionfs/internal/cfn"
	"github.com/regionfs/regionfs/internal/control/network"
)

// Network is the region's security-group domain and what uses its groups.
type Network struct {
	*network.Network
	InUse network.InUse
}

// netErr is the handler error of a security-group call.
func netErr(err error) error { return handlerError(err) }

func networkTypes(o Options) []*cfn.ResourceType {
	if o.Network.Network == nil {
		return nil
	}
	port := &cfn.Prop{Kind: cfn.Integer}
	ingress := obj(map[string]*cfn.Prop{
		"CidrIp": p(cfn.String), "CidrIpv6": p(cfn.String), "Description": p(cfn.String), "FromPort": port,
		"IpProtocol": req(p(cfn.String)), "SourcePrefixListId": p(cfn.String), "SourceSecurityGroupId": p(cfn.String),
		"SourceSecurityGroupName": p(cfn.String), "SourceSecurityGroupOwnerId": p(cfn.String), "ToPort": port,
	})
	egress := obj(map[string]*cfn.Prop{
		"CidrIp": p(cfn.String), "CidrIpv6": p(cfn.String), "Description": p(cfn.String), "FromPort": port,
		"IpProtocol": req(p(cfn.String)), "DestinationPrefixListId": p(cfn.String), "DestinationSecurityGroupId": p(cfn.String), "ToPort": port,
	})
	return []*cfn.ResourceType{
		{
			Name:       "AWS::EC2::SecurityGroup",
			Attributes: []string{"GroupId", "VpcId"},
			Properties: map[string]*cfn.Prop{
				"GroupDescription":     req(replace(pattern(`^([a-z,A-Z,0-9,. _\-:/()#,@\[\]+=&;\{\}!$*])*$`, 0, 255))),
				"GroupName":            replace(p(cfn.String)),
				"SecurityGroupEgress":  listOf(egress),
				"SecurityGroupIngress": listOf(ingress),
				"Tags":                 tagList(),
				"VpcId":                replace(p(cfn.String)),
			},
			Provider: &securityGroups{o},
		},
		{
			Name:       "AWS::EC2::SecurityGroupIngress",
			Attributes: []string{"Id"},
			Properties: map[string]*cfn.Prop{
				"CidrIp": replace(p(cfn.String)), "CidrIpv6": replace(p(cfn.String)), "Description": p(cfn.String),
				"FromPort": replace(p(cfn.Integer)), "GroupId": replace(p(cfn.String)), "GroupName": replace(p(cfn.String)),
				"IpProtocol": req(replace(p(cfn.String))), "SourcePrefixListId": replace(p(cfn.String)),
				"SourceSecurityGroupId": replace(p(cfn.String)), "SourceSecurityGroupName": replace(p(cfn.String)),
				"SourceSecurityGroupOwnerId": replace(p(cfn.String)), "ToPort": replace(p(cfn.Integer)),
			},
			Provider: &ingressRules{o},
		},
	}
}

// ruleOf reads a rule from template properties (an Ingress/Egress item or
// an AWS::EC2::SecurityGroupIngress).
func (o Options) ruleOf(m map[string]any, egress bool) (network.Rule, error) {
	r := network.Rule{Protocol: str(m, "IpProtocol"), FromPort: -1, ToPort: -1, CIDRv4: str(m, "CidrIp"), CIDRv6: str(m, "CidrIpv6"),
		Description: str(m, "Description"), Egress: egress}
	if v, ok := number(m, "FromPort"); ok {
		r.FromPort = int(v)
	}
	if v, ok := number(m, "ToPort"); ok {
		r.ToPort = int(v)
	}
	if egress {
		r.PrefixListID, r.RefGroupID = str(m, "DestinationPrefixListId"), str(m, "DestinationSecurityGroupId")
	} else {
		r.PrefixListID, r.RefGroupID, r.RefGroupOwner = str(m, "SourcePrefixListId"), str(m, "SourceSecurityGroupId"), str(m, "SourceSecurityGroupOwnerId")
		if name := str(m, "SourceSecurityGroupName"); name != "" && r.RefGroupID == "" {
			id, ok := o.Network.LookupByName(name)
			if !ok {
				return r, &cfn.HandlerError{Code: "NotFound", Message: fmt.Sprintf("The security group '%s' does not exist", name)}
			}
			r.RefGroupID = id
		}
	}
	return r, nil
}

type securityGroups struct{ o Options }

func (s *securityGroups) rules(pr map[string]any) ([]network.Rule, []network.Rule, error) {
	var in, out []network.Rule
	for _, v := range list(pr, "SecurityGroupIngress") {
		m, _ := v.(map[string]any)
		r, err := s.o.ruleOf(m, false)
		if err != nil {
			return nil, nil, err
		}
		in = append(in, r)
	}
	for _, v := range list(pr, "SecurityGroupEgress") {
		m, _ := v.(map[string]any)
		r, err := s.o.ruleOf(m, true)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, r)
	}
	return in, out, nil
}

func (s *securityGroups) Create(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	pr := r.Props
	name := str(pr, "GroupName")
	if name == "" {
		name = generatedName(r, 255)
	}
	var tags []network.Tag
	for _, t := range tagsOf(pr, "Tags") {
		tags = append(tags, network.Tag{Key: t[0], Value: t[1]})
	}
	g, err := s.o.Network.CreateGroup(name, str(pr, "GroupDescription"), str(pr, "VpcId"), tags, r.Token)
	if err != nil {
		return cfn.Outcome{}, netErr(err)
	}
	if r.Started != nil {
		r.Started(g.ID)
	}
	in, out, err := s.rules(pr)
	if err != nil {
		return cfn.Outcome{}, err
	}
	if err := s.sync(g.ID, g.Rules, in, out, has(pr, "SecurityGroupEgress")); err != nil {
		return cfn.Outcome{}, err
	}
	return cfn.Outcome{PhysicalID: g.ID, Attributes: map[string]string{"GroupId": g.ID, "VpcId": g.VPCID}}, nil
}

// sync makes a group's rules the wanted ones (egress only when given: the
// default allow-all egress rule stays otherwise).
func (s *securityGroups) sync(id string, cur, in, out []network.Rule, egressGiven bool) error {
	want := append([]network.Rule{}, in...)
	if egressGiven {
		want = append(want, out...)
	}
	var addIn, addOut, drop []network.Rule
	match := func(a, b network.Rule) bool {
		return a.Egress == b.Egress && strings.EqualFold(a.Protocol, b.Protocol) && a.CIDRv4 == b.CIDRv4 && a.CIDRv6 == b.CIDRv6 &&
			a.RefGroupID == b.RefGroupID && a.PrefixListID == b.PrefixListID && (a.Protocol == "-1" || (a.FromPort == b.FromPort && a.ToPort == b.ToPort))
	}
	for _, w := range want {
		found := false
		for _, c := range cur {
			found = found || match(c, w)
		}
		if !found {
			if w.Egress {
				addOut = append(addOut, w)
			} else {
				addIn = append(addIn, w)
			}
		}
	}
	for _, c := range cur {
		if c.Egress && !egressGiven {
			continue
		}
		found := false
		for _, w := range want {
			found = found || match(c, w)
		}
		if !found {
			drop = append(drop, c)
		}
	}
	var dropIn, dropOut []string
	for _, d := range drop {
		if d.Egress {
			dropOut = append(dropOut, d.ID)
		} else {
			dropIn = append(dropIn, d.ID)
		}
	}
	if len(dropIn) > 0 {
		if err := s.o.Network.Revoke(id, false, nil, dropIn); err != nil {
			return netErr(err)
		}
	}
	if len(dropOut) > 0 {
		if err := s.o.Network.Revoke(id, true, nil, dropOut); err != nil {
			return netErr(err)
		}
	}
	if len(addIn) > 0 {
		if _, err := s.o.Network.Authorize(id, false, addIn); err != nil {
			return netErr(err)
		}
	}
	if len(addOut) > 0 {
		if _, err := s.o.Network.Authorize(id, true, addOut); err != nil {
			return netErr(err)
		}
	}
	return nil
}

func (s *securityGroups) Update(_ context.Context, r *cfn.Request) (cfn.Outcome, error) {
	g, ok := s.o.Network.Group(r.PhysicalID)
	if !ok {
		return cfn.Outcome{}, &cfn.HandlerError{Code: "NotFound", Message: fmt.Sprintf("The security group '%s' does not exist", r.PhysicalID)}
	}
	in, out, err := s.rules(r.Props)
	if err != nil {
		return cfn.Outcome{}, err
	}
	if err := s.sync(g.ID, g.Rules, in, out, has(r.Props, "SecurityGroupEgress") || has(r.OldProps, "SecurityGroupEgress")); err != nil {
		return cfn.Outcome{}, err
	}
	set, remove := tagDiff(tagsOf(r.OldProps, "Tags"), tagsOf(r.Props, "Tags"))
	var ts, rm []network.Tag
	for _, t := range set {
		ts = append(ts, network.Tag{Key: t[0], Value: t[1]})
	}
	for _, k := range remove {
		rm = append(rm, network.Tag{Key: k})
	}
	if len(ts)+len(rm) > 0 {
		if err := s.o.Network.Tag([]string{g.ID}, ts, rm); err != nil {
			return cfn.Outcome{}, netErr(err)
		}
	}
	return cfn.Outcome{PhysicalID: g.ID, Attributes: map[string]string{"GroupId": g.ID, "VpcId": g.VPCID}}, nil
}

func (s *securityGroups) Delete(_ context.Context, r *cfn.Request) error {
	err := s.o.Network.DeleteGroup(r.PhysicalID, s.o.Network.InUse)
	if err == nil || errors.Is(err, network.ErrGroupNotFound) {
		return nil
	}
	return netErr(err)
}

type ingressRules struct{ o Options }

func (i *ingressRules) group(pr map[string]any) (string, error) {
	if id := str(pr, "GroupId"); id != "" {
		return id, nil
	}
	if name := str(pr, "GroupName"); name != "" {
		if id, ok := i.o.Network.LookupByName(name); ok {
			return id, nil
		}
		return "", &cfn.HandlerError{Code: "NotFound", Message: fmt.Sprintf("The security group '%s' does not exist", name)}
	}
	return "", &cfn.HandlerError{Code: "InvalidRequest", Message: "Either GroupId or GroupName is required."}
}

func (i *ingressRules) Create(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	gid, err := i.group(r.Props)
	if err != nil {
		return cfn.Outcome{}, err
	}
	rule, err := i.o.ruleOf(r.Props, false)
	if err != nil {
		return cfn.Outcome{}, err
	}
	added, err := i.o.Network.Authorize(gid, false, []network.Rule{rule})
	if errors.Is(err, network.ErrPermissionDup) {
		// Made before a restart: the same rule in the group is ours.
		if g, ok := i.o.Network.Group(gid); ok {
			for _, c := range g.Rules {
				if !c.Egress && c.CIDRv4 == rule.CIDRv4 && c.CIDRv6 == rule.CIDRv6 && c.RefGroupID == rule.RefGroupID && c.FromPort == rule.FromPort && c.ToPort == rule.ToPort {
					return cfn.Outcome{PhysicalID: c.ID, Attributes: map[string]string{"Id": c.ID}}, nil
				}
			}
		}
	}
	if err != nil {
		return cfn.Outcome{}, netErr(err)
	}
	return cfn.Outcome{PhysicalID: added[0].ID, Attributes: map[string]string{"Id": added[0].ID}}, nil
}

func (i *ingressRules) Update(_ context.Context, r *cfn.Request) (cfn.Outcome, error) {
	gid, err := i.group(r.Props)
	if err != nil {
		return cfn.Outcome{}, err
	}
	if err := i.o.Network.SetRuleDescription(gid, r.PhysicalID, str(r.Props, "Description")); err != nil {
		return cfn.Outcome{}, netErr(err)
	}
	return cfn.Outcome{PhysicalID: r.PhysicalID, Attributes: map[string]string{"Id": r.PhysicalID}}, nil
}

func (i *ingressRules) Delete(_ context.Context, r *cfn.Request) error {
	gid, err := i.group(r.Props)
	if err != nil {
		var he *cfn.HandlerError
		if errors.As(err, &he) && he.Code == "NotFound" {
			return nil
		}
		return err
	}
	err = i.o.Network.Revoke(gid, false, nil, []string{r.PhysicalID})
	if err == nil || errors.Is(err, network.ErrRuleNotFound) || errors.Is(err, network.ErrGroupNotFound) {
		return nil
	}
	return netErr(err)
}
