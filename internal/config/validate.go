package config

import (
	"cmp"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/regionfs/regionfs/internal/cron"
)

var (
	regionRe    = regexp.MustCompile(`^[a-z]{2}-((iso[a-z]?-)|(gov-))?[a-z]+-?[0-9]$`)
	accountRe   = regexp.MustCompile(`^[0-9]{12}$`)
	accessKeyRe = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
	subnetIDRe  = regexp.MustCompile(`^subnet-[0-9a-f]{8,40}$`)
	sgIDRe      = regexp.MustCompile(`^sg-[0-9a-f]{8,40}$`)
	vpcIDRe     = regexp.MustCompile(`^vpc-[0-9a-f]{8,40}$`)
	zoneIDRe    = regexp.MustCompile(`^[a-z0-9]+-az[0-9]+$`)
	aliasRe     = regexp.MustCompile(`^alias/[a-zA-Z0-9:/_-]+$`)
	kmsKeyIDRe  = regexp.MustCompile(`^[a-zA-Z0-9-]{1,64}$`)
	sgNameRe    = regexp.MustCompile(`^[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{1,255}$`)
	logLevels   = []string{"debug", "info", "warn", "error"}
	logFormats  = []string{"text", "json"}
)

// DefaultAlias is the alias of the default key for encrypted file systems.
const DefaultAlias = "alias/aws/elasticfilesystem"

// problems collects Validate's findings.
type problems []error

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// once checks a value that names one member of a list (an id, a name, an
// alias): it has the form re describes (want: "%q is not " + want) and
// names no earlier member (seen, which it extends; dup: "listed twice"
// for ids, "used twice" for names).
func (p *problems) once(path string, seen map[string]bool, v string, re *regexp.Regexp, want, dup string) {
	switch {
	case !re.MatchString(v):
		p.add(path, "%q is not "+want, v)
	case seen[v]:
		p.add(path, "%q is "+dup, v)
	}
	seen[v] = true
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Problems: p}
}

// ValidationError lists every mistake Validate found, one per line.
type ValidationError struct {
	Problems []error
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid config:")
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap returns the problems.
func (e *ValidationError) Unwrap() []error { return e.Problems }

// Validate checks c (after SetDefaults) and explains every mistake.
func (c *Config) Validate() error {
	var p problems
	if !regionRe.MatchString(c.Region) {
		p.add("region", "%q is not a region name (want e.g. us-east-1)", c.Region)
	}
	if !accountRe.MatchString(c.AccountID) {
		p.add("account_id", "%q is not a 12-digit account id (want e.g. \"123456789012\", quoted)", c.AccountID)
	}
	if c.DataDir == "" {
		p.add("data_dir", "required: the directory for the metadata store and block files")
	}
	if c.Metadata != "" && !strings.HasPrefix(c.Metadata, "postgres://") && !strings.HasPrefix(c.Metadata, "postgresql://") {
		p.add("metadata", "want empty (embedded store) or a postgres:// URL")
	}
	if c.Blocks != "" && !strings.HasPrefix(c.Blocks, "s3://") {
		p.add("blocks", "want empty (local block files) or an s3://bucket?endpoint=… URL")
	}
	if c.Cluster.Spread && c.Metadata == "" {
		p.add("cluster.spread", "needs a shared metadata store (metadata: postgres://…)")
	}
	if c.Cluster.Lease != 0 && c.Cluster.Lease < time.Second {
		p.add("cluster.lease", "%v is too short (at least 1s)", c.Cluster.Lease)
	}
	checkListener(&p, "api", c.API, true)
	switch c.NFS.TLSClientAuth {
	case "", "none", "request", "require":
	default:
		p.add("nfs.tls_client_auth", "%q is not none, request or require", c.NFS.TLSClientAuth)
	}
	if c.NFS.Port < 1 || c.NFS.Port > 65535 {
		p.add("nfs.port", "%d is not a TCP port", c.NFS.Port)
	}
	if c.NFS.IdleTimeout != 0 && c.NFS.IdleTimeout < time.Second {
		p.add("nfs.idle_timeout", "%v is too short (at least 1s; 0: the default)", c.NFS.IdleTimeout)
	}
	if c.NFS.MaxConnections < 0 {
		p.add("nfs.max_connections", "%d is negative (0: the default)", c.NFS.MaxConnections)
	}
	checkCredentials(&p, "credentials", c.Credentials)
	if !vpcIDRe.MatchString(c.VPC.ID) {
		p.add("vpc.id", "%q is not a VPC id (want vpc- and 8 to 40 hex digits)", c.VPC.ID)
	}
	vpc, err := netip.ParsePrefix(c.VPC.CIDR)
	if c.VPC.CIDR != "" && (err != nil || !vpc.Addr().Is4()) {
		p.add("vpc.cidr", "%q is not an IPv4 CIDR block", c.VPC.CIDR)
	}
	c.checkSubnets(&p, vpc)
	c.checkSecurityGroups(&p)
	c.checkKMS(&p)
	if c.Replication.Listen != "" || c.Replication.TLS != nil {
		checkListener(&p, "replication", c.Replication, true)
	}
	peers := map[string]bool{}
	for i, pr := range c.Peers {
		path := fmt.Sprintf("peers[%d]", i)
		switch {
		case !regionRe.MatchString(pr.Name):
			p.add(path+".name", "%q is not a region name", pr.Name)
		case pr.Name == c.Region:
			p.add(path+".name", "%q is this region itself", pr.Name)
		case peers[pr.Name]:
			p.add(path+".name", "%q is listed twice", pr.Name)
		}
		peers[pr.Name] = true
		if err := checkHostPort(pr.Replication); err != nil {
			p.add(path+".replication", "%v", err)
		}
		if pr.API != "" {
			if err := checkHostPort(pr.API); err != nil {
				p.add(path+".api", "%v", err)
			}
		}
		checkTLS(&p, path+".tls", pr.TLS, false)
		switch {
		case pr.Secret != "" && pr.SecretFile != "":
			p.add(path, "give secret or secret_file, not both")
		case pr.Secret == "" && pr.SecretFile == "":
			p.add(path, "a replication secret is required (secret or secret_file; the same in both regions)")
		case pr.Secret != "" && len(pr.Secret) < 16:
			p.add(path+".secret", "too short: at least 16 characters")
		}
	}
	if len(c.Peers) > 0 && c.Replication.Listen == "" {
		p.add("replication.listen", "required when peers are configured: the regions replicate through it")
	}
	rp := c.Replicate
	for name, v := range map[string]time.Duration{"heartbeat": rp.Heartbeat, "pause_after": rp.PauseAfter, "retain_age": rp.RetainAge,
		"fork_retain": rp.ForkRetain, "max_lag_age": rp.MaxLagAge, "lease": rp.Lease,
		"verify_interval": rp.VerifyInterval} {
		if v < 0 {
			p.add("replicate."+name, "%v is negative", v)
		}
	}
	if rp.VerifyInterval > 0 && rp.VerifyInterval < time.Second {
		p.add("replicate.verify_interval", "%v is too short (at least 1s: each pass reads the whole replica)", rp.VerifyInterval)
	}
	if rp.MaxLagBytes < 0 {
		p.add("replicate.max_lag_bytes", "%v is negative", rp.MaxLagBytes)
	}
	if hb := cmp.Or(rp.Heartbeat, 100*time.Millisecond); rp.Lease > 0 && rp.Lease < 8*hb {
		p.add("replicate.lease", "%v is shorter than eight heartbeats (%v): a healthy link would fence the source, or drop its streams (an acknowledgement must come within 2/5 of the lease)", rp.Lease, 8*hb)
	}
	if d := c.Control.TransitionDelay; d != nil && *d < 0 {
		p.add("control.transition_delay", "%v is negative", *d)
	}
	e := c.Engine
	for name, v := range map[string]int{"max_group": e.MaxGroup, "queue_depth": e.QueueDepth, "batch_entries": e.BatchEntries} {
		if v < 0 {
			p.add("engine."+name, "%d is negative", v)
		}
	}
	for name, v := range map[string]Size{"cache_size": e.CacheSize, "block_cache_size": e.BlockCacheSize, "inline_max": e.InlineMax, "max_record_size": e.MaxRecordSize, "memtable_size": e.MemTableSize} {
		if v < 0 {
			p.add("engine."+name, "%v is negative", v)
		}
	}
	if e.InlineMax > 64<<10 {
		p.add("engine.inline_max", "%v is too large (at most 64KiB: inline data lives in metadata values)", e.InlineMax)
	}
	if e.GCInterval < 0 || e.MergeDelay < 0 || e.ScrubInterval < 0 {
		p.add("engine", "gc_interval, merge_delay and scrub_interval must not be negative")
	}
	c.checkSNS(&p)
	c.checkDrills(&p)
	checkLog(&p, c.Log)
	return p.err()
}

var (
	fsIDRe     = regexp.MustCompile(`^fs-[0-9a-f]{8,40}$`)
	topicARNRe = regexp.MustCompile(`^arn:aws[-a-z]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$`)
)

func (c *Config) checkDrills(p *problems) {
	d := c.Drills
	if t := c.Replicate.AutoFailoverTopicARN; t != "" && !topicARNRe.MatchString(t) {
		p.add("replicate.auto_failover_topic_arn", "%q is not an SNS topic ARN", t)
	}
	if d.NotificationTopicARN != "" && !topicARNRe.MatchString(d.NotificationTopicARN) {
		p.add("drills.notification_topic_arn", "%q is not an SNS topic ARN", d.NotificationTopicARN)
	}
	if d.History < 0 {
		p.add("drills.history", "%d is negative", d.History)
	}
	names := map[string]bool{}
	for i, s := range d.Schedules {
		path := fmt.Sprintf("drills.schedules[%d]", i)
		switch {
		case s.Name == "":
			p.add(path+".name", "required")
		case names[s.Name]:
			p.add(path+".name", "%q is used twice", s.Name)
		}
		names[s.Name] = true
		if !fsIDRe.MatchString(s.FileSystemID) {
			p.add(path+".file_system_id", "%q is not a file system id (the replica, or its source)", s.FileSystemID)
		}
		if _, err := cron.Parse(s.Schedule); err != nil {
			p.add(path+".schedule", "%v", err)
		}
		if s.TimeZone != "" {
			if _, err := time.LoadLocation(s.TimeZone); err != nil {
				p.add(path+".time_zone", "%q is not a time zone: %v", s.TimeZone, err)
			}
		}
		if s.SubnetID != "" && !subnetIDRe.MatchString(s.SubnetID) {
			p.add(path+".subnet_id", "%q is not a subnet id", s.SubnetID)
		}
		for j, g := range s.SecurityGroups {
			if !sgIDRe.MatchString(g) {
				p.add(fmt.Sprintf("%s.security_groups[%d]", path, j), "%q is not a security group id", g)
			}
		}
		for name, v := range map[string]time.Duration{"check_timeout": s.CheckTimeout, "max_rpo": s.MaxRPO, "max_rto": s.MaxRTO} {
			if v < 0 {
				p.add(path+"."+name, "%v is negative", v)
			}
		}
		if s.NotificationTopicARN != "" && !topicARNRe.MatchString(s.NotificationTopicARN) {
			p.add(path+".notification_topic_arn", "%q is not an SNS topic ARN", s.NotificationTopicARN)
		}
	}
}

func (c *Config) checkSNS(p *problems) {
	if u := c.SNS.PublicURL; u != "" {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || pu.RawQuery != "" {
			p.add("sns.public_url", "%q is not an http(s) URL without a query", u)
		}
	}
	m := c.SNS.SMTP
	if m == nil {
		return
	}
	if err := checkHostPort(m.Address); err != nil {
		p.add("sns.smtp.address", "%v", err)
	}
	if a, err := mail.ParseAddress(m.From); err != nil || a.Address != m.From {
		p.add("sns.smtp.from", "%q is not an email address", m.From)
	}
	if m.Password != "" && m.PasswordFile != "" {
		p.add("sns.smtp", "give password or password_file, not both")
	}
	if (m.Password != "" || m.PasswordFile != "") && m.Username == "" {
		p.add("sns.smtp.username", "required with a password")
	}
}

func (c *Config) checkSubnets(p *problems, vpc netip.Prefix) {
	if len(c.Subnets) == 0 {
		p.add("subnets", "at least one subnet is needed for mount targets")
	}
	ids := map[string]bool{}
	var prefixes []netip.Prefix
	for i, s := range c.Subnets {
		path := fmt.Sprintf("subnets[%d]", i)
		p.once(path+".id", ids, s.ID, subnetIDRe, "a subnet id (want subnet- and 8 to 40 hex digits)", "listed twice")
		zone := s.AvailabilityZone
		if len(zone) != len(c.Region)+1 || !strings.HasPrefix(zone, c.Region) || zone[len(zone)-1] < 'a' || zone[len(zone)-1] > 'z' {
			p.add(path+".availability_zone", "%q is not a zone of region %s (want the region name and a letter, e.g. %sa)", zone, c.Region, c.Region)
		}
		if !zoneIDRe.MatchString(s.AvailabilityZoneID) {
			p.add(path+".availability_zone_id", "%q is not a zone id (want e.g. use1-az1)", s.AvailabilityZoneID)
		}
		for j, o := range c.Subnets[:i] {
			if o.AvailabilityZone == s.AvailabilityZone && o.AvailabilityZoneID != s.AvailabilityZoneID {
				p.add(path+".availability_zone_id", "%q differs from subnets[%d] in the same zone (%q)", s.AvailabilityZoneID, j, o.AvailabilityZoneID)
			}
		}
		pr, err := netip.ParsePrefix(s.CIDR)
		switch {
		case err != nil || !pr.Addr().Is4():
			p.add(path+".cidr", "%q is not an IPv4 CIDR block (want e.g. 10.0.1.0/24)", s.CIDR)
			continue
		case pr.Masked() != pr:
			p.add(path+".cidr", "%q has host bits set (did you mean %s?)", s.CIDR, pr.Masked())
		case pr.Bits() > 28 || pr.Bits() < 16:
			p.add(path+".cidr", "%q: a subnet is between /16 and /28, as on AWS", s.CIDR)
		}
		if vpc.IsValid() && !(vpc.Contains(pr.Addr()) && vpc.Bits() <= pr.Bits()) {
			p.add(path+".cidr", "%s is not inside the VPC block %s", pr, vpc)
		}
		for j, o := range prefixes {
			if o.Overlaps(pr) {
				p.add(path+".cidr", "%s overlaps subnets[%d] (%s)", pr, j, o)
			}
		}
		prefixes = append(prefixes, pr)
		if s.ListenAddress != "" {
			if _, err := netip.ParseAddr(s.ListenAddress); err != nil {
				p.add(path+".listen_address", "%q is not an IP address", s.ListenAddress)
			}
		}
	}
}

func (c *Config) checkSecurityGroups(p *problems) {
	if len(c.SecurityGroups) == 0 {
		p.add("security_groups", "at least one security group is needed: mount targets need one")
	}
	ids, names := map[string]bool{}, map[string]bool{}
	for i, g := range c.SecurityGroups {
		path := fmt.Sprintf("security_groups[%d]", i)
		p.once(path+".id", ids, g.ID, sgIDRe, "a security group id (want sg- and 8 to 40 hex digits)", "listed twice")
		p.once(path+".name", names, g.Name, sgNameRe, "a security group name (1 to 255 characters)", "used twice")
		for j, cidr := range g.Ingress {
			if pr, err := netip.ParsePrefix(cidr); err != nil {
				p.add(fmt.Sprintf("%s.ingress[%d]", path, j), "%q is not a CIDR block (want e.g. 127.0.0.0/8 or 0.0.0.0/0)", cidr)
			} else if pr.Masked() != pr {
				p.add(fmt.Sprintf("%s.ingress[%d]", path, j), "%q has host bits set (did you mean %s?)", cidr, pr.Masked())
			}
		}
	}
}

func (c *Config) checkKMS(p *problems) {
	ids, aliases := map[string]bool{}, map[string]bool{}
	for i, k := range c.KMSKeys {
		path := fmt.Sprintf("kms_keys[%d]", i)
		p.once(path+".id", ids, k.ID, kmsKeyIDRe, "a key id (letters, digits and dashes, e.g. a UUID)", "listed twice")
		for j, a := range k.Aliases {
			p.once(fmt.Sprintf("%s.aliases[%d]", path, j), aliases, a, aliasRe, "an alias (want alias/ and a name)", "used twice")
		}
		if k.KeyFile == "" {
			p.add(path+".key_file", "required: the file holding the 32-byte key material")
		}
	}
	if len(c.KMSKeys) > 0 && !aliases[DefaultAlias] {
		p.add("kms_keys", "no key has the alias %s, the default key of encrypted file systems", DefaultAlias)
	}
}

func checkCredentials(p *problems, path string, creds []Credential) {
	if len(creds) == 0 {
		p.add(path, "at least one access key is needed: every request is signed")
	}
	seen := map[string]bool{}
	for i, c := range creds {
		path := fmt.Sprintf("%s[%d]", path, i)
		p.once(path+".access_key_id", seen, c.AccessKeyID, accessKeyRe, "an access key id (16 to 128 upper-case letters and digits)", "listed twice")
		switch {
		case c.SecretAccessKey == "" && c.SecretFile == "":
			p.add(path, "give secret_access_key or secret_file")
		case c.SecretAccessKey != "" && c.SecretFile != "":
			p.add(path, "give secret_access_key or secret_file, not both")
		case c.SecretAccessKey != "" && len(c.SecretAccessKey) < 16:
			p.add(path+".secret_access_key", "too short (at least 16 characters)")
		}
	}
}

func checkListener(p *problems, path string, l Listener, required bool) {
	if l.Listen == "" && !required {
		return
	}
	if err := checkHostPort(l.Listen); err != nil {
		p.add(strings.TrimPrefix(path+".listen", "edge."), "%v", err)
	}
	checkTLS(p, strings.TrimPrefix(path+".tls", "edge."), l.TLS, true)
}

func checkTLS(p *problems, path string, t *TLS, server bool) {
	if t == nil {
		return
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		p.add(path, "cert_file and key_file go together")
	}
	if server && t.CertFile == "" {
		p.add(path, "a TLS listener needs cert_file and key_file")
	}
	if !server && t.CAFile == "" && t.CertFile == "" {
		p.add(path, "set ca_file (and cert_file/key_file for mutual TLS), or leave tls out")
	}
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: %q is not a TCP port", s, port)
	}
	if host == "" {
		return fmt.Errorf("%q: give the host (e.g. 0.0.0.0 or 127.0.0.1)", s)
	}
	return nil
}

func checkLog(p *problems, l Log) {
	if !contains(logLevels, l.Level) {
		p.add("log.level", "%q is not one of %s", l.Level, strings.Join(logLevels, ", "))
	}
	if !contains(logFormats, l.Format) {
		p.add("log.format", "%q is not one of %s", l.Format, strings.Join(logFormats, ", "))
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
