package config

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// SetDefaults fills in every unset field that has a default. It is
// idempotent; Parse and LoadEdge call it before Validate.
func (c *Config) SetDefaults() {
	if c.API.Listen == "" {
		c.API.Listen = DefaultAPIListen
	}
	if c.NFS.Port == 0 {
		c.NFS.Port = DefaultNFSPort
	}
	if c.Cluster.Lease == 0 {
		c.Cluster.Lease = DefaultLease
	}
	if c.Cluster.Node == "" {
		c.Cluster.Node, _ = os.Hostname()
	}
	if c.ObjectCacheSize == 0 {
		c.ObjectCacheSize = DefaultObjectCacheSize
	}
	if c.Engine.CacheSize == 0 {
		c.Engine.CacheSize = DefaultCacheSize
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.VPC.ID == "" && c.Region != "" {
		c.VPC.ID = "vpc-" + stableHex("vpc/"+c.Region, 17)
	}
	for i := range c.Subnets {
		s := &c.Subnets[i]
		if s.AvailabilityZoneID == "" {
			s.AvailabilityZoneID = ZoneID(s.AvailabilityZone)
		}
	}
	if c.VPC.CIDR == "" {
		c.VPC.CIDR = coveringCIDR(c.Subnets)
	}
}

// ZoneID is the AWS-style availability zone id of a zone name: the region's
// initials and number, "-az", and the zone letter's position
// (us-east-1b → use1-az2). It returns "" for names it cannot parse.
func ZoneID(zone string) string {
	if len(zone) < 2 {
		return ""
	}
	letter := zone[len(zone)-1]
	if letter < 'a' || letter > 'z' {
		return ""
	}
	region := zone[:len(zone)-1]
	parts := strings.Split(region, "-")
	if len(parts) < 2 {
		return ""
	}
	var b strings.Builder
	for _, p := range parts[:len(parts)-1] {
		if p == "" {
			return ""
		}
		switch {
		case len(p) <= 2:
			b.WriteString(p)
		case zoneWords[p] != "":
			b.WriteString(zoneWords[p])
		default:
			b.WriteByte(p[0])
		}
	}
	b.WriteString(parts[len(parts)-1])
	return b.String() + "-az" + strconv.Itoa(int(letter-'a')+1)
}

var zoneWords = map[string]string{"northeast": "ne", "southeast": "se", "northwest": "nw", "southwest": "sw"}

// coveringCIDR is the smallest IPv4 block holding every subnet's CIDR ("" if
// there are none or one is malformed; Validate reports that).
func coveringCIDR(subnets []Subnet) string {
	var cover netip.Prefix
	for i, s := range subnets {
		p, err := netip.ParsePrefix(s.CIDR)
		if err != nil || !p.Addr().Is4() {
			return ""
		}
		p = p.Masked()
		if i == 0 {
			cover = p
			continue
		}
		for bits := min(cover.Bits(), p.Bits()); bits >= 0; bits-- {
			c, _ := cover.Addr().Prefix(bits)
			if c.Contains(p.Addr()) {
				cover = c
				break
			}
		}
	}
	if !cover.IsValid() {
		return ""
	}
	return cover.String()
}

// stableHex is n hex digits derived from s.
func stableHex(s string, n int) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])[:n]
}
