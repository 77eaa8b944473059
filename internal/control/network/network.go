package network

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/refusal"
)

// Sentinel errors, mapped to EC2 error codes at the API edge.
var (
	ErrGroupNotFound      = errors.New("security group not found")
	ErrGroupIDMalformed   = errors.New("malformed security group id")
	ErrDuplicate          = errors.New("duplicate security group")
	ErrPermissionDup      = errors.New("duplicate permission")
	ErrPermissionNotFound = errors.New("permission not found")
	ErrMalformed          = errors.New("malformed permission")
	ErrInvalidParameter   = errors.New("invalid parameter")
	ErrDependency         = errors.New("dependency violation")
	ErrCannotDelete       = errors.New("cannot delete")
	ErrVPCNotFound        = errors.New("vpc not found")
	ErrRuleNotFound       = errors.New("rule not found")
	ErrLimitExceeded      = errors.New("rules per security group limit exceeded")
)

// Error is a rule the domain enforced: one of the sentinels above with
// EC2's public message.
type Error = refusal.Error

// Tag is a resource tag.
type Tag struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}

// Rule is one security group rule.
type Rule struct {
	ID       string `json:"id"`
	Egress   bool   `json:"egress,omitempty"`
	Protocol string `json:"proto"` // tcp, udp, icmp, icmpv6, -1, or a number
	FromPort int    `json:"from"`
	ToPort   int    `json:"to"`
	CIDRv4   string `json:"cidr4,omitempty"`
	CIDRv6   string `json:"cidr6,omitempty"`
	// PrefixListID and RefGroupID name a prefix list or group instead.
	PrefixListID  string `json:"prefixList,omitempty"`
	RefGroupID    string `json:"refGroup,omitempty"`
	RefGroupOwner string `json:"refOwner,omitempty"`
	Description   string `json:"desc,omitempty"`
	Tags          []Tag  `json:"tags,omitempty"`
}

// Group is a security group.
type Group struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"desc"`
	VPCID       string `json:"vpc"`
	Rules       []Rule `json:"rules"`
	Tags        []Tag  `json:"tags,omitempty"`
	// Token makes creation idempotent (CloudFormation).
	Token string `json:"token,omitempty"`
}

// Options configure a Network.
type Options struct {
	Region, AccountID, VPCID string
	KV                       kv.Store
	// NFSPort is the port mount targets serve NFS on.
	NFSPort int
	// Seed are the configured groups, created at the first start.
	Seed   []Group
	Logger *slog.Logger
	// MaxRules bounds the rules of a group per direction (60).
	MaxRules int
}

// Network holds the security groups of a region.
type Network struct {
	o   Options
	log *slog.Logger

	mu       sync.Mutex // guards the fields below
	groups   map[string]*Group
	watchers []func(groupIDs []string)
}

var (
	groupIDRe = regexp.MustCompile(`^sg-[0-9a-f]{8,40}$`)
	ruleIDRe  = regexp.MustCompile(`^sgr-[0-9a-f]{8,40}$`)
)

func groupKey(id string) []byte { return append([]byte{'n', 'g'}, id...) }

// Open loads the groups (seeding the configured ones the first time).
func Open(o Options) (*Network, error) {
	if o.KV == nil || o.Region == "" || o.AccountID == "" {
		return nil, errors.New("network: KV, Region and AccountID are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxRules == 0 {
		o.MaxRules = 60
	}
	n := &Network{o: o, log: o.Logger.With("region", o.Region), groups: map[string]*Group{}}
	err := kv.Scan(o.KV, []byte{'n', 'g'}, []byte{'n', 'h'}, func(k, v []byte) error {
		var g Group
		if err := json.Unmarshal(v, &g); err != nil {
			return fmt.Errorf("network: group %q: %w", k, err)
		}
		n.groups[g.ID] = &g
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, s := range o.Seed {
		if _, ok := n.groups[s.ID]; ok {
			continue
		}
		g := s
		if g.VPCID == "" {
			g.VPCID = o.VPCID
		}
		for i := range g.Rules {
			if g.Rules[i].ID == "" {
				g.Rules[i].ID = newID("sgr-")
			}
		}
		if err := n.save(&g); err != nil {
			return nil, err
		}
		n.groups[g.ID] = &g
	}
	return n, nil
}

func newID(prefix string) string {
	var b [9]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])[:17]
}

func (n *Network) save(g *Group) error {
	b := n.o.KV.NewBatch()
	defer b.Close()
	v, _ := json.Marshal(g) // plain data
	b.Set(groupKey(g.ID), v)
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("network: commit: %w", err)
	}
	return nil
}

// Watch registers fn, called (without locks held) with the groups whose
// rules changed.
func (n *Network) Watch(fn func(groupIDs []string)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.watchers = append(n.watchers, fn)
}

func (n *Network) notify(ids ...string) {
	n.mu.Lock()
	ws := slices.Clone(n.watchers)
	n.mu.Unlock()
	for _, w := range ws {
		w(ids)
	}
}

func clone(g *Group) Group {
	c := *g
	c.Rules = slices.Clone(g.Rules)
	for i := range c.Rules {
		c.Rules[i].Tags = slices.Clone(c.Rules[i].Tags)
	}
	c.Tags = slices.Clone(g.Tags)
	return c
}

// Group returns a group by id.
func (n *Network) Group(id string) (Group, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	g, ok := n.groups[id]
	if !ok {
		return Group{}, false
	}
	return clone(g), true
}

// Groups returns every group, by id.
func (n *Network) Groups() []Group {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Group, 0, len(n.groups))
	for _, g := range n.groups {
		out = append(out, clone(g))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// DefaultGroup returns the group named "default" of a VPC (or its first
// group).
func (n *Network) DefaultGroup(vpc string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var first string
	ids := make([]string, 0, len(n.groups))
	for id := range n.groups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		g := n.groups[id]
		if g.VPCID != vpc {
			continue
		}
		if g.Name == "default" {
			return id, true
		}
		if first == "" {
			first = id
		}
	}
	return first, first != ""
}

// Ingress returns the CIDR blocks the groups admit to NFS.
func (n *Network) Ingress(groupIDs []string) []netip.Prefix {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []netip.Prefix
	for _, id := range groupIDs {
		g := n.groups[id]
		if g == nil {
			continue
		}
		for _, r := range g.Rules {
			if r.Egress || !n.coversNFS(r) {
				continue
			}
			for _, c := range []string{r.CIDRv4, r.CIDRv6} {
				if c == "" {
					continue
				}
				if p, err := netip.ParsePrefix(c); err == nil && !slices.Contains(out, p.Masked()) {
					out = append(out, p.Masked())
				}
			}
		}
	}
	return out
}

func (n *Network) coversNFS(r Rule) bool {
	switch r.Protocol {
	case "-1":
		return true
	case "tcp", "6":
	default:
		return false
	}
	for _, port := range []int{2049, n.o.NFSPort} {
		if port > 0 && r.FromPort <= port && port <= r.ToPort {
			return true
		}
	}
	return false
}

// CreateGroup creates a security group in a VPC of the region.
func (n *Network) CreateGroup(name, desc, vpc string, tags []Tag, token string) (Group, error) {
	if vpc == "" {
		vpc = n.o.VPCID
	}
	if vpc != n.o.VPCID {
		return Group{}, refusal.Errorf(ErrVPCNotFound, "The vpc ID '%s' does not exist", clip(vpc))
	}
	if name == "" || len(name) > 255 {
		return Group{}, refusal.Errorf(ErrInvalidParameter, "Value (%s) for parameter GroupName is invalid. Group names may be 1 to 255 characters.", clip(name))
	}
	if strings.HasPrefix(strings.ToLower(name), "sg-") {
		return Group{}, refusal.Errorf(ErrInvalidParameter, "Group names may not be in the format sg-*.")
	}
	if len(desc) > 255 || desc == "" {
		return Group{}, refusal.Errorf(ErrInvalidParameter, "The request must contain the parameter GroupDescription (1 to 255 characters)")
	}
	if err := checkTags(tags); err != nil {
		return Group{}, err
	}
	n.mu.Lock()
	for _, g := range n.groups {
		if token != "" && g.Token == token {
			c := clone(g)
			n.mu.Unlock()
			return c, nil
		}
		if g.VPCID == vpc && g.Name == name {
			n.mu.Unlock()
			return Group{}, refusal.Errorf(ErrDuplicate, "The security group '%s' already exists for VPC '%s'", clip(name), vpc)
		}
	}
	g := &Group{ID: newID("sg-"), Name: name, Description: desc, VPCID: vpc, Tags: tags, Token: token,
		Rules: []Rule{{ID: newID("sgr-"), Egress: true, Protocol: "-1", FromPort: -1, ToPort: -1, CIDRv4: "0.0.0.0/0"}}}
	if err := n.save(g); err != nil {
		n.mu.Unlock()
		return Group{}, err
	}
	n.groups[g.ID] = g
	c := clone(g)
	n.mu.Unlock()
	n.log.Info("security group created", "security_group", g.ID, "name", name)
	return c, nil
}

// InUse reports the dependents of a group (mount targets); set by the
// control plane.
type InUse func(groupID string) []string

// DeleteGroup deletes a group that nothing uses.
func (n *Network) DeleteGroup(id string, inUse InUse) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	g := n.groups[id]
	if g == nil {
		return refusal.Errorf(ErrGroupNotFound, "The security group '%s' does not exist", clip(id))
	}
	if g.Name == "default" {
		return refusal.Errorf(ErrCannotDelete, "the specified group: \"%s\" name: \"default\" cannot be deleted by a user", id)
	}
	if inUse != nil {
		if deps := inUse(id); len(deps) > 0 {
			return refusal.Errorf(ErrDependency, "resource %s has a dependent object (%s)", id, strings.Join(deps, ", "))
		}
	}
	for _, o := range n.groups {
		for _, r := range o.Rules {
			if r.RefGroupID == id && o.ID != id {
				return refusal.Errorf(ErrDependency, "resource %s has a dependent object (a rule of %s)", id, o.ID)
			}
		}
	}
	b := n.o.KV.NewBatch()
	defer b.Close()
	b.Delete(groupKey(id))
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("network: commit: %w", err)
	}
	delete(n.groups, id)
	n.log.Info("security group deleted", "security_group", id)
	return nil
}

// LookupByName finds a group of the region's VPC by name.
func (n *Network) LookupByName(name string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, g := range n.groups {
		if g.Name == name && g.VPCID == n.o.VPCID {
			return g.ID, true
		}
	}
	return "", false
}

// normalize validates a rule and puts it in EC2's canonical form.
func normalize(r Rule) (Rule, error) {
	p := strings.ToLower(strings.TrimSpace(r.Protocol))
	switch p {
	case "6":
		p = "tcp"
	case "17":
		p = "udp"
	case "1":
		p = "icmp"
	case "58":
		p = "icmpv6"
	case "all":
		p = "-1"
	}
	switch p {
	case "tcp", "udp":
		if r.FromPort < 0 || r.ToPort > 65535 || r.FromPort > r.ToPort {
			return r, refusal.Errorf(ErrMalformed, "Invalid port range: from %d to %d", r.FromPort, r.ToPort)
		}
	case "icmp", "icmpv6":
		if r.FromPort < -1 || r.FromPort > 255 || r.ToPort < -1 || r.ToPort > 255 {
			return r, refusal.Errorf(ErrMalformed, "Invalid ICMP type/code: %d/%d", r.FromPort, r.ToPort)
		}
	case "-1":
		r.FromPort, r.ToPort = -1, -1
	default:
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v > 255 {
			return r, refusal.Errorf(ErrInvalidParameter, "Invalid value '%s' for IP protocol. Unknown protocol.", clip(r.Protocol))
		}
		r.FromPort, r.ToPort = -1, -1
	}
	r.Protocol = p
	targets := 0
	for _, s := range []string{r.CIDRv4, r.CIDRv6, r.PrefixListID, r.RefGroupID} {
		if s != "" {
			targets++
		}
	}
	if targets != 1 {
		return r, refusal.Errorf(ErrMalformed, "A rule names exactly one of a CIDR block, an IPv6 CIDR block, a prefix list or a security group")
	}
	if r.CIDRv4 != "" {
		pfx, err := netip.ParsePrefix(r.CIDRv4)
		if err != nil || !pfx.Addr().Is4() {
			return r, refusal.Errorf(ErrInvalidParameter, "CIDR block %s is malformed", clip(r.CIDRv4))
		}
		r.CIDRv4 = pfx.Masked().String()
	}
	if r.CIDRv6 != "" {
		pfx, err := netip.ParsePrefix(r.CIDRv6)
		if err != nil || !pfx.Addr().Is6() {
			return r, refusal.Errorf(ErrInvalidParameter, "CIDR block %s is malformed", clip(r.CIDRv6))
		}
		r.CIDRv6 = pfx.Masked().String()
	}
	if r.RefGroupID != "" && !groupIDRe.MatchString(r.RefGroupID) {
		return r, refusal.Errorf(ErrGroupIDMalformed, "Invalid id: \"%s\" (expecting \"sg-...\")", clip(r.RefGroupID))
	}
	if len(r.Description) > 255 {
		return r, refusal.Errorf(ErrInvalidParameter, "Rule descriptions are at most 255 characters")
	}
	return r, nil
}

func sameRule(a, b Rule) bool {
	return a.Egress == b.Egress && a.Protocol == b.Protocol && a.FromPort == b.FromPort && a.ToPort == b.ToPort &&
		a.CIDRv4 == b.CIDRv4 && a.CIDRv6 == b.CIDRv6 && a.PrefixListID == b.PrefixListID && a.RefGroupID == b.RefGroupID
}

func describeRule(r Rule) string {
	peer := r.CIDRv4 + r.CIDRv6 + r.PrefixListID + r.RefGroupID
	return fmt.Sprintf("peer: %s, %s, from port: %d, to port: %d, ALLOW", peer, strings.ToUpper(r.Protocol), r.FromPort, r.ToPort)
}

// Authorize adds rules to a group (all or none); it returns them with
// their ids.
func (n *Network) Authorize(groupID string, egress bool, rules []Rule) ([]Rule, error) {
	if len(rules) == 0 {
		return nil, refusal.Errorf(ErrMalformed, "No permissions were given")
	}
	var add []Rule
	for _, r := range rules {
		r.Egress = egress
		nr, err := normalize(r)
		if err != nil {
			return nil, err
		}
		nr.ID = newID("sgr-")
		add = append(add, nr)
	}
	n.mu.Lock()
	g := n.groups[groupID]
	if g == nil {
		n.mu.Unlock()
		return nil, refusal.Errorf(ErrGroupNotFound, "The security group '%s' does not exist", clip(groupID))
	}
	for _, r := range add {
		if r.RefGroupID != "" && n.groups[r.RefGroupID] == nil {
			n.mu.Unlock()
			return nil, refusal.Errorf(ErrGroupNotFound, "The security group '%s' does not exist", r.RefGroupID)
		}
		for _, e := range g.Rules {
			if sameRule(e, r) {
				n.mu.Unlock()
				return nil, refusal.Errorf(ErrPermissionDup, "the specified rule \"%s\" already exists", describeRule(r))
			}
		}
	}
	c := clone(g)
	c.Rules = append(c.Rules, add...)
	count := 0
	for _, r := range c.Rules {
		if r.Egress == egress {
			count++
		}
	}
	if count > n.o.MaxRules {
		n.mu.Unlock()
		return nil, refusal.Errorf(ErrLimitExceeded, "The maximum number of rules per security group has been reached (%d).", n.o.MaxRules)
	}
	if err := n.save(&c); err != nil {
		n.mu.Unlock()
		return nil, err
	}
	n.groups[groupID] = &c
	n.mu.Unlock()
	n.log.Info("security group rules added", "security_group", groupID, "egress", egress, "rules", len(add))
	n.notify(groupID)
	return add, nil
}

// Revoke removes rules, given by content or by id (all or none).
func (n *Network) Revoke(groupID string, egress bool, rules []Rule, ruleIDs []string) error {
	var match []Rule
	for _, r := range rules {
		r.Egress = egress
		nr, err := normalize(r)
		if err != nil {
			return err
		}
		match = append(match, nr)
	}
	for _, id := range ruleIDs {
		if !ruleIDRe.MatchString(id) {
			return refusal.Errorf(ErrInvalidParameter, "Invalid security group rule id: %s", clip(id))
		}
	}
	n.mu.Lock()
	g := n.groups[groupID]
	if g == nil {
		n.mu.Unlock()
		return refusal.Errorf(ErrGroupNotFound, "The security group '%s' does not exist", clip(groupID))
	}
	c := clone(g)
	for _, m := range match {
		i := slices.IndexFunc(c.Rules, func(e Rule) bool { return sameRule(e, m) })
		if i < 0 {
			n.mu.Unlock()
			return refusal.Errorf(ErrPermissionNotFound, "The specified rule does not exist in this security group.")
		}
		c.Rules = slices.Delete(c.Rules, i, i+1)
	}
	for _, id := range ruleIDs {
		i := slices.IndexFunc(c.Rules, func(e Rule) bool { return e.ID == id && e.Egress == egress })
		if i < 0 {
			n.mu.Unlock()
			return refusal.Errorf(ErrRuleNotFound, "The security group rule ID '%s' does not exist", id)
		}
		c.Rules = slices.Delete(c.Rules, i, i+1)
	}
	if err := n.save(&c); err != nil {
		n.mu.Unlock()
		return err
	}
	n.groups[groupID] = &c
	n.mu.Unlock()
	n.log.Info("security group rules revoked", "security_group", groupID, "egress", egress)
	n.notify(groupID)
	return nil
}

// Tag adds or replaces tags of groups and rules (ids sg-… or sgr-…).
func (n *Network) Tag(ids []string, tags []Tag, remove []Tag) error {
	if err := checkTags(tags); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	changed := map[string]*Group{}
	for _, id := range ids {
		found := false
		for gid, g := range n.groups {
			c := changed[gid]
			if c == nil {
				cc := clone(g)
				c = &cc
			}
			switch {
			case gid == id:
				c.Tags = applyTags(c.Tags, tags, remove)
				found = true
			default:
				for i := range c.Rules {
					if c.Rules[i].ID == id {
						c.Rules[i].Tags = applyTags(c.Rules[i].Tags, tags, remove)
						found = true
					}
				}
			}
			if found {
				changed[gid] = c
				break
			}
		}
		if !found {
			if strings.HasPrefix(id, "sgr-") {
				return refusal.Errorf(ErrRuleNotFound, "The security group rule ID '%s' does not exist", clip(id))
			}
			return refusal.Errorf(ErrGroupNotFound, "The security group '%s' does not exist", clip(id))
		}
	}
	b := n.o.KV.NewBatch()
	defer b.Close()
	for _, g := range changed {
		v, _ := json.Marshal(g)
		b.Set(groupKey(g.ID), v)
	}
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("network: commit: %w", err)
	}
	for id, g := range changed {
		n.groups[id] = g
	}
	return nil
}

func applyTags(cur, set, remove []Tag) []Tag {
	out := slices.Clone(cur)
	for _, t := range set {
		if i := slices.IndexFunc(out, func(e Tag) bool { return e.Key == t.Key }); i >= 0 {
			out[i].Value = t.Value
		} else {
			out = append(out, t)
		}
	}
	for _, r := range remove {
		out = slices.DeleteFunc(out, func(e Tag) bool { return e.Key == r.Key && (r.Value == "" || r.Value == e.Value) })
	}
	return out
}

func checkTags(tags []Tag) error {
	if len(tags) > 50 {
		return refusal.Errorf(ErrInvalidParameter, "The tag limit (50) was exceeded")
	}
	for _, t := range tags {
		if t.Key == "" || len(t.Key) > 128 || len(t.Value) > 256 {
			return refusal.Errorf(ErrInvalidParameter, "Tag keys are 1 to 128 characters and values at most 256")
		}
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return refusal.Errorf(ErrInvalidParameter, "Tag keys starting with 'aws:' are reserved for internal use")
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 128 {
		return s[:128] + "…"
	}
	return s
}

// SetRuleDescription changes a rule's description.
func (n *Network) SetRuleDescription(groupID, ruleID, desc string) error {
	if len(desc) > 255 {
		return refusal.Errorf(ErrInvalidParameter, "Rule descriptions are at most 255 characters")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	g := n.groups[groupID]
	if g == nil {
		return refusal.Errorf(ErrGroupNotFound, "The security group '%s' does not exist", clip(groupID))
	}
	c := clone(g)
	i := slices.IndexFunc(c.Rules, func(r Rule) bool { return r.ID == ruleID })
	if i < 0 {
		return refusal.Errorf(ErrRuleNotFound, "The security group rule ID '%s' does not exist", clip(ruleID))
	}
	c.Rules[i].Description = desc
	if err := n.save(&c); err != nil {
		return err
	}
	n.groups[groupID] = &c
	return nil
}
