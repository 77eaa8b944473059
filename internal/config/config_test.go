package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var err error
			if strings.HasPrefix(filepath.Base(f), "edge") {
				_, err = LoadEdge(f)
			} else {
				var c *Config
				c, err = Load(f)
				if err == nil && (c.Region == "" || len(c.Subnets) != 2 || c.Subnets[1].AvailabilityZoneID == "") {
					t.Fatalf("incomplete: %+v", c)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

const minimal = `
region: us-east-1
account_id: "123456789012"
data_dir: /tmp/x
credentials: [{access_key_id: AKIAEXAMPLEEXAMPLE, secret_access_key: 0123456789abcdef0123}]
subnets:
  - {id: subnet-0123456789abcdef0, availability_zone: us-east-1a, cidr: 10.0.1.0/24}
  - {id: subnet-0123456789abcdef1, availability_zone: us-east-1b, cidr: 10.0.2.0/24}
security_groups: [{id: sg-0123456789abcdef0, name: default, ingress: [10.0.0.0/8]}]
`

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.API.Listen != DefaultAPIListen || c.NFS.Port != 2049 || c.Engine.CacheSize != DefaultCacheSize ||
		c.Log.Level != "info" || c.TransitionDelayOrDefault() != time.Second {
		t.Errorf("defaults: %+v", c)
	}
	if c.VPC.CIDR != "10.0.0.0/22" {
		t.Errorf("vpc cidr %q", c.VPC.CIDR)
	}
	if !strings.HasPrefix(c.VPC.ID, "vpc-") || len(c.VPC.ID) != 21 {
		t.Errorf("vpc id %q", c.VPC.ID)
	}
	if c.Subnets[0].AvailabilityZoneID != "use1-az1" || c.Subnets[1].AvailabilityZoneID != "use1-az2" {
		t.Errorf("zone ids %q %q", c.Subnets[0].AvailabilityZoneID, c.Subnets[1].AvailabilityZoneID)
	}
	zero := minimal + "control: {transition_delay: 0s}\n"
	if c, err := Parse([]byte(zero)); err != nil || c.TransitionDelayOrDefault() != 0 {
		t.Errorf("explicit zero delay: %v %v", c, err)
	}
}

func TestValidateExplains(t *testing.T) {
	tests := []struct {
		name, replace, with, want string
	}{
		{"region", "region: us-east-1", "region: US-EAST", `region: "US-EAST" is not a region name`},
		{"account", `"123456789012"`, `"12345"`, `account_id: "12345" is not a 12-digit account id`},
		{"data dir", "data_dir: /tmp/x", "", "data_dir: required"},
		{"subnet id", "subnet-0123456789abcdef0", "subnet-xyz", `subnets[0].id: "subnet-xyz" is not a subnet id`},
		{"dup subnet", "subnet-0123456789abcdef1", "subnet-0123456789abcdef0", `subnets[1].id: "subnet-0123456789abcdef0" is listed twice`},
		{"zone", "availability_zone: us-east-1b", "availability_zone: us-west-2b", `subnets[1].availability_zone: "us-west-2b" is not a zone of region us-east-1`},
		{"cidr", "10.0.2.0/24", "10.0.2.0/33", `subnets[1].cidr: "10.0.2.0/33" is not an IPv4 CIDR block`},
		{"host bits", "10.0.2.0/24", "10.0.2.7/24", `did you mean 10.0.2.0/24?`},
		{"overlap", "10.0.2.0/24", "10.0.1.0/25", `subnets[1].cidr: 10.0.1.0/25 overlaps subnets[0] (10.0.1.0/24)`},
		{"ingress", "ingress: [10.0.0.0/8]", "ingress: [everyone]", `security_groups[0].ingress[0]: "everyone" is not a CIDR block`},
		{"sg id", "sg-0123456789abcdef0", "sg-1", `security_groups[0].id: "sg-1" is not a security group id`},
		{"no creds", "credentials: [{access_key_id: AKIAEXAMPLEEXAMPLE, secret_access_key: 0123456789abcdef0123}]", "", "credentials: at least one access key"},
		{"key id", "AKIAEXAMPLEEXAMPLE", "akia", `credentials[0].access_key_id: "akia" is not an access key id`},
		{"unknown key", "data_dir: /tmp/x", "data_dir: /tmp/x\ndatadir: /tmp/y", "field datadir not found"},
		{"nfs port", "data_dir: /tmp/x", "data_dir: /tmp/x\nnfs: {port: 70000}", "nfs.port: 70000 is not a TCP port"},
		{"nfs idle timeout", "data_dir: /tmp/x", "data_dir: /tmp/x\nnfs: {idle_timeout: 10ms}", "nfs.idle_timeout: 10ms is too short (at least 1s; 0: the default)"},
		{"nfs max connections", "data_dir: /tmp/x", "data_dir: /tmp/x\nnfs: {max_connections: -1}", "nfs.max_connections: -1 is negative (0: the default)"},
		{"api listen", "data_dir: /tmp/x", "data_dir: /tmp/x\napi: {listen: localhost}", `api.listen: "localhost" is not host:port`},
		{"kms alias", "data_dir: /tmp/x", "data_dir: /tmp/x\nkms_keys: [{id: k1, key_file: /k}]", "no key has the alias alias/aws/elasticfilesystem"},
		{"sg name", "name: default", "name: \"\"", `security_groups[0].name: "" is not a security group name (1 to 255 characters)`},
		{"dup sg", "security_groups: [{id: sg-0123456789abcdef0, name: default, ingress: [10.0.0.0/8]}]",
			"security_groups: [{id: sg-0123456789abcdef0, name: default}, {id: sg-0123456789abcdef0, name: default}]",
			`security_groups[1].id: "sg-0123456789abcdef0" is listed twice` + "\n  " + `security_groups[1].name: "default" is used twice`},
		{"kms id", "data_dir: /tmp/x", "data_dir: /tmp/x\nkms_keys: [{id: k_1, aliases: [alias/aws/elasticfilesystem], key_file: /k}]",
			`kms_keys[0].id: "k_1" is not a key id (letters, digits and dashes, e.g. a UUID)`},
		{"kms dup", "data_dir: /tmp/x", "data_dir: /tmp/x\nkms_keys: [{id: k1, aliases: [alias/aws/elasticfilesystem, a], key_file: /k}, {id: k1, aliases: [alias/aws/elasticfilesystem], key_file: /k}]",
			`kms_keys[0].aliases[1]: "a" is not an alias (want alias/ and a name)` + "\n  " + `kms_keys[1].id: "k1" is listed twice` + "\n  " + `kms_keys[1].aliases[0]: "alias/aws/elasticfilesystem" is used twice`},
		{"dup key id", "credentials: [{access_key_id: AKIAEXAMPLEEXAMPLE, secret_access_key: 0123456789abcdef0123}]",
			"credentials: [{access_key_id: AKIAEXAMPLEEXAMPLE, secret_access_key: 0123456789abcdef0123}, {access_key_id: AKIAEXAMPLEEXAMPLE, secret_access_key: 0123456789abcdef0123}]",
			`credentials[1].access_key_id: "AKIAEXAMPLEEXAMPLE" is listed twice`},
		{"peer self", "data_dir: /tmp/x", "data_dir: /tmp/x\npeers: [{name: us-east-1, replication: 127.0.0.1:1}]", `peers[0].name: "us-east-1" is this region itself`},
		{"size", "data_dir: /tmp/x", "data_dir: /tmp/x\nengine: {cache_size: lots}", `"lots" is not a size`},
		{"log", "data_dir: /tmp/x", "data_dir: /tmp/x\nlog: {level: loud}", `log.level: "loud" is not one of debug, info, warn, error`},
		{"drill cron", "data_dir: /tmp/x", "data_dir: /tmp/x\ndrills: {schedules: [{name: w, file_system_id: fs-0123456789abcdef0, schedule: '0 25 * * *'}]}",
			`drills.schedules[0].schedule: schedule "0 25 * * *": field 2 (hour)`},
		{"drill fs", "data_dir: /tmp/x", "data_dir: /tmp/x\ndrills: {schedules: [{name: w, file_system_id: fs-1, schedule: '@daily'}]}",
			`drills.schedules[0].file_system_id: "fs-1" is not a file system id`},
		{"drill names", "data_dir: /tmp/x", "data_dir: /tmp/x\ndrills: {schedules: [{name: w, file_system_id: fs-0123456789abcdef0, schedule: '@daily'}, {name: w, file_system_id: fs-0123456789abcdef0, schedule: '@daily'}]}",
			`drills.schedules[1].name: "w" is used twice`},
		{"drill zone", "data_dir: /tmp/x", "data_dir: /tmp/x\ndrills: {schedules: [{name: w, file_system_id: fs-0123456789abcdef0, schedule: '@daily', time_zone: Mars/Olympus}]}",
			`drills.schedules[0].time_zone: "Mars/Olympus" is not a time zone`},
		{"spread", "data_dir: /tmp/x", "data_dir: /tmp/x\ncluster: {spread: true}", "cluster.spread: needs a shared metadata store"},
		{"drill topic", "data_dir: /tmp/x", "data_dir: /tmp/x\ndrills: {notification_topic_arn: topic}", `drills.notification_topic_arn: "topic" is not an SNS topic ARN`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(minimal, tc.replace, tc.with, 1)
			if in == minimal {
				t.Fatalf("replacement %q not found", tc.replace)
			}
			_, err := Parse([]byte(in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValidateReportsAll(t *testing.T) {
	in := strings.NewReplacer("region: us-east-1", "region: x", `"123456789012"`, `"1"`).Replace(minimal)
	_, err := Parse([]byte(in))
	if err == nil || !strings.Contains(err.Error(), "region:") || !strings.Contains(err.Error(), "account_id:") {
		t.Fatalf("want both problems, got %v", err)
	}
}

func TestZoneID(t *testing.T) {
	for zone, want := range map[string]string{
		"us-east-1a": "use1-az1", "us-west-2b": "usw2-az2", "eu-central-1c": "euc1-az3",
		"ap-southeast-2a": "apse2-az1", "us-gov-west-1a": "usgw1-az1", "x": "", "us-east-1": "",
	} {
		if got := ZoneID(zone); got != want {
			t.Errorf("ZoneID(%q) = %q, want %q", zone, got, want)
		}
	}
}

func TestSize(t *testing.T) {
	for in, want := range map[string]Size{"0": 0, "4096": 4096, "64MiB": 64 << 20, "1 GiB": 1 << 30, "10MB": 10e6, "5B": 5} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5GiB", "MiB", "99999999999TiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
	if s := Size(64 << 20).String(); s != "64MiB" {
		t.Errorf("String %q", s)
	}
}

func TestEdge(t *testing.T) {
	good := `
credentials: [{access_key_id: AKIAEXAMPLEEXAMPLE, secret_access_key: 0123456789abcdef0123}]
regions: [{name: us-east-1, api: 127.1.0.1:7070}, {name: us-west-2, api: 127.2.0.1:7070}]
`
	e, err := ParseEdge([]byte(good))
	if err != nil || e.Listen != DefaultAPIListen {
		t.Fatalf("%+v %v", e, err)
	}
	bad := strings.Replace(good, "us-west-2, api: 127.2.0.1:7070", "us-east-1, api: nowhere", 1)
	_, err = ParseEdge([]byte(bad))
	if err == nil || !strings.Contains(err.Error(), `regions[1].name: "us-east-1" is listed twice`) || !strings.Contains(err.Error(), `regions[1].api: "nowhere" is not host:port`) {
		t.Fatalf("got %v", err)
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "s")
	os.WriteFile(f, []byte("  0123456789abcdefXYZ\n"), 0o600)
	m, err := Secrets([]Credential{{AccessKeyID: "A", SecretAccessKey: "inline-secret-123"}, {AccessKeyID: "B", SecretFile: f}})
	if err != nil || m["A"] != "inline-secret-123" || m["B"] != "0123456789abcdefXYZ" {
		t.Fatalf("%v %v", m, err)
	}
	if _, err := Secrets([]Credential{{AccessKeyID: "C", SecretFile: filepath.Join(dir, "missing")}}); err == nil {
		t.Fatal("missing secret file accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	b, _ := os.ReadFile("../../examples/us-east-1.yaml")
	f.Add(b)
	f.Add([]byte("region: [\n"))
	f.Add([]byte("engine: {cache_size: 99999999999999999999TiB}"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := Parse(in)
		if err == nil && c.Validate() != nil {
			t.Fatal("Parse accepted a config Validate rejects")
		}
		_, _ = ParseEdge(in)
	})
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		3 << 30: "3.0 GiB", 5<<40 + 1<<39: "5.5 TiB", 1<<64 - 1: "16.0 EiB",
	} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
