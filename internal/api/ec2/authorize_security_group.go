package ec2

import (
	"encoding/xml"
	"strconv"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/control/network"
)

type ruleItem struct {
	RuleID      string `xml:"securityGroupRuleId"`
	GroupID     string `xml:"groupId"`
	GroupOwner  string `xml:"groupOwnerId"`
	IsEgress    bool   `xml:"isEgress"`
	IPProtocol  string `xml:"ipProtocol"`
	FromPort    int    `xml:"fromPort"`
	ToPort      int    `xml:"toPort"`
	CidrIPv4    string `xml:"cidrIpv4,omitempty"`
	CidrIPv6    string `xml:"cidrIpv6,omitempty"`
	PrefixList  string `xml:"prefixListId,omitempty"`
	Referenced  *refGroup
	Description string `xml:"description,omitempty"`
	Tags        []tag  `xml:"tagSet>item"`
	Arn         string `xml:"securityGroupRuleArn"`
}

type refGroup struct {
	XMLName xml.Name `xml:"referencedGroupInfo"`
	GroupID string   `xml:"groupId"`
	UserID  string   `xml:"userId,omitempty"`
}

func (h *Handler) ruleItem(groupID string, r network.Rule) ruleItem {
	it := ruleItem{RuleID: r.ID, GroupID: groupID, GroupOwner: h.r.AccountID, IsEgress: r.Egress, IPProtocol: r.Protocol,
		FromPort: r.FromPort, ToPort: r.ToPort, CidrIPv4: r.CIDRv4, CidrIPv6: r.CIDRv6, PrefixList: r.PrefixListID,
		Description: r.Description, Arn: "arn:aws:ec2:" + h.r.Name + ":" + h.r.AccountID + ":security-group-rule/" + r.ID}
	if r.RefGroupID != "" {
		owner := r.RefGroupOwner
		if owner == "" {
			owner = h.r.AccountID
		}
		it.Referenced = &refGroup{GroupID: r.RefGroupID, UserID: owner}
	}
	for _, t := range r.Tags {
		it.Tags = append(it.Tags, tag{t.Key, t.Value})
	}
	return it
}

type authorizeResponse struct {
	XMLName   xml.Name
	Xmlns     string     `xml:"xmlns,attr"`
	RequestID string     `xml:"requestId"`
	Return    bool       `xml:"return"`
	Rules     []ruleItem `xml:"securityGroupRuleSet>item"`
}

func (h *Handler) authorizeIngress(p params) (any, error) { return h.authorize(p, false) }
func (h *Handler) authorizeEgress(p params) (any, error)  { return h.authorize(p, true) }

func (h *Handler) authorize(p params, egress bool) (any, error) {
	id, rules, err := h.groupPermissions(p, "TagSpecification")
	if err != nil {
		return nil, err
	}
	tags, err := tagSpecs(p, "security-group-rule")
	if err != nil {
		return nil, err
	}
	for i := range rules {
		rules[i].Tags = tags
	}
	if p.get("DryRun") == "true" {
		return nil, errorf(awserr.ErrEC2DryRun, "Request would have succeeded, but DryRun flag is set.")
	}
	added, err := h.net.Authorize(id, egress, rules)
	if err != nil {
		return nil, err
	}
	name := "AuthorizeSecurityGroupIngressResponse"
	if egress {
		name = "AuthorizeSecurityGroupEgressResponse"
	}
	r := authorizeResponse{XMLName: xml.Name{Local: name}, Xmlns: Namespace, RequestID: p.reqID, Return: true}
	for _, a := range added {
		r.Rules = append(r.Rules, h.ruleItem(id, a))
	}
	return r, nil
}

func (h *Handler) revokeIngress(p params) (any, error) { return h.revoke(p, false) }
func (h *Handler) revokeEgress(p params) (any, error)  { return h.revoke(p, true) }

func (h *Handler) revoke(p params, egress bool) (any, error) {
	id, rules, err := h.groupPermissions(p, "SecurityGroupRuleId")
	if err != nil {
		return nil, err
	}
	ids, err := p.list("SecurityGroupRuleId")
	if err != nil {
		return nil, err
	}
	if len(rules) == 0 && len(ids) == 0 {
		return nil, errorf(awserr.ErrEC2MissingParameter, "The request must contain the parameter IpPermissions or SecurityGroupRuleIds")
	}
	if p.get("DryRun") == "true" {
		return nil, errorf(awserr.ErrEC2DryRun, "Request would have succeeded, but DryRun flag is set.")
	}
	if err := h.net.Revoke(id, egress, rules, ids); err != nil {
		return nil, err
	}
	name := "RevokeSecurityGroupIngressResponse"
	if egress {
		name = "RevokeSecurityGroupEgressResponse"
	}
	return returnResponse{XMLName: xml.Name{Local: name}, Xmlns: Namespace, RequestID: p.reqID, Return: true}, nil
}

var _ = strconv.Itoa

// groupPermissions reads the security group and the rules of an authorize
// or revoke request whose parameters are the rules' and one more (extra).
func (h *Handler) groupPermissions(p params, extra string) (string, []network.Rule, error) {
	if err := h.needNetwork(); err != nil {
		return "", nil, err
	}
	known := []string{"GroupId", "GroupName", "IpPermissions", extra, "CidrIp", "IpProtocol", "FromPort", "ToPort",
		"SourceSecurityGroupName", "SourceSecurityGroupOwnerId"}
	if err := p.checkKnown(known...); err != nil {
		return "", nil, err
	}
	id, err := h.groupID(p)
	if err != nil {
		return "", nil, err
	}
	rules, err := h.permissions(p)
	if err != nil {
		return "", nil, err
	}
	return id, rules, nil
}
